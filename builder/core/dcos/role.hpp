// A DC/OS node's role, as the installer names it (dcos_install.sh ROLE; dcos.md 2):
// master, slave (a private agent) or slave_public (a public agent).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::dcos {

enum class Role { master, slave, slave_public };

// The installer's spelling.
const char* role_name(Role role);
// nullopt for anything else (no trimming: callers trim what they read from files).
std::optional<Role> parse_role(std::string_view name);
// Every role's name, in that order ("known: ..." in errors, recipe checks).
const std::vector<std::string>& roles();
// The systemd unit that runs Mesos for the role (dcos-mesos-master.service, ...).
const char* mesos_unit(Role role);

} // namespace kiln::dcos
