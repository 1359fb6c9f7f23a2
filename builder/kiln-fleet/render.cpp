#include "kiln-fleet/render.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <iomanip>

namespace kiln::fleet::cli {

namespace {

std::string
clock_time()
{
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &tm);
  return buffer;
}

} // namespace

void
LineEvents::emit(const Event& e)
{
  std::lock_guard<std::mutex> hold(m_lock);
  if (m_json) {
    nlohmann::json j = {{"event", to_string(e.kind)}, {"message", e.message}};
    if (!e.host.empty()) {
      j["host"] = e.host;
    }
    if (!e.phase.empty()) {
      j["phase"] = e.phase;
    }
    m_out << j.dump() << std::endl;
    return;
  }
  m_out << clock_time() << " ";
  switch (e.kind) {
    case Event::Kind::phase:
      m_out << e.host << ": " << e.phase << ": " << e.message;
      break;
    case Event::Kind::failed:
      m_out << e.host << ": FAILED at " << e.phase << ": " << e.message;
      break;
    default:
      m_out << e.message;
  }
  m_out << std::endl;
}

void
render_status(std::ostream& out, const Cluster& cluster, const RunState& state, bool json)
{
  if (json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : cluster.nodes) {
      const NodeState& s = state.nodes.at(n.host);
      nlohmann::json j = {{"host", n.host}, {"role", to_string(n.role)}, {"phase", to_string(s.phase)}};
      if (!s.agent_id.empty()) {
        j["agent_id"] = s.agent_id;
      }
      if (!s.new_agent_id.empty()) {
        j["new_agent_id"] = s.new_agent_id;
      }
      if (!s.error.empty()) {
        j["error"] = s.error;
      }
      nodes.push_back(j);
    }
    out << nlohmann::json({{"action", state.action}, {"nodes", nodes}}).dump(2) << "\n";
    return;
  }
  out << state.action << "\n";
  for (const auto& n : cluster.nodes) {
    const NodeState& s = state.nodes.at(n.host);
    out << std::left << std::setw(24) << n.host << " " << std::setw(12) << to_string(n.role) << " " << std::setw(10)
        << to_string(s.phase);
    if (!s.new_agent_id.empty() && s.new_agent_id != s.agent_id) {
      out << " agent " << s.agent_id << " -> " << s.new_agent_id;
    }
    if (!s.error.empty()) {
      out << " FAILED: " << s.error;
    }
    out << "\n";
  }
}

} // namespace kiln::fleet::cli
