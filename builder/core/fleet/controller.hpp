// The run: the plan's batches in order, each node of a batch through its phases
// (phases.hpp) on a thread of its own, the state file saved after every phase. A failure
// stops the run: the failing node keeps the phase it reached and the error; the other
// nodes of its batch stop at their next phase boundary; no later batch starts.
#pragma once

#include "core/fleet/clock.hpp"
#include "core/fleet/cluster.hpp"
#include "core/fleet/events.hpp"
#include "core/fleet/master_health.hpp"
#include "core/fleet/mesos_api.hpp"
#include "core/fleet/plan.hpp"
#include "core/fleet/state.hpp"
#include "core/fleet/transport.hpp"

#include <functional>
#include <mutex>
#include <optional>

namespace kiln::fleet {

struct Seams {
  MesosApi& api;
  Transport& transport;
  MasterProbe& masters;
  Clock& clock;
  Events& events;
};

struct ControlOptions {
  // Test hook (kiln-fleet-test's KILN_FLEET_STOP_AFTER=PHASE): called once the state file
  // holds a node at this phase; the test build kills the process there.
  std::optional<Phase> stop_after;
  // Test hook (KILN_FLEET_STOP_AFTER=reboot-sent): stop() once the reboot command ran,
  // before `rebooting` is saved.
  bool stop_after_reboot_sent = false;
  std::function<void()> stop;
};

class Controller {
public:
  Controller(const Cluster& cluster, Seams seams, ControlOptions options = {});

  // Runs `plan` from `state` (saved to the cluster's state file after every phase).
  // Throws Error("HOST", "PHASE: reason") at the first failure, after the state is saved.
  void run(const Plan& plan, RunState& state);

private:
  void run_node(const Node& node, RunState& state);
  void step(const Node& node, Phase into, NodeState& ns);
  void save(RunState& state);

  // The steps.
  void schedule(const Node& node, NodeState& ns);
  void drain(const Node& node, NodeState& ns);
  void wait_drained(const Node& node, NodeState& ns);
  void machine_down(const Node& node);
  void write(const Node& node, NodeState& ns);
  // Unless the node booted since `written` (its boot id changed): a master only while the
  // other masters are healthy, then the reboot command.
  void reboot(const Node& node, const NodeState& ns);
  void send_reboot(const Node& node);
  void wait_back(const Node& node, NodeState& ns);
  void mark_gone(const Node& node, NodeState& ns);
  void machine_up(const Node& node);
  void wait_rejoined(const Node& node, NodeState& ns);
  void wait_others(const Node& node);
  void wait_master(const Node& node);

  // Polls `check` (empty: done; else what is missing) every limits.poll until `deadline`;
  // then Error(what + ": " + last answer). A MasterUnavailable from `check` is "not yet".
  void wait_for(const std::string& what, Millis deadline, const std::function<std::string()>& check);
  // kiln-node's `--json status` on the node (Error when it does not answer).
  nlohmann::json node_status(const Node& node);
  std::string boot_id(const Node& node);
  // The boot id, waited for until the node answers (deadlines.boot).
  std::string answering_boot_id(const Node& node);
  std::optional<Agent> agent_on(const std::string& host);
  std::vector<Node> masters() const;
  void emit(Event e);

  // The seam's API, one call at a time (the batch's threads share it).
  class SerialApi : public MesosApi {
  public:
    explicit SerialApi(MesosApi& api) : m_api(api) {}
    nlohmann::json call(const nlohmann::json& request) override;

  private:
    MesosApi& m_api;
    std::mutex m_lock;
  };

  const Cluster& m_cluster;
  Seams m_seams;
  SerialApi m_serial;
  ControlOptions m_options;
  std::mutex m_lock; // the state, the schedule's read-modify-write, events
  bool m_failed = false;
};

} // namespace kiln::fleet
