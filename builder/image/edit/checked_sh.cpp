#include "image/edit/checked_sh.hpp"

#include "core/util/error.hpp"

#include <sstream>
#include <vector>

namespace kiln::edit {

CommandResult
checked_sh(Editor& g, const std::string& script, const std::string& what)
{
  CommandResult r = g.sh(script);
  if (r.exit_code == 0) {
    return r;
  }
  std::istringstream in(r.err.empty() ? r.out : r.err);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  std::string tail;
  for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) {
    tail += (tail.empty() ? "" : " | ") + lines[i];
  }
  throw Error(what, "exit status " + std::to_string(r.exit_code) + (tail.empty() ? "" : ": " + tail));
}

} // namespace kiln::edit
