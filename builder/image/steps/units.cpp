#include "image/steps/units.hpp"

#include "core/util/error.hpp"

#include <sstream>

namespace kiln::steps {

namespace {

const char* const k_unit_dirs[] = {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"};

// The unit file systemctl would use (a masked one is not), else "".
std::string
find_unit(edit::Editor& g, const std::string& unit)
{
  for (const char* dir : k_unit_dirs) {
    std::string path = std::string(dir) + "/" + unit;
    if (g.exists(path) && !(g.is_symlink(path) && g.readlink(path) == "/dev/null")) {
      return path;
    }
  }
  // Template instances (getty@tty1.service) are enabled from their template.
  auto at = unit.find('@');
  if (at != std::string::npos && unit[at + 1] != '.') {
    std::string templ = unit.substr(0, at + 1) + unit.substr(unit.rfind('.'));
    for (const char* dir : k_unit_dirs) {
      std::string path = std::string(dir) + "/" + templ;
      if (g.exists(path)) {
        return path;
      }
    }
  }
  return {};
}

} // namespace

std::map<std::string, std::vector<std::string>>
unit_install_section(const std::string& text)
{
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(text);
  bool install = false;
  for (std::string line; std::getline(in, line);) {
    auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#' || line[start] == ';') {
      continue;
    }
    line = line.substr(start);
    if (line[0] == '[') {
      install = line.rfind("[Install]", 0) == 0;
      continue;
    }
    auto eq = line.find('=');
    if (!install || eq == std::string::npos) {
      continue;
    }
    std::string key = line.substr(0, eq);
    key.erase(key.find_last_not_of(" \t") + 1);
    std::istringstream values(line.substr(eq + 1));
    for (std::string v; values >> v;) {
      out[key].push_back(v);
    }
  }
  return out;
}

void
enable_unit(edit::Editor& g, const std::string& unit)
{
  std::string path = find_unit(g, unit);
  if (path.empty()) {
    throw Error("enable " + unit, "no such unit in the image (looked in /etc/systemd/system, /usr/lib/systemd/system, "
                                  "/lib/systemd/system)");
  }
  auto install = unit_install_section(g.read_file(path));
  if (install.empty()) {
    throw Error("enable " + unit, "the unit has no [Install] section, so it cannot be enabled");
  }
  std::string target = unit;
  auto at = unit.find('@');
  if (at != std::string::npos && unit[at + 1] == '.') {
    // A template: DefaultInstance= names the instance to enable.
    auto def = install.find("DefaultInstance");
    if (def == install.end() || def->second.empty()) {
      throw Error("enable " + unit, "a template unit needs an instance name or DefaultInstance=");
    }
    target = unit.substr(0, at + 1) + def->second.front() + unit.substr(at + 1);
  }
  for (const char* key : {"WantedBy", "RequiredBy"}) {
    for (const auto& by : install[key]) {
      std::string dir =
        std::string("/etc/systemd/system/") + by + (std::string(key) == "WantedBy" ? ".wants" : ".requires");
      g.mkdir_p(dir);
      g.ln_sf(path, dir + "/" + target);
    }
  }
  for (const auto& alias : install["Alias"]) {
    g.ln_sf(path, "/etc/systemd/system/" + alias);
  }
  for (const auto& also : install["Also"]) {
    enable_unit(g, also);
  }
}

void
disable_unit(edit::Editor& g, const std::string& unit)
{
  for (const char* kind : {"wants", "requires"}) {
    for (const auto& link : g.glob("/etc/systemd/system/*." + std::string(kind) + "/" + unit)) {
      g.rm_f(link);
    }
  }
  std::string path = find_unit(g, unit);
  if (!path.empty() && !g.is_symlink(path)) {
    auto install = unit_install_section(g.read_file(path)); // keep the map alive for the loop
    for (const auto& alias : install["Alias"]) {
      std::string link = "/etc/systemd/system/" + alias;
      if (g.is_symlink(link)) {
        g.rm_f(link);
      }
    }
  }
}

void
mask_unit(edit::Editor& g, const std::string& unit)
{
  // Masking needs no unit file: a mask also guards against a unit a later package brings.
  disable_unit(g, unit);
  std::string link = "/etc/systemd/system/" + unit;
  g.mkdir_p("/etc/systemd/system");
  if (g.exists(link) || g.is_symlink(link)) {
    g.rm_rf(link);
  }
  g.ln_sf("/dev/null", link);
}

} // namespace kiln::steps
