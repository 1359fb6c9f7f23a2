#include "image/pipeline/options.hpp"

namespace kiln::build {

void
say(const BuildOptions& options, const std::string& line)
{
  if (options.status) {
    options.status(line);
  }
}

std::function<void(const std::string&)>
notice_sink(const BuildOptions& options)
{
  return options.notice ? options.notice : options.log;
}

gfs::HandleOptions
handle_options(const BuildOptions& options, bool network)
{
  gfs::HandleOptions h;
  h.network = network;
  h.log = options.log;
  h.notice = notice_sink(options);
  h.progress = options.progress;
  return h;
}

} // namespace kiln::build
