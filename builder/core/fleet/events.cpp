#include "core/fleet/events.hpp"

namespace kiln::fleet {

std::string
to_string(Event::Kind kind)
{
  switch (kind) {
    case Event::Kind::batch:
      return "batch";
    case Event::Kind::phase:
      return "phase";
    case Event::Kind::note:
      return "note";
    case Event::Kind::failed:
      return "failed";
    case Event::Kind::finished:
      return "finished";
  }
  return "note";
}

} // namespace kiln::fleet
