#include "image/steps/guest_ids.hpp"

#include "core/util/error.hpp"

#include <regex>
#include <sstream>

namespace kiln::steps {

namespace {

std::uint32_t
lookup_id(edit::Editor& g, const std::string& name, const std::string& file, const std::string& what)
{
  static const std::regex digits("[0-9]+");
  if (std::regex_match(name, digits)) {
    return static_cast<std::uint32_t>(std::stoul(name));
  }
  std::string text = g.exists(file) ? g.read_file(file) : "";
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto first = line.find(':');
    if (line.substr(0, first) != name) {
      continue;
    }
    auto second = line.find(':', first + 1);
    auto third = line.find(':', second + 1);
    if (second != std::string::npos && third != std::string::npos) {
      return static_cast<std::uint32_t>(std::stoul(line.substr(second + 1, third - second - 1)));
    }
  }
  throw Error(what + " " + name, "not found in the image's " + file);
}

} // namespace

std::uint32_t
guest_uid(edit::Editor& g, const std::string& user)
{
  return lookup_id(g, user, "/etc/passwd", "user");
}

std::uint32_t
guest_gid(edit::Editor& g, const std::string& group)
{
  return lookup_id(g, group, "/etc/group", "group");
}

} // namespace kiln::steps
