#include "core/fleet/durations.hpp"

namespace kiln::fleet {

std::string
show(Millis d)
{
  const long long ms = d.count();
  if (ms != 0 && ms % 3600000 == 0) {
    return std::to_string(ms / 3600000) + "h";
  }
  if (ms != 0 && ms % 60000 == 0) {
    return std::to_string(ms / 60000) + "m";
  }
  if (ms % 1000 == 0) {
    return std::to_string(ms / 1000) + "s";
  }
  return std::to_string(ms) + "ms";
}

} // namespace kiln::fleet
