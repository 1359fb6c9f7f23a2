// Durations as the cluster file writes them and kiln-fleet shows them: "30s", "5m", "250ms".
#pragma once

#include "core/fleet/cluster.hpp"

#include <string>

namespace kiln::fleet {

// The largest whole unit: "2h", "5m", "30s", "250ms".
std::string show(Millis d);

} // namespace kiln::fleet
