#include "core/fleet/controller.hpp"

#include "core/fleet/durations.hpp"
#include "core/util/error.hpp"
#include "core/util/parallel.hpp"
#include "core/util/term.hpp"

namespace kiln::fleet {

using nlohmann::json;

namespace {

// A peer's failure stopped this node at a phase boundary: not an error of its own.
struct Stopped {};

MachineId
machine(const Node& node)
{
  return {node.host, node.address};
}

std::string
first_line(const std::string& text)
{
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

std::string
other(const std::string& slot)
{
  return slot == "A" ? "B" : "A";
}

} // namespace

json
Controller::SerialApi::call(const json& request)
{
  std::lock_guard<std::mutex> hold(m_lock);
  return m_api.call(request);
}

Controller::Controller(const Cluster& cluster, Seams seams, ControlOptions options)
  : m_cluster(cluster), m_seams(seams), m_serial(seams.api), m_options(std::move(options))
{}

void
Controller::emit(Event e)
{
  // Callers hold m_lock.
  m_seams.events.emit(e);
}

std::vector<Node>
Controller::masters() const
{
  std::vector<Node> out;
  for (const auto& n : m_cluster.nodes) {
    if (n.is_master()) {
      out.push_back(n);
    }
  }
  return out;
}

void
Controller::save(RunState& state)
{
  save_state(m_cluster.state_file, state);
}

void
Controller::run(const Plan& plan, RunState& state)
{
  for (std::size_t i = 0; i < plan.batches.size(); ++i) {
    const Batch& batch = plan.batches[i];
    bool all_done = true;
    std::string names;
    for (const auto& n : batch.nodes) {
      all_done = all_done && state.nodes.at(n.host).phase == Phase::done;
      names += (names.empty() ? "" : " ") + n.host;
    }
    if (all_done) {
      continue;
    }
    {
      std::lock_guard<std::mutex> hold(m_lock);
      Event e{Event::Kind::batch,
              "",
              "",
              "batch " + std::to_string(i + 1) + " of " + std::to_string(plan.batches.size()) + ": " + names,
              {}};
      for (const auto& n : batch.nodes) {
        e.hosts.push_back(n.host);
      }
      emit(e);
    }
    std::string failure_host, failure;
    util::parallel_for(batch.nodes.size(), batch.nodes.size(), [&](std::size_t k) {
      const Node& node = batch.nodes[k];
      try {
        run_node(node, state);
      } catch (const Stopped&) {
      } catch (const Error& e) {
        std::lock_guard<std::mutex> hold(m_lock);
        if (failure.empty()) {
          failure_host = node.host;
          failure = e.reason();
        }
        m_failed = true;
        if (e.exit_code() != k_exit_failure) {
          throw; // interrupted: the exit status says so
        }
      }
    });
    if (m_failed) {
      throw Error(failure_host, failure);
    }
  }
  std::lock_guard<std::mutex> hold(m_lock);
  emit({Event::Kind::finished, "", "", state.action + ": every node done", {}});
}

void
Controller::run_node(const Node& node, RunState& state)
{
  NodeState ns;
  {
    std::lock_guard<std::mutex> hold(m_lock);
    ns = state.nodes.at(node.host);
  }
  for (;;) {
    std::optional<Phase> next = next_phase(node, m_cluster.action.kind, ns.phase);
    if (!next) {
      return;
    }
    {
      std::lock_guard<std::mutex> hold(m_lock);
      if (m_failed) {
        throw Stopped{};
      }
    }
    try {
      util::check_interrupted();
      step(node, *next, ns);
    } catch (const Error& e) {
      std::lock_guard<std::mutex> hold(m_lock);
      const std::string why = e.subject() == node.host ? e.reason() : std::string(e.what());
      ns.error = to_string(*next) + ": " + why;
      state.nodes[node.host] = ns;
      save(state);
      emit({Event::Kind::failed, node.host, to_string(*next), why, {}});
      throw Error(node.host, ns.error, e.exit_code());
    }
    std::lock_guard<std::mutex> hold(m_lock);
    ns.phase = *next;
    ns.error.clear();
    state.nodes[node.host] = ns;
    save(state);
    emit({Event::Kind::phase, node.host, to_string(*next), describe_step(*next, node, m_cluster), {}});
    if (m_options.stop_after && *m_options.stop_after == *next && m_options.stop) {
      m_options.stop();
    }
  }
}

void
Controller::step(const Node& node, Phase into, NodeState& ns)
{
  switch (into) {
    case Phase::pending:
    case Phase::done:
      return;
    case Phase::scheduled:
      return schedule(node, ns);
    case Phase::cleared:
      return wait_others(node);
    case Phase::draining:
      return drain(node, ns);
    case Phase::drained:
      return wait_drained(node, ns);
    case Phase::down:
      return machine_down(node);
    case Phase::written:
      return write(node, ns);
    case Phase::rebooting:
      return reboot(node, ns);
    case Phase::back:
      return wait_back(node, ns);
    case Phase::gone:
      return mark_gone(node, ns);
    case Phase::up:
      return machine_up(node);
    case Phase::rejoined:
      return node.is_master() ? wait_master(node) : wait_rejoined(node, ns);
  }
}

// ---- node side ----

json
Controller::node_status(const Node& node)
{
  const std::string command = m_cluster.node_command + " " + shell_command({"--json", "status"});
  util::RunResult r = m_seams.transport.run(node, command, std::chrono::minutes(1));
  if (!r.ok()) {
    throw Error(node.host, "kiln-node status: exit " + std::to_string(r.exit_code) + ": " + first_line(r.tail(1)));
  }
  try {
    json j = json::parse(r.out);
    if (!j.is_object() || !j.contains("slots")) {
      throw Error(node.host, "kiln-node status: not a status report");
    }
    return j;
  } catch (const json::exception&) {
    throw Error(node.host, "kiln-node status: the answer is not JSON");
  }
}

std::string
Controller::boot_id(const Node& node)
{
  util::RunResult r = m_seams.transport.run(node, m_cluster.boot_id_command, std::chrono::minutes(1));
  std::string id = first_line(r.out);
  if (!r.ok() || id.empty()) {
    throw Error(node.host, "boot id: exit " + std::to_string(r.exit_code) + ": " + first_line(r.tail(1)));
  }
  return id;
}

void
Controller::write(const Node& node, NodeState& ns)
{
  std::vector<std::string> args = {"--json"};
  if (m_cluster.action.kind == Action::Kind::wipe) {
    args.insert(args.end(), {"wipe", "--dcos"});
  } else {
    args.insert(args.end(), {"reimage", m_cluster.action.bundle_url});
  }
  if (ns.booted_before.empty()) {
    json st = node_status(node);
    ns.booted_before = st.value("booted", json()).is_string() ? st["booted"].get<std::string>() : "";
    if (ns.booted_before.empty()) {
      throw Error(node.host, "kiln-node status names no booted slot");
    }
  }
  const std::string command = m_cluster.node_command + " " + shell_command(args);
  util::RunResult r = m_seams.transport.run(node, command, m_cluster.limits.deadlines.command);
  if (!r.ok()) {
    throw Error(node.host,
                "kiln-node " + args[1] + ": exit " + std::to_string(r.exit_code) + ": " + first_line(r.tail(1)));
  }
  ns.boot_id = boot_id(node);
}

std::string
Controller::answering_boot_id(const Node& node)
{
  std::string id;
  wait_for("not answering", m_cluster.limits.deadlines.boot, [&]() -> std::string {
    try {
      id = boot_id(node);
    } catch (const Error& e) {
      return e.reason();
    }
    return {};
  });
  return id;
}

void
Controller::reboot(const Node& node, const NodeState& ns)
{
  // A run that ended after sending the reboot but before saving `rebooting` must not
  // reboot again (each boot of a slot on trial takes one of GRUB's tries).
  if (!ns.boot_id.empty() && answering_boot_id(node) != ns.boot_id) {
    return;
  }
  if (node.is_master()) {
    wait_others(node); // checked again now: writing the node may have taken long
  }
  send_reboot(node);
  if (m_options.stop_after_reboot_sent && m_options.stop) {
    m_options.stop();
  }
}

void
Controller::send_reboot(const Node& node)
{
  util::RunResult r = m_seams.transport.run(node, m_cluster.reboot_command, std::chrono::minutes(2));
  // 255: ssh lost the connection as the node went down, which a reboot may do.
  if (!r.ok() && r.exit_code != 255) {
    throw Error(node.host,
                m_cluster.reboot_command + ": exit " + std::to_string(r.exit_code) + ": " + first_line(r.tail(1)));
  }
}

void
Controller::wait_back(const Node& node, NodeState& ns)
{
  const bool wipe = m_cluster.action.kind == Action::Kind::wipe;
  const std::string expected = wipe ? ns.booted_before : other(ns.booted_before);
  wait_for("no new boot with slot " + expected + " booted and good", m_cluster.limits.deadlines.boot,
           [&]() -> std::string {
             std::string id;
             try {
               id = boot_id(node);
             } catch (const Error& e) {
               return "not answering (" + std::string(e.reason()) + ")";
             }
             if (id == ns.boot_id) {
               return "not rebooted yet";
             }
             json st;
             try {
               st = node_status(node);
             } catch (const Error& e) {
               return e.reason();
             }
             const std::string booted = st.value("booted", json()).is_string() ? st["booted"].get<std::string>() : "";
             if (booted != expected) {
               return "slot " + (booted.empty() ? std::string("?") : booted) + " booted, not " + expected;
             }
             const std::string state = st["slots"].value(expected, json::object()).value("state", "");
             if (state != "good") {
               return "slot " + expected + " booted but " + state + ", not good";
             }
             return {};
           });
}

// ---- Mesos side ----

std::optional<Agent>
Controller::agent_on(const std::string& host)
{
  std::optional<Agent> found;
  for (const auto& a : get_agents(m_serial)) {
    if (a.hostname == host) {
      found = a;
      if (a.active) {
        break;
      }
    }
  }
  return found;
}

void
Controller::schedule(const Node& node, NodeState& ns)
{
  json st = node_status(node);
  ns.booted_before = st.value("booted", json()).is_string() ? st["booted"].get<std::string>() : "";
  if (ns.booted_before.empty()) {
    throw Error(node.host, "kiln-node status names no booted slot");
  }
  if (ns.agent_id.empty()) {
    auto agent = agent_on(node.host);
    if (!agent) {
      throw Error(node.host, "no agent with this hostname is registered with the master (GET_AGENTS)");
    }
    ns.agent_id = agent->id;
  }
  std::lock_guard<std::mutex> hold(m_lock); // read-modify-write of the whole schedule
  json schedule = get_schedule(m_serial);
  if (scheduled(schedule, machine(node))) {
    return;
  }
  const auto& d = m_cluster.limits.deadlines;
  const Millis expected = d.drain + d.command + d.boot + d.rejoin;
  update_schedule(m_serial, with_window(schedule, machine(node), m_seams.clock.wall_ns(),
                                        std::chrono::duration_cast<std::chrono::nanoseconds>(expected).count()));
}

void
Controller::drain(const Node& node, NodeState& ns)
{
  auto agent = agent_on(node.host);
  if (agent && agent->id == ns.agent_id && !agent->drain_state.empty()) {
    return; // DRAINING or DRAINED already
  }
  if (!agent || agent->id != ns.agent_id) {
    throw Error(node.host, "agent " + ns.agent_id + " is no longer registered (GET_AGENTS)");
  }
  drain_agent(m_serial, ns.agent_id,
              std::chrono::duration_cast<std::chrono::nanoseconds>(m_cluster.limits.drain_grace).count());
}

void
Controller::wait_drained(const Node& node, NodeState& ns)
{
  wait_for("agent " + ns.agent_id + " not drained", m_cluster.limits.deadlines.drain, [&]() -> std::string {
    for (const auto& a : get_agents(m_serial)) {
      if (a.id == ns.agent_id) {
        return a.drain_state == "DRAINED" ? std::string()
                                          : "drain state " + (a.drain_state.empty() ? "none" : a.drain_state);
      }
    }
    (void)node;
    return "not in GET_AGENTS";
  });
}

void
Controller::machine_down(const Node& node)
{
  if (!fleet::machine_down(m_serial, machine(node))) {
    start_maintenance(m_serial, machine(node));
  }
}

void
Controller::mark_gone(const Node& node, NodeState& ns)
{
  (void)node;
  for (const auto& a : get_agents(m_serial)) {
    if (a.id == ns.agent_id) {
      mark_agent_gone(m_serial, ns.agent_id);
      return;
    }
  }
  // Not registered any more: marked gone already (a resumed run), or removed.
}

void
Controller::machine_up(const Node& node)
{
  if (fleet::machine_down(m_serial, machine(node))) {
    stop_maintenance(m_serial, machine(node));
  }
  std::lock_guard<std::mutex> hold(m_lock);
  json schedule = get_schedule(m_serial);
  if (scheduled(schedule, machine(node))) {
    update_schedule(m_serial, without_machine(schedule, machine(node)));
  }
}

void
Controller::wait_rejoined(const Node& node, NodeState& ns)
{
  // Mesos removes the agents of a machine that goes DOWN and tells them to shut down; an
  // agent shut down by its master forgets its id, so it registers with a new one once the
  // machine is up. A reimage therefore takes the old id when the agent kept it (reactivated:
  // a drained agent stays deactivated), else a new one; a wipe always wants a new one.
  const bool wipe = m_cluster.action.kind == Action::Kind::wipe;
  wait_for((wipe ? "no new agent on " : "no agent active again on ") + node.host, m_cluster.limits.deadlines.rejoin,
           [&]() -> std::string {
             std::optional<Agent> old, fresh;
             for (const auto& a : get_agents(m_serial)) {
               if (a.hostname != node.host) {
                 continue;
               }
               if (a.id == ns.agent_id) {
                 old = a;
               } else if (!fresh || a.active) {
                 fresh = a;
               }
             }
             const std::optional<Agent>& a = wipe || !old ? fresh : old;
             if (!a) {
               return "not registered";
             }
             if (a->deactivated) {
               reactivate_agent(m_serial, a->id);
               return "reactivated";
             }
             if (!a->active) {
               return "registered, not active";
             }
             ns.new_agent_id = a->id;
             return {};
           });
}

// ---- masters ----

void
Controller::wait_others(const Node& node)
{
  auto all = masters();
  wait_for("the other masters not healthy", m_cluster.limits.deadlines.master,
           [&] { return others_problem(m_seams.masters, all, node.host); });
}

void
Controller::wait_master(const Node& node)
{
  auto all = masters();
  wait_for("not healthy again", m_cluster.limits.deadlines.master,
           [&] { return master_problem(m_seams.masters, all, node); });
}

void
Controller::wait_for(const std::string& what, Millis deadline, const std::function<std::string()>& check)
{
  const Millis end = m_seams.clock.now() + deadline;
  for (;;) {
    std::string missing;
    try {
      missing = check();
    } catch (const MasterUnavailable& e) {
      missing = e.what(); // a master failing over: not yet
    }
    if (missing.empty()) {
      return;
    }
    if (m_seams.clock.now() >= end) {
      throw Error(what + " within " + show(deadline), missing);
    }
    {
      std::lock_guard<std::mutex> hold(m_lock);
      if (m_failed) {
        throw Stopped{};
      }
    }
    m_seams.clock.sleep(m_cluster.limits.poll);
  }
}

} // namespace kiln::fleet
