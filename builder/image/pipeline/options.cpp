#include "image/pipeline/options.hpp"

namespace kiln::build {

BuildEvents&
events(const BuildOptions& options)
{
  static BuildEvents none;
  return options.events != nullptr ? *options.events : none;
}

void
LockedEvents::stage(const StageEvent& event)
{
  std::lock_guard<std::mutex> lock(m_mutex);
  m_inner.stage(event);
}

void
LockedEvents::note(const std::string& line)
{
  std::lock_guard<std::mutex> lock(m_mutex);
  m_inner.note(line);
}

void
LockedEvents::warning(const std::string& line)
{
  std::lock_guard<std::mutex> lock(m_mutex);
  m_inner.warning(line);
}

void
LockedEvents::log(const std::string& line)
{
  std::lock_guard<std::mutex> lock(m_mutex);
  m_inner.log(line);
}

void
LockedEvents::progress(std::uint64_t done, std::uint64_t total)
{
  std::lock_guard<std::mutex> lock(m_mutex);
  m_inner.progress(done, total);
}

util::Runner&
runner_of(const BuildOptions& options)
{
  return options.runner != nullptr ? *options.runner : util::system_runner();
}

void
say(const BuildOptions& options, const std::string& line)
{
  events(options).note(line);
}

std::function<void(const std::string&)>
notice_sink(const BuildOptions& options)
{
  BuildEvents* ev = &events(options);
  return [ev](const std::string& line) { ev->warning(line); };
}

std::function<void(const std::string&)>
log_sink(const BuildOptions& options)
{
  BuildEvents* ev = &events(options);
  if (!ev->verbose()) {
    return {};
  }
  return [ev](const std::string& line) { ev->log(line); };
}

std::function<void(std::uint64_t, std::uint64_t)>
progress_sink(const BuildOptions& options)
{
  BuildEvents* ev = &events(options);
  return [ev](std::uint64_t done, std::uint64_t total) { ev->progress(done, total); };
}

gfs::HandleOptions
handle_options(const BuildOptions& options, bool network)
{
  gfs::HandleOptions h;
  h.network = network;
  h.log = log_sink(options);
  h.notice = notice_sink(options);
  h.progress = progress_sink(options);
  return h;
}

} // namespace kiln::build
