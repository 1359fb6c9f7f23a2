#include "core/fleet/state.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <nlohmann/json.hpp>

namespace kiln::fleet {

namespace {

constexpr std::uint64_t k_state_limit = 1u << 20;
constexpr int k_version = 1;

} // namespace

std::optional<RunState>
load_state(const std::filesystem::path& path)
{
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return std::nullopt;
  }
  auto text = util::read_file_within(path, k_state_limit);
  const std::string subject = path.string();
  if (!text) {
    throw Error(subject, "larger than " + std::to_string(k_state_limit) + " bytes: not a kiln-fleet state file");
  }
  try {
    auto j = nlohmann::json::parse(*text);
    if (j.at("version").get<int>() != k_version) {
      throw Error(subject, "state file version " + j.at("version").dump() + ", this kiln-fleet reads " +
                             std::to_string(k_version));
    }
    RunState s;
    s.action = j.at("action").get<std::string>();
    for (const auto& [host, n] : j.at("nodes").items()) {
      NodeState ns;
      auto phase = parse_phase(n.at("phase").get<std::string>());
      if (!phase) {
        throw Error(subject, "node " + host + ": unknown phase " + n.at("phase").dump());
      }
      ns.phase = *phase;
      ns.agent_id = n.value("agent_id", "");
      ns.new_agent_id = n.value("new_agent_id", "");
      ns.booted_before = n.value("booted_before", "");
      ns.boot_id = n.value("boot_id", "");
      ns.error = n.value("error", "");
      s.nodes[host] = ns;
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(subject, std::string("not a kiln-fleet state file: ") + e.what());
  }
}

void
save_state(const std::filesystem::path& path, const RunState& state)
{
  nlohmann::json nodes = nlohmann::json::object();
  for (const auto& [host, n] : state.nodes) {
    nlohmann::json j = {{"phase", to_string(n.phase)}};
    for (auto [key, value] : {std::pair{"agent_id", &n.agent_id}, std::pair{"new_agent_id", &n.new_agent_id},
                              std::pair{"booted_before", &n.booted_before}, std::pair{"boot_id", &n.boot_id},
                              std::pair{"error", &n.error}}) {
      if (!value->empty()) {
        j[key] = *value;
      }
    }
    nodes[host] = j;
  }
  nlohmann::json j = {{"version", k_version}, {"action", state.action}, {"nodes", nodes}};
  util::write_file_atomic(path, j.dump(2) + "\n");
}

RunState
start_state(const Cluster& cluster, std::optional<RunState> found)
{
  const std::string action = cluster.action.str();
  if (!found) {
    RunState s;
    s.action = action;
    for (const auto& n : cluster.nodes) {
      s.nodes[n.host] = NodeState{};
    }
    return s;
  }
  const std::string subject = cluster.state_file.string();
  if (found->action != action) {
    throw Error(subject, "belongs to another run (" + found->action + ", not " + action +
                           "): finish that run, or remove the file to start anew");
  }
  for (const auto& n : cluster.nodes) {
    if (!found->nodes.contains(n.host)) {
      throw Error(subject, "belongs to another run: it has no node " + n.host + "; remove the file to start anew");
    }
  }
  if (found->nodes.size() != cluster.nodes.size()) {
    throw Error(subject, "belongs to another run: it has nodes the cluster file does not list");
  }
  return std::move(*found);
}

} // namespace kiln::fleet
