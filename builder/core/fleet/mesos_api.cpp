#include "core/fleet/mesos_api.hpp"

#include "core/util/error.hpp"

namespace kiln::fleet {

using nlohmann::json;

namespace {

// The response's own member ("get_agents" for GET_AGENTS), checked to be there.
const json&
member(const json& response, const std::string& type, const std::string& key)
{
  if (!response.is_object() || !response.contains(key) || !response[key].is_object()) {
    throw Error("Mesos " + type, "the response has no '" + key + "' object");
  }
  return response[key];
}

std::string
string_at(const json& j, const json::json_pointer& p)
{
  return j.contains(p) && j[p].is_string() ? j[p].get<std::string>() : std::string();
}

bool
same_machine(const json& id, const MachineId& m)
{
  return id.is_object() && id.value("hostname", "") == m.hostname && id.value("ip", "") == m.ip;
}

// A google.protobuf.Duration as Mesos's JSON-to-protobuf reads it: the proto's own field
// names, seconds and nanos (an unknown key such as "nanoseconds" would be ignored: 0).
json
duration_json(std::int64_t ns)
{
  constexpr std::int64_t k_per_second = 1'000'000'000;
  return {{"seconds", ns / k_per_second}, {"nanos", ns % k_per_second}};
}

} // namespace

std::vector<Agent>
get_agents(MesosApi& api)
{
  json r = api.call({{"type", "GET_AGENTS"}});
  const json& ga = member(r, "GET_AGENTS", "get_agents");
  std::vector<Agent> out;
  if (!ga.contains("agents")) {
    return out;
  }
  for (const auto& a : ga["agents"]) {
    Agent agent;
    agent.id = string_at(a, "/agent_info/id/value"_json_pointer);
    agent.hostname = string_at(a, "/agent_info/hostname"_json_pointer);
    agent.active = a.value("active", false);
    agent.deactivated = a.value("deactivated", false);
    agent.drain_state = string_at(a, "/drain_info/state"_json_pointer);
    if (agent.id.empty()) {
      throw Error("Mesos GET_AGENTS", "an agent without agent_info.id.value");
    }
    out.push_back(agent);
  }
  return out;
}

json
get_schedule(MesosApi& api)
{
  json r = api.call({{"type", "GET_MAINTENANCE_SCHEDULE"}});
  const json& g = member(r, "GET_MAINTENANCE_SCHEDULE", "get_maintenance_schedule");
  json schedule = g.value("schedule", json::object());
  if (!schedule.is_object()) {
    throw Error("Mesos GET_MAINTENANCE_SCHEDULE", "schedule is not an object");
  }
  return schedule;
}

void
update_schedule(MesosApi& api, const json& schedule)
{
  api.call({{"type", "UPDATE_MAINTENANCE_SCHEDULE"}, {"update_maintenance_schedule", {{"schedule", schedule}}}});
}

bool
scheduled(const json& schedule, const MachineId& machine)
{
  for (const auto& w : schedule.value("windows", json::array())) {
    for (const auto& id : w.value("machine_ids", json::array())) {
      if (same_machine(id, machine)) {
        return true;
      }
    }
  }
  return false;
}

json
with_window(json schedule, const MachineId& machine, std::int64_t start_ns, std::int64_t duration_ns)
{
  json window = {
    {"machine_ids", json::array({machine.json()})},
    {"unavailability", {{"start", {{"nanoseconds", start_ns}}}, {"duration", {{"nanoseconds", duration_ns}}}}}};
  if (!schedule.contains("windows") || !schedule["windows"].is_array()) {
    schedule["windows"] = json::array();
  }
  schedule["windows"].push_back(window);
  return schedule;
}

json
without_machine(json schedule, const MachineId& machine)
{
  json windows = json::array();
  for (auto w : schedule.value("windows", json::array())) {
    json ids = json::array();
    for (const auto& id : w.value("machine_ids", json::array())) {
      if (!same_machine(id, machine)) {
        ids.push_back(id);
      }
    }
    if (!ids.empty()) {
      w["machine_ids"] = ids;
      windows.push_back(w);
    }
  }
  schedule["windows"] = windows;
  return schedule;
}

bool
machine_down(MesosApi& api, const MachineId& machine)
{
  json r = api.call({{"type", "GET_MAINTENANCE_STATUS"}});
  const json& g = member(r, "GET_MAINTENANCE_STATUS", "get_maintenance_status");
  const json status = g.value("status", json::object());
  for (const auto& id : status.value("down_machines", json::array())) {
    if (same_machine(id, machine)) {
      return true;
    }
  }
  return false;
}

void
start_maintenance(MesosApi& api, const MachineId& machine)
{
  api.call({{"type", "START_MAINTENANCE"}, {"start_maintenance", {{"machines", json::array({machine.json()})}}}});
}

void
stop_maintenance(MesosApi& api, const MachineId& machine)
{
  api.call({{"type", "STOP_MAINTENANCE"}, {"stop_maintenance", {{"machines", json::array({machine.json()})}}}});
}

void
drain_agent(MesosApi& api, const std::string& agent_id, std::int64_t max_grace_ns)
{
  api.call(
    {{"type", "DRAIN_AGENT"},
     {"drain_agent",
      {{"agent_id", {{"value", agent_id}}}, {"max_grace_period", duration_json(max_grace_ns)}, {"mark_gone", false}}}});
}

void
reactivate_agent(MesosApi& api, const std::string& agent_id)
{
  api.call({{"type", "REACTIVATE_AGENT"}, {"reactivate_agent", {{"agent_id", {{"value", agent_id}}}}}});
}

void
mark_agent_gone(MesosApi& api, const std::string& agent_id)
{
  api.call({{"type", "MARK_AGENT_GONE"}, {"mark_agent_gone", {{"agent_id", {{"value", agent_id}}}}}});
}

} // namespace kiln::fleet
