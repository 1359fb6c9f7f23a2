// Where a build's time goes, told to the build's log (shown by `kiln build -v`) as
// "time: PHASE 12.3 s": a scope timer, and laps for straight-line code.
#pragma once

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <utility>

namespace kiln::build {

// "time: PHASE 12.3 s" for the log (nothing when there is no log).
inline void
report_phase(const std::function<void(const std::string&)>& log, const std::string& phase,
             std::chrono::steady_clock::duration took)
{
  if (!log) {
    return;
  }
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f s", std::chrono::duration<double>(took).count());
  log("time: " + phase + " " + seconds);
}

// Phases one after another in straight-line code: each lap() reports the time since the
// previous one (or since the start).
class Laps {
public:
  explicit Laps(std::function<void(const std::string&)> log) : m_log(std::move(log)) {}
  void lap(const std::string& phase)
  {
    auto now = std::chrono::steady_clock::now();
    report_phase(m_log, phase, now - m_last);
    m_last = now;
  }

private:
  std::function<void(const std::string&)> m_log;
  std::chrono::steady_clock::time_point m_last = std::chrono::steady_clock::now();
};

// Times its scope; a phase that ends by an exception is reported by its error instead.
class PhaseTimer {
public:
  PhaseTimer(std::function<void(const std::string&)> log, std::string phase)
    : m_log(std::move(log)), m_phase(std::move(phase)), m_exceptions(std::uncaught_exceptions())
  {}
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;
  ~PhaseTimer()
  {
    if (!m_log || std::uncaught_exceptions() != m_exceptions) {
      return; // a failed phase is reported by its error, not timed
    }
    try {
      report_phase(m_log, m_phase, std::chrono::steady_clock::now() - m_start);
    } catch (...) {
      // a log that cannot be written loses the line, never the build
    }
  }

private:
  std::function<void(const std::string&)> m_log;
  std::string m_phase;
  int m_exceptions;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
};

} // namespace kiln::build
