// Each node's way through a run, as explicit phases. A phase names what has been done
// and confirmed; the state file records the last one reached, and `run` continues with
// the step into the next. Every step checks before it acts (a window already there is not
// added twice, a machine already down is not downed again), so a run interrupted at any
// boundary, or inside a step, resumes correctly.
//
//   agent, reimage: pending scheduled draining drained down written rebooting back up rejoined done
//   agent, wipe:    pending scheduled draining drained gone down written rebooting back up rejoined done
//   master:         pending cleared written rebooting back rejoined done
#pragma once

#include "core/fleet/cluster.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kiln::fleet {

enum class Phase {
  pending, // nothing done yet
  scheduled, // the machine is in a maintenance window (UPDATE_MAINTENANCE_SCHEDULE); agent id known
  cleared, // master: every other master healthy, so this one may be written (checked again
  // before the reboot)
  draining, // DRAIN_AGENT accepted
  drained, // GET_AGENTS: drain_info.state DRAINED
  down, // START_MAINTENANCE: the machine is DOWN; Mesos removed its agent and refuses it until up
  written, // kiln-node reimage URL / wipe --dcos succeeded on the node; its boot id recorded
  rebooting, // the reboot command was sent (master: right after every other master was
  // found healthy again); skipped when the boot id already differs from written's
  back, // a new boot id, and kiln-node status: the expected slot booted and good
  gone, // wipe: the drained agent's id marked gone (MARK_AGENT_GONE): retired for good
  up, // STOP_MAINTENANCE: the machine is up, its window gone
  rejoined, // the agent active in GET_AGENTS (a new id after a wipe; after a reimage the old
  // id if the agent kept it, else the new one it registered with); master: healthy again
  done,
};

std::string to_string(Phase phase);
std::optional<Phase> parse_phase(const std::string& text);

// The phases a node goes through, pending first, done last.
const std::vector<Phase>& phases_for(const Node& node, Action::Kind action);

// The phase after `current` for this node, or nullopt after done.
std::optional<Phase> next_phase(const Node& node, Action::Kind action, Phase current);

// What the step into `phase` does, for `kiln-fleet plan` (one line).
std::string describe_step(Phase phase, const Node& node, const Cluster& cluster);

} // namespace kiln::fleet
