// What a run does, in order, decided from the cluster file alone (nothing asked of the
// cluster): masters first, one at a time, then the agents in batches of at most
// limits.agents_at_once, in the file's order. Plans that would lose the masters' quorum,
// and a wipe of masters without the flag that allows it, are refused here, before anything
// is touched.
#pragma once

#include "core/fleet/cluster.hpp"

#include <string>
#include <vector>

namespace kiln::fleet {

struct PlanOptions {
  // `--force-wipe-masters`: a master's wipe deletes its ZooKeeper and replicated-log state;
  // allowed only when asked for by name.
  bool force_wipe_masters = false;
};

struct Batch {
  bool masters = false;
  std::vector<Node> nodes;
};

struct Plan {
  Action action;
  std::vector<Batch> batches;
  std::size_t masters = 0;
  std::size_t agents = 0;
};

// Throws Error(CLUSTER_FILE, reason) for a plan that is refused.
Plan make_plan(const Cluster& cluster, const PlanOptions& options = {});

// `kiln-fleet plan`'s text: the batches in order, each node's steps.
std::vector<std::string> describe_plan(const Plan& plan, const Cluster& cluster);

// Masters that must stay up for ZooKeeper's and the replicated log's quorum: a majority.
std::size_t quorum(std::size_t masters);

} // namespace kiln::fleet
