// What a run reports as it goes: typed events the executable renders (a line per phase on
// a terminal and in CI, JSON lines with --json). The library never prints.
#pragma once

#include <string>
#include <vector>

namespace kiln::fleet {

struct Event {
  enum class Kind { batch, phase, note, failed, finished };
  Kind kind = Kind::note;
  std::string host; // empty for batch and finished
  std::string phase; // the phase reached (phase), or the one being worked on (failed)
  std::string message;
  std::vector<std::string> hosts; // batch: its nodes
};

// "batch", "phase", "note", "failed", "finished"
std::string to_string(Event::Kind kind);

class Events {
public:
  virtual ~Events() = default;
  // Called from the threads of a batch, one call at a time (the controller serializes).
  virtual void emit(const Event& event) = 0;
};

} // namespace kiln::fleet
