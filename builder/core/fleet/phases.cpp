#include "core/fleet/phases.hpp"

#include "core/fleet/durations.hpp"

#include <algorithm>
#include <array>

namespace kiln::fleet {

namespace {

constexpr std::array<std::pair<Phase, const char*>, 13> k_names{{
  {Phase::pending, "pending"},
  {Phase::scheduled, "scheduled"},
  {Phase::cleared, "cleared"},
  {Phase::draining, "draining"},
  {Phase::drained, "drained"},
  {Phase::down, "down"},
  {Phase::written, "written"},
  {Phase::rebooting, "rebooting"},
  {Phase::back, "back"},
  {Phase::gone, "gone"},
  {Phase::up, "up"},
  {Phase::rejoined, "rejoined"},
  {Phase::done, "done"},
}};

} // namespace

std::string
to_string(Phase phase)
{
  for (const auto& [p, name] : k_names) {
    if (p == phase) {
      return name;
    }
  }
  return "pending";
}

std::optional<Phase>
parse_phase(const std::string& text)
{
  for (const auto& [p, name] : k_names) {
    if (text == name) {
      return p;
    }
  }
  return std::nullopt;
}

const std::vector<Phase>&
phases_for(const Node& node, Action::Kind action)
{
  using P = Phase;
  static const std::vector<Phase> reimage{P::pending,   P::scheduled, P::draining, P::drained,  P::down, P::written,
                                          P::rebooting, P::back,      P::up,       P::rejoined, P::done};
  // A wipe retires the old agent id for good once it is drained (DC/OS's decommission: a
  // gone id can never register again), before the machine goes down.
  static const std::vector<Phase> wipe{P::pending, P::scheduled, P::draining, P::drained, P::gone,     P::down,
                                       P::written, P::rebooting, P::back,     P::up,      P::rejoined, P::done};
  static const std::vector<Phase> master{P::pending, P::cleared,  P::written, P::rebooting,
                                         P::back,    P::rejoined, P::done};
  if (node.is_master()) {
    return master;
  }
  return action == Action::Kind::wipe ? wipe : reimage;
}

std::optional<Phase>
next_phase(const Node& node, Action::Kind action, Phase current)
{
  const auto& all = phases_for(node, action);
  auto it = std::find(all.begin(), all.end(), current);
  if (it == all.end() || it + 1 == all.end()) {
    return std::nullopt;
  }
  return *(it + 1);
}

std::string
describe_step(Phase phase, const Node& node, const Cluster& c)
{
  const auto& d = c.limits.deadlines;
  const bool wipe = c.action.kind == Action::Kind::wipe;
  switch (phase) {
    case Phase::pending:
      return "nothing yet";
    case Phase::scheduled:
      return "check the node answers (kiln-node status), find its agent (GET_AGENTS), add a maintenance window for "
             "its machine (hostname, ip) (UPDATE_MAINTENANCE_SCHEDULE)";
    case Phase::cleared:
      return "wait until every other master is healthy (a leader, registrar/log/recovered 1, ZooKeeper imok; " +
             show(d.master) + ")";
    case Phase::draining:
      return "DRAIN_AGENT (max grace period " + show(c.limits.drain_grace) + ")";
    case Phase::drained:
      return "wait for DRAINED (" + show(d.drain) + ")";
    case Phase::down:
      return "machine down (START_MAINTENANCE)";
    case Phase::written:
      return wipe ? c.node_command + " wipe --dcos (" + show(d.command) + ")"
                  : c.node_command + " reimage " + c.action.bundle_url + " (" + show(d.command) + ")";
    case Phase::rebooting:
      if (node.is_master()) {
        return "wait until every other master is healthy again (" + show(d.master) + "), then " + c.reboot_command;
      }
      return c.reboot_command;
    case Phase::back:
      return std::string("wait for a new boot and ") + (wipe ? "the same slot" : "the other slot") +
             " booted and good (kiln-node status; " + show(d.boot) + ")";
    case Phase::gone:
      return "mark the old agent id gone (MARK_AGENT_GONE)";
    case Phase::up:
      return "machine up (STOP_MAINTENANCE), window removed";
    case Phase::rejoined:
      if (node.is_master()) {
        return "wait until this master is healthy again (" + show(d.master) + ")";
      }
      return std::string(wipe ? "wait for a new agent id on the host"
                              : "wait for the agent to register again (the old id if it kept it, reactivated; "
                                "else the new one)") +
             ", active in GET_AGENTS (" + show(d.rejoin) + ")";
    case Phase::done:
      return "done";
  }
  return "";
}

} // namespace kiln::fleet
