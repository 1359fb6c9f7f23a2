#include "core/fleet/plan.hpp"

#include "core/fleet/durations.hpp"
#include "core/fleet/phases.hpp"
#include "core/util/error.hpp"

namespace kiln::fleet {

std::size_t
quorum(std::size_t masters)
{
  return masters / 2 + 1;
}

Plan
make_plan(const Cluster& cluster, const PlanOptions& options)
{
  Plan plan;
  plan.action = cluster.action;
  std::vector<Node> masters, agents;
  for (const auto& n : cluster.nodes) {
    (n.is_master() ? masters : agents).push_back(n);
  }
  plan.masters = masters.size();
  plan.agents = agents.size();
  const std::string subject = cluster.file.string();
  if (!masters.empty()) {
    // The cluster file lists every master of the cluster (ARCHITECTURE.md, README "Fleet"):
    // one down at a time must leave a majority up.
    const std::size_t total = masters.size();
    if (total - 1 < quorum(total)) {
      throw Error(subject, "refused: taking 1 of " + std::to_string(total) + " master" + (total == 1 ? "" : "s") +
                             " down leaves " + std::to_string(total - 1) + ", fewer than the quorum of " +
                             std::to_string(quorum(total)) + " that ZooKeeper and the Mesos replicated log need");
    }
    if (cluster.action.kind == Action::Kind::wipe && !options.force_wipe_masters) {
      throw Error(subject, "refused: wiping a master deletes its ZooKeeper and Mesos replicated-log state; "
                           "pass --force-wipe-masters to do it anyway (one master at a time)");
    }
  }
  for (const auto& m : masters) {
    plan.batches.push_back({true, {m}});
  }
  for (std::size_t i = 0; i < agents.size(); i += cluster.limits.agents_at_once) {
    Batch b;
    for (std::size_t j = i; j < agents.size() && j < i + cluster.limits.agents_at_once; ++j) {
      b.nodes.push_back(agents[j]);
    }
    plan.batches.push_back(std::move(b));
  }
  return plan;
}

std::vector<std::string>
describe_plan(const Plan& plan, const Cluster& cluster)
{
  std::vector<std::string> out;
  out.push_back(plan.action.str() + ": " + std::to_string(plan.masters) + " master(s) one at a time, then " +
                std::to_string(plan.agents) + " agent(s), at most " + std::to_string(cluster.limits.agents_at_once) +
                " at once");
  out.push_back("state file: " + cluster.state_file.string());
  for (std::size_t i = 0; i < plan.batches.size(); ++i) {
    const Batch& b = plan.batches[i];
    std::string names;
    for (const auto& n : b.nodes) {
      names += (names.empty() ? "" : ", ") + n.host + " (" + n.address + ", " + to_string(n.role) + ")";
    }
    out.push_back("batch " + std::to_string(i + 1) + ": " + names);
    const auto& phases = phases_for(b.nodes.front(), plan.action.kind);
    for (std::size_t p = 1; p + 1 < phases.size(); ++p) {
      out.push_back("  " + std::to_string(p) + ". " + to_string(phases[p]) + ": " +
                    describe_step(phases[p], b.nodes.front(), cluster));
    }
  }
  out.push_back("on failure: the run stops at the failing node, nothing further starts; `run` again resumes");
  return out;
}

} // namespace kiln::fleet
