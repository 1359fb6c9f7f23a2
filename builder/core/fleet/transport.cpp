#include "core/fleet/transport.hpp"

#include "core/util/quote.hpp"

#include <sstream>

namespace kiln::fleet {

std::vector<std::string>
transport_argv(const std::string& pattern, const Node& node, const std::string& command)
{
  std::vector<std::string> argv;
  std::istringstream words(pattern);
  for (std::string w; words >> w;) {
    argv.push_back(expand(w, node));
  }
  argv.push_back(command);
  return argv;
}

util::RunResult
CommandTransport::run(const Node& node, const std::string& command, Millis timeout)
{
  util::RunOptions o;
  o.timeout = std::chrono::duration_cast<std::chrono::seconds>(timeout + std::chrono::milliseconds(999));
  o.stdin_data = "";
  o.max_output = k_max_node_output;
  return util::run(transport_argv(m_pattern, node, command), o);
}

std::string
shell_command(const std::vector<std::string>& words)
{
  std::string out;
  for (const auto& w : words) {
    out += (out.empty() ? "" : " ") + util::shell_quote(w);
  }
  return out;
}

} // namespace kiln::fleet
