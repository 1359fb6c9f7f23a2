// The run's state file: each node's last phase and what later steps need (agent ids,
// the slot booted before, the boot id before the reboot). Written atomically (temp file,
// fsync, rename) after every phase, so a run killed at any point finds a consistent file;
// `run` resumes from it and `status` shows it.
#pragma once

#include "core/fleet/cluster.hpp"
#include "core/fleet/phases.hpp"

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace kiln::fleet {

struct NodeState {
  Phase phase = Phase::pending;
  std::string agent_id; // the agent's id when the node was scheduled
  std::string new_agent_id; // the id it rejoined with
  std::string booted_before; // "A" or "B": the slot booted when the node was scheduled
  std::string boot_id; // the node's boot id before the reboot
  std::string error; // the failure that stopped the run here, if any
};

struct RunState {
  std::string action; // Action::str() of the run that wrote it
  std::map<std::string, NodeState> nodes; // by host
};

// Bounded read (1 MiB); nullopt when the file does not exist. Throws Error for a file that
// is not a state file.
std::optional<RunState> load_state(const std::filesystem::path& path);
void save_state(const std::filesystem::path& path, const RunState& state);

// A fresh state for `cluster`, or the one found, checked to belong to this cluster file's
// action and nodes (else Error: the file is another run's).
RunState start_state(const Cluster& cluster, std::optional<RunState> found);

} // namespace kiln::fleet
