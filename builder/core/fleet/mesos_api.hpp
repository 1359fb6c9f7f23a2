// The Mesos master's operator API v1 as kiln-fleet uses it: one seam (MesosApi::call, a
// request's JSON in, the response's JSON out) with the real client over HTTP
// (mesos_http.hpp) and a fake in the unit tests, and typed calls on top whose JSON is
// shaped as Mesos's protobufs (mesos/v1/master/master.proto, maintenance.proto) define it.
#pragma once

#include "core/util/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::fleet {

class MesosApi {
public:
  virtual ~MesosApi() = default;
  // POSTs `request` ({"type": "...", ...}); returns the response body's JSON (null for an
  // empty 200/202 body). Throws Error("Mesos TYPE", reason) for anything else.
  virtual nlohmann::json call(const nlohmann::json& request) = 0;
};

// The master did not answer (no connection, a timeout) or answered HTTP 5xx: a failover may
// be under way, so a wait takes it as "not yet" until its deadline.
class MasterUnavailable : public Error {
public:
  using Error::Error;
};

struct MachineId {
  std::string hostname;
  std::string ip;
  nlohmann::json json() const { return {{"hostname", hostname}, {"ip", ip}}; }
};

struct Agent {
  std::string id;
  std::string hostname;
  bool active = false;
  bool deactivated = false;
  std::string drain_state; // "" (not draining), "DRAINING", "DRAINED"
};

// GET_AGENTS: the registered agents (recovered agents, not yet re-registered after a
// master failover, are not among them).
std::vector<Agent> get_agents(MesosApi& api);

// GET_MAINTENANCE_SCHEDULE's schedule ({"windows": [...]}, windows may be absent).
nlohmann::json get_schedule(MesosApi& api);
// UPDATE_MAINTENANCE_SCHEDULE with the whole schedule.
void update_schedule(MesosApi& api, const nlohmann::json& schedule);
// Whether a window of `schedule` names `machine`.
bool scheduled(const nlohmann::json& schedule, const MachineId& machine);
// `schedule` with a window for `machine` from `start_ns` for `duration_ns` added.
nlohmann::json with_window(nlohmann::json schedule, const MachineId& machine, std::int64_t start_ns,
                           std::int64_t duration_ns);
// `schedule` without `machine` (and without windows left empty).
nlohmann::json without_machine(nlohmann::json schedule, const MachineId& machine);

// GET_MAINTENANCE_STATUS: whether `machine` is DOWN.
bool machine_down(MesosApi& api, const MachineId& machine);
void start_maintenance(MesosApi& api, const MachineId& machine);
void stop_maintenance(MesosApi& api, const MachineId& machine);

void drain_agent(MesosApi& api, const std::string& agent_id, std::int64_t max_grace_ns);
void reactivate_agent(MesosApi& api, const std::string& agent_id);
void mark_agent_gone(MesosApi& api, const std::string& agent_id);

} // namespace kiln::fleet
