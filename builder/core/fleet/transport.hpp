// How kiln-fleet runs a command on a node: the cluster file's transport template (default
// `ssh -o BatchMode=yes root@{address}`: the operator's own OpenSSH, keys and
// known_hosts), split into words at spaces, {host} and {address} expanded, and the remote
// command appended as ONE argument (ssh hands it to the node's shell). The seam has the
// real transport and a fake in the unit tests.
#pragma once

#include "core/fleet/cluster.hpp"
#include "core/util/process.hpp"

#include <string>
#include <vector>

namespace kiln::fleet {

class Transport {
public:
  virtual ~Transport() = default;
  // Runs `command` (shell text) on `node`, at most `timeout`; the exit status and output
  // are returned (255 is ssh's own failure). Throws Error on a timeout or interruption.
  virtual util::RunResult run(const Node& node, const std::string& command, Millis timeout) = 0;
};

// The argv the template gives for `node` and `command`.
std::vector<std::string> transport_argv(const std::string& pattern, const Node& node, const std::string& command);

// What is kept of a node command's stdout and of its stderr (kiln-node's --json answers
// are a few KiB): a node that writes without end cannot fill the controller's memory.
inline constexpr std::size_t k_max_node_output = 4 << 20;

class CommandTransport : public Transport {
public:
  explicit CommandTransport(std::string pattern) : m_pattern(std::move(pattern)) {}
  util::RunResult run(const Node& node, const std::string& command, Millis timeout) override;

private:
  std::string m_pattern;
};

// `words` as one line of shell text, each quoted as needed.
std::string shell_command(const std::vector<std::string>& words);

} // namespace kiln::fleet
