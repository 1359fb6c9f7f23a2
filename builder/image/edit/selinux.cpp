#include "image/edit/selinux.hpp"

#include "core/util/quote.hpp"

#include <sstream>

namespace kiln::edit {

std::string
SelinuxConfig::file_contexts() const
{
  return "/etc/selinux/" + type + "/contexts/files/file_contexts";
}

SelinuxConfig
parse_selinux_config(const std::string& text)
{
  SelinuxConfig config;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("SELINUX=", 0) == 0) {
      config.mode = line.substr(8);
    } else if (line.rfind("SELINUXTYPE=", 0) == 0) {
      config.type = line.substr(12);
    }
  }
  return config;
}

std::optional<SelinuxConfig>
read_selinux_config(Editor& g)
{
  if (!g.exists("/etc/selinux/config")) {
    return std::nullopt;
  }
  return parse_selinux_config(g.read_file("/etc/selinux/config"));
}

bool
label_paths(Editor& g, const std::string& specfile, const std::vector<std::string>& paths,
            const std::function<void(const std::string&)>& log)
{
  if (g.is_file("/usr/sbin/setfiles") || g.is_file("/sbin/setfiles")) {
    std::string script = "setfiles -F -m -e /proc -e /sys -e /dev -e /run " + util::shell_quote(specfile);
    for (const auto& p : paths) {
      script += " " + util::shell_quote(p);
    }
    CommandResult r = g.sh(script);
    if (r.exit_code == 0) {
      return true;
    }
    if (log) {
      log("selinux: the image's setfiles failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
    }
  }
  for (const auto& p : paths) {
    if (!g.selinux_relabel(specfile, p)) {
      return false;
    }
  }
  return true;
}

} // namespace kiln::edit
