// systemd units in an offline guest: enabled, disabled and masked as the symlinks
// `systemctl` would make, read from the units' [Install] sections.
#pragma once

#include "image/edit/editor.hpp"

#include <map>
#include <string>
#include <vector>

namespace kiln::steps {

// Parses [Install] keys of a unit file: key -> values (space-separated lists merged).
std::map<std::string, std::vector<std::string>> unit_install_section(const std::string& text);

// Enables a unit the way `systemctl enable` would: symlinks for WantedBy=, RequiredBy=,
// Alias= and Also= from its [Install] section (a template through DefaultInstance=).
// Throws when the unit does not exist or cannot be enabled.
void enable_unit(edit::Editor& g, const std::string& unit);
// Removes the .wants/.requires links and aliases of a unit.
void disable_unit(edit::Editor& g, const std::string& unit);
// Disables the unit and links /etc/systemd/system/UNIT to /dev/null (no unit file needed).
void mask_unit(edit::Editor& g, const std::string& unit);

} // namespace kiln::steps
