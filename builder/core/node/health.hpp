// Health as `kiln-node mark-good --when-healthy` judges it. With DC/OS first boot in the
// image: the install finished, the role's Mesos unit is active, and Mesos itself says so
// (DC/OS's own upgrade gates, dcos.md 9.2): an agent is registered with a master
// (slave/registered = 1 in :5051/metrics/snapshot); a master has recovered its replicated
// log (registrar/log/recovered = 1 in :5050/metrics/snapshot) and its ZooKeeper answers
// `ruok` with `imok` on :2181. Without DC/OS, systemd's overall state decides. Every
// request goes to localhost with a short deadline and a size bound.
#pragma once

#include "core/dcos/role.hpp"
#include <filesystem>
#include <optional>
#include <string>

namespace kiln::node {

// Empty when healthy, else one phrase saying what is missing.
std::string health_problem(const std::filesystem::path& root);

// The role recorded in ROOT/etc/kiln/dcos-role (trimmed); nullopt when the file is absent.
std::optional<std::string> recorded_dcos_role(const std::filesystem::path& root);

// What Mesos (and for a master ZooKeeper) says is missing for `role` (master, slave,
// slave_public); empty when nothing is.
std::string mesos_problem(dcos::Role role);

} // namespace kiln::node
