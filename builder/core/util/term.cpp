#include "core/util/term.hpp"

#include "core/util/error.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace kiln::util {

namespace {
std::atomic<int> g_signal{0};

extern "C" void
on_signal(int sig)
{
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig); // the first signal decides the exit status
}
} // namespace

bool
is_smart_terminal(int fd)
{
  if (::isatty(fd) == 0) {
    return false;
  }
  const char* term = std::getenv("TERM");
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

void
install_interrupt_handlers()
{
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  // A closed pipe on stdout or stderr is an error to report, not a reason to die
  // without cleaning up.
  ::signal(SIGPIPE, SIG_IGN);
}

bool
interrupted()
{
  return g_signal.load() != 0;
}

int
interrupt_signal()
{
  return g_signal.load();
}

int
interrupted_exit_code()
{
  int sig = g_signal.load();
  return sig != 0 ? 128 + sig : k_exit_interrupted;
}

void
check_interrupted()
{
  if (interrupted()) {
    throw Error("interrupted", "stopped by a signal; nothing was published", interrupted_exit_code());
  }
}

std::string
human_bytes(std::uint64_t bytes)
{
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", value, units[unit]);
  }
  return buf;
}

ProgressLine::ProgressLine(std::string label, bool enabled)
  : m_label(std::move(label)), m_enabled(enabled && is_smart_terminal(STDERR_FILENO))
{}

ProgressLine::~ProgressLine()
{
  if (m_drawn) {
    std::fputs("\r\033[K", stderr);
  }
}

void
ProgressLine::update(std::uint64_t done, std::uint64_t total)
{
  if (!m_enabled) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (m_drawn && now - m_last < std::chrono::milliseconds(100) && (total == 0 || done != total)) {
    return;
  }
  m_last = now;
  m_drawn = true;
  if (total > 0) {
    std::fprintf(stderr, "\r\033[K%s: %s / %s (%d%%)", m_label.c_str(), human_bytes(done).c_str(),
                 human_bytes(total).c_str(), static_cast<int>(done * 100 / total));
  } else {
    std::fprintf(stderr, "\r\033[K%s: %s", m_label.c_str(), human_bytes(done).c_str());
  }
  std::fflush(stderr);
}

void
ProgressLine::finish()
{
  if (m_drawn) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    m_drawn = false;
  }
}

} // namespace kiln::util
