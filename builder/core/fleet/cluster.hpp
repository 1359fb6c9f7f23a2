// The cluster file kiln-fleet reads (YAML, checked as strictly as a recipe: every problem
// at once, as FILE:LINE:COL lines): where the Mesos master's operator API is and how to
// authenticate to it, the nodes, how to reach them, what to do to them, and the limits.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::fleet {

using Millis = std::chrono::milliseconds;

enum class Role { master, agent, agent_public };
// "master", "agent", "agent_public"
std::string to_string(Role role);

struct Node {
  std::string host; // the agent's hostname as Mesos knows it (and the maintenance machine id's)
  std::string address; // the IP address: the machine id's ip, and {address} in the transport
  Role role = Role::agent;
  bool is_master() const { return role == Role::master; }
};

struct Action {
  enum class Kind { reimage, wipe };
  Kind kind = Kind::reimage;
  std::string bundle_url; // reimage only
  // "reimage URL" or "wipe"
  std::string str() const;
};

struct Deadlines {
  Millis drain{std::chrono::minutes(30)}; // DRAIN_AGENT until DRAINED
  Millis command{std::chrono::minutes(30)}; // kiln-node reimage / wipe over the transport
  Millis boot{std::chrono::minutes(15)}; // reboot until the expected slot is booted and good
  Millis rejoin{std::chrono::minutes(10)}; // machine up until the agent is active again
  Millis master{std::chrono::minutes(10)}; // a master healthy again (and the others, before one goes)
};

struct Limits {
  unsigned agents_at_once = 1;
  Millis drain_grace{std::chrono::minutes(5)}; // DRAIN_AGENT's max_grace_period
  Millis poll{std::chrono::seconds(5)}; // between two asks while waiting
  Deadlines deadlines;
};

struct Cluster {
  std::filesystem::path file;
  std::string name;
  // The operator API: https://MASTER/mesos/api/v1 (Admin Router) or http://MASTER:5050/api/v1.
  std::string api_url;
  std::filesystem::path token_file; // empty: no Authorization header
  std::filesystem::path ca_file; // empty: the system's trust store
  // Each master's own health, {address} and {host} expanded per master.
  std::string metrics_url = "http://{address}:5050/metrics/snapshot";
  std::string zookeeper = "{address}:2181";
  // When set, ZooKeeper's health is Exhibitor's cluster status instead of `ruok`: the
  // master's server (by address or host) listed as serving (code 3).
  std::string exhibitor_url;
  // The transport: a command line the remote command is appended to, as one argument.
  std::string transport = "ssh -o BatchMode=yes root@{address}";
  std::string node_command = "kiln-node"; // on the node
  std::string reboot_command = "systemctl reboot"; // on the node
  // On the node: one line that changes at every boot (the kernel's boot id).
  std::string boot_id_command = "cat /proc/sys/kernel/random/boot_id";
  Action action;
  Limits limits;
  std::filesystem::path state_file; // default: beside the cluster file, NAME.state.json
  std::vector<Node> nodes;

  const Node* find(const std::string& host) const;
};

// Loads and checks a cluster file. Throws recipe::RecipeError with every problem
// (FILE:LINE:COL: message, exit 2), or Error when the file cannot be read.
Cluster load_cluster(const std::filesystem::path& path);

// "30s", "5m", "2h", "500ms" as milliseconds; nullopt when malformed.
bool parse_duration(const std::string& text, Millis& out);

// `pattern` with {host} and {address} replaced by the node's.
std::string expand(const std::string& pattern, const Node& node);

} // namespace kiln::fleet
