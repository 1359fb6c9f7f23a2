// Time as the controller sees it: the steady clock for deadlines, the wall clock for
// maintenance windows, and sleeps that end early when the process is interrupted. The
// unit tests use a fake that only advances when slept.
#pragma once

#include "core/fleet/cluster.hpp"

#include <cstdint>

namespace kiln::fleet {

class Clock {
public:
  virtual ~Clock() = default;
  virtual Millis now() = 0; // monotonic
  virtual std::int64_t wall_ns() = 0; // since the epoch, for Mesos TimeInfo
  // Sleeps `d`; throws the interrupted error when SIGINT/SIGTERM arrive meanwhile.
  virtual void sleep(Millis d) = 0;
};

class SystemClock : public Clock {
public:
  Millis now() override;
  std::int64_t wall_ns() override;
  void sleep(Millis d) override;
};

} // namespace kiln::fleet
