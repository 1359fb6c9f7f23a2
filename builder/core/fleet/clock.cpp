#include "core/fleet/clock.hpp"

#include "core/util/term.hpp"

#include <thread>

namespace kiln::fleet {

Millis
SystemClock::now()
{
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch());
}

std::int64_t
SystemClock::wall_ns()
{
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

void
SystemClock::sleep(Millis d)
{
  const Millis end = now() + d;
  for (;;) {
    util::check_interrupted();
    const Millis left = end - now();
    if (left <= Millis(0)) {
      return;
    }
    std::this_thread::sleep_for(std::min(left, Millis(50)));
  }
}

} // namespace kiln::fleet
