// Terminal output: progress that redraws one line on a terminal and stays silent
// elsewhere (CI logs, pipes), and the interrupt flag that long loops poll.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::util {

// True when `fd` is a terminal that can redraw a line (isatty and TERM is not "dumb").
bool is_smart_terminal(int fd);

// Installs SIGINT/SIGTERM/SIGHUP handlers that only set a flag (see interrupted()) and
// ignores SIGPIPE.
void install_interrupt_handlers();
// True once SIGINT, SIGTERM or SIGHUP arrived. Long operations poll it and abort with an Error.
bool interrupted();
// The first of those signals that arrived (0: none).
int interrupt_signal();
// 128 + that signal (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), as shells report it.
int interrupted_exit_code();
// Throws Error("interrupted", ..., interrupted_exit_code()) when interrupted() is true.
void check_interrupted();

// A one-line progress display on stderr. Draws only when stderr is a smart terminal;
// otherwise every call is a no-op, so CI logs stay clean.
class ProgressLine {
public:
  explicit ProgressLine(std::string label, bool enabled);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine();

  // `total` 0 means unknown.
  void update(std::uint64_t done, std::uint64_t total);
  void finish();

private:
  std::string m_label;
  bool m_enabled;
  bool m_drawn = false;
  std::chrono::steady_clock::time_point m_last{};
};

// "1.5 MiB" style rendering of a byte count.
std::string human_bytes(std::uint64_t bytes);

} // namespace kiln::util
