#include "image/build/steps.hpp"

#include "core/archive/archive.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"
#include "core/util/fs.hpp"

#include <regex>
#include <set>
#include <sstream>
#include <tuple>

namespace kiln::build {

namespace {

const char* const k_unit_dirs[] = {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"};

std::string
shell_quote(const std::string& s)
{
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string
dirname_of(const std::string& path)
{
  auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::uint32_t
lookup_id(gfs::Handle& g, const std::string& name, const std::string& file, const std::string& what)
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

// Runs a shell script in the guest; throws with the command, status and stderr tail.
gfs::CommandResult
checked_sh(StepContext& ctx, const std::string& script, const std::string& what)
{
  gfs::CommandResult r = ctx.g.sh(script);
  if (r.exit_code != 0) {
    std::string tail;
    std::istringstream in(r.err.empty() ? r.out : r.err);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) {
        lines.push_back(line);
      }
    }
    for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) {
      tail += (tail.empty() ? "" : " | ") + lines[i];
    }
    throw Error(what, "exit status " + std::to_string(r.exit_code) + (tail.empty() ? "" : ": " + tail));
  }
  return r;
}

void
place_file(StepContext& ctx, const std::string& path, const std::optional<std::string>& content,
           const std::optional<std::string>& source, unsigned mode, const std::string& owner, const std::string& group)
{
  ctx.g.mkdir_p(dirname_of(path));
  if (ctx.g.is_symlink(path) || ctx.g.is_dir(path)) {
    ctx.g.rm_rf(path);
  }
  if (source) {
    ctx.g.upload(*source, path);
  } else {
    ctx.g.write(path, content.value_or(""));
  }
  ctx.g.chown(guest_uid(ctx.g, owner), guest_gid(ctx.g, group), path);
  ctx.g.chmod(mode, path);
}

std::string
find_unit(gfs::Handle& g, const std::string& unit)
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

void
write_repo(StepContext& ctx, const recipe::Repo& repo)
{
  if (ctx.guest.package_format == "rpm") {
    std::string text = "[" + repo.name + "]\nname=" + repo.name + "\nbaseurl=" + repo.baseurl +
                       "\nenabled=1\ngpgcheck=" + (repo.gpgcheck ? "1" : "0") + "\n";
    if (repo.gpgkey) {
      text += "gpgkey=" + *repo.gpgkey + "\n";
    }
    ctx.g.mkdir_p("/etc/yum.repos.d");
    ctx.g.write("/etc/yum.repos.d/" + repo.name + ".repo", text);
  } else {
    std::string options = repo.gpgcheck ? "" : "[trusted=yes] ";
    if (repo.gpgkey && repo.gpgcheck) {
      options = "[signed-by=" + *repo.gpgkey + "] ";
    }
    ctx.g.mkdir_p("/etc/apt/sources.list.d");
    // baseurl is "URL SUITE COMPONENTS..." for apt, as in a sources.list line.
    ctx.g.write("/etc/apt/sources.list.d/" + repo.name + ".list", "deb " + options + repo.baseurl + "\n");
  }
}

void
run_packages(StepContext& ctx, const recipe::PackagesStep& step, const std::string& what)
{
  for (const auto& repo : step.repos) {
    write_repo(ctx, repo);
  }
  std::string staged;
  if (!step.files.empty()) {
    ctx.g.mkdir_p("/var/tmp/kiln-packages");
    for (const auto& f : step.files) {
      std::string name = std::filesystem::path(f).filename().string();
      ctx.g.upload(f, "/var/tmp/kiln-packages/" + name);
      staged += " /var/tmp/kiln-packages/" + shell_quote(name);
    }
  }
  std::string install, remove;
  for (const auto& p : step.install) {
    install += " " + shell_quote(p);
  }
  for (const auto& p : step.remove) {
    remove += " " + shell_quote(p);
  }
  const std::string& pm = ctx.guest.package_manager;
  std::string script = "set -e\n";
  if (pm == "yum" || pm == "dnf") {
    // Without a network only the declared repositories that are local (file://) and the
    // staged files can be used; the guest's own remote repositories stay out of the way.
    std::string repos = ctx.network ? "" : " --disablerepo='*'";
    for (const auto& repo : step.repos) {
      if (!ctx.network && repo.baseurl.rfind("file://", 0) == 0) {
        repos += " --enablerepo=" + shell_quote(repo.name);
      }
    }
    if (!staged.empty() || !install.empty()) {
      script += pm + " -y" + repos + " install" + staged + install + "\n";
    }
    if (!remove.empty()) {
      script += pm + " -y" + repos + " remove" + remove + "\n";
    }
    script += pm + " clean all >/dev/null 2>&1 || true\n";
  } else if (pm == "apt") {
    script += "export DEBIAN_FRONTEND=noninteractive\n";
    std::string apt = "apt-get -y -o Dpkg::Options::=--force-confnew";
    if (ctx.network && (!step.repos.empty() || !install.empty())) {
      script += apt + " update\n";
    } else {
      // Offline, the image's own sources cannot be reached (apt-get update would fail on
      // them): read only the repositories this step declares.
      for (const auto& repo : step.repos) {
        script += apt + " -o Dir::Etc::sourcelist=sources.list.d/" + repo.name +
                  ".list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 update\n";
      }
    }
    if (!staged.empty() && install.empty()) {
      script += "dpkg -i" + staged + "\n";
    } else if (!staged.empty() || !install.empty()) {
      script += apt + " install" + staged + install + "\n";
    }
    if (!remove.empty()) {
      script += apt + " remove --purge" + remove + "\n";
    }
    script += "apt-get clean\n";
  } else {
    throw Error(what, "no supported package manager in the image (found '" + pm + "')");
  }
  if (!staged.empty()) {
    script += "rm -rf /var/tmp/kiln-packages\n";
  }
  checked_sh(ctx, script, what + ": " + pm + " failed" + (ctx.network ? "" : " (the appliance has no network)"));
}

// Labels every file with the guest's own policy: the guest's setfiles first (run in the
// appliance's chroot; the appliance kernel has SELinux off, so labels are plain xattrs),
// then the appliance's. False when neither can, so the caller leaves /.autorelabel.
bool
relabel_in_guest(StepContext& ctx, const std::string& spec)
{
  if (ctx.g.is_file("/usr/sbin/setfiles") || ctx.g.is_file("/sbin/setfiles")) {
    gfs::CommandResult r = ctx.g.sh("setfiles -F -m -e /proc -e /sys -e /dev -e /run " + shell_quote(spec) + " /");
    if (r.exit_code == 0) {
      return true;
    }
    if (ctx.log) {
      ctx.log("selinux: the image's setfiles failed (exit " + std::to_string(r.exit_code) + "): " + r.err);
    }
  }
  return ctx.g.selinux_relabel(spec, "/");
}

const std::string k_firstboot_dir = "/usr/libexec/kiln/firstboot";

void
run_firstboot(StepContext& ctx, const recipe::FirstbootStep& step)
{
  std::string script_path = k_firstboot_dir + "/" + step.name;
  place_file(ctx, script_path, step.script ? std::optional<std::string>("#!/bin/sh\n" + *step.script + "\n") : std::nullopt,
             step.source, 0755, "root", "root");
  std::string after = "network-online.target time-sync.target";
  for (const auto& a : step.after) {
    after += " " + a;
  }
  std::string unit = "kiln-firstboot-" + step.name + ".service";
  // Runs once: the stamp under /var/lib/kiln makes later boots skip it; a failure leaves
  // a visible marker and the unit failed, and the next boot tries again.
  std::string text = "[Unit]\n"
                     "Description=kiln first-boot task " + step.name + "\n"
                     "Wants=network-online.target time-sync.target\n"
                     "After=" + after + "\n"
                     "ConditionPathExists=!/var/lib/kiln/firstboot/" + step.name + ".done\n"
                     "\n[Service]\n"
                     "Type=oneshot\n"
                     "RemainAfterExit=yes\n"
                     "TimeoutStartSec=0\n"
                     "ExecStart=/bin/sh -c 'mkdir -p /var/log/kiln /var/lib/kiln/firstboot; rm -f /var/lib/kiln/firstboot/" +
                     step.name + ".failed; if " + script_path + " >>/var/log/kiln/" + step.name +
                     ".log 2>&1; then touch /var/lib/kiln/firstboot/" + step.name +
                     ".done; else rc=$?; echo $rc >/var/lib/kiln/firstboot/" + step.name +
                     ".failed; exit $rc; fi'\n"
                     "StandardOutput=journal+console\n"
                     "\n[Install]\n"
                     "WantedBy=multi-user.target\n";
  ctx.g.mkdir_p("/etc/systemd/system");
  ctx.g.write("/etc/systemd/system/" + unit, text);
  ctx.g.chmod(0644, "/etc/systemd/system/" + unit);
  enable_unit(ctx.g, unit);
}

} // namespace

void
selinux_relabel(StepContext& ctx)
{
  gfs::Handle& g = ctx.g;
  if (!g.exists("/etc/selinux/config") || !g.exists("/usr/sbin/load_policy")) {
    return; // not an SELinux guest
  }
  std::string mode = "enforcing", type = "targeted";
  std::istringstream in(g.read_file("/etc/selinux/config"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("SELINUX=", 0) == 0) {
      mode = line.substr(8);
    } else if (line.rfind("SELINUXTYPE=", 0) == 0) {
      type = line.substr(12);
    }
  }
  if (mode == "disabled") {
    return;
  }
  std::string spec = "/etc/selinux/" + type + "/contexts/files/file_contexts";
  if (g.exists(spec) && relabel_in_guest(ctx, spec)) {
    g.rm_f("/.autorelabel");
    return;
  }
  // The guest relabels itself at first boot instead.
  g.write("/.autorelabel", "");
  if (ctx.log) {
    ctx.log("selinux: cannot relabel offline; the image will relabel at first boot (/.autorelabel)");
  }
}

std::uint32_t
guest_uid(gfs::Handle& g, const std::string& user)
{
  return lookup_id(g, user, "/etc/passwd", "user");
}

std::uint32_t
guest_gid(gfs::Handle& g, const std::string& group)
{
  return lookup_id(g, group, "/etc/group", "group");
}

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
enable_unit(gfs::Handle& g, const std::string& unit)
{
  std::string path = find_unit(g, unit);
  if (path.empty()) {
    throw Error("enable " + unit, "no such unit in the image (looked in /etc/systemd/system, /usr/lib/systemd/system, "
                                  "/lib/systemd/system)");
  }
  auto install = unit_install_section(g.read_file(g.is_symlink(path) ? path : path));
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
      std::string dir = std::string("/etc/systemd/system/") + by + (std::string(key) == "WantedBy" ? ".wants" : ".requires");
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
disable_unit(gfs::Handle& g, const std::string& unit)
{
  for (const auto& link : g.glob("/etc/systemd/system/*.wants/" + unit)) {
    g.rm_f(link);
  }
  for (const auto& link : g.glob("/etc/systemd/system/*.requires/" + unit)) {
    g.rm_f(link);
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
mask_unit(gfs::Handle& g, const std::string& unit)
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

std::string
set_key_value(const std::string& text, const std::string& key, const std::string& value, const std::string& separator)
{
  std::istringstream in(text);
  std::string out;
  bool done = false;
  const std::string assignment = key + separator;
  for (std::string line; std::getline(in, line);) {
    std::string trimmed = line.substr(std::min(line.size(), line.find_first_not_of(" \t")));
    std::string uncommented = trimmed;
    if (!uncommented.empty() && uncommented[0] == '#') {
      uncommented = uncommented.substr(std::min(uncommented.size(), uncommented.find_first_not_of("# \t")));
    }
    if (!done && (trimmed.rfind(assignment, 0) == 0 || uncommented.rfind(assignment, 0) == 0)) {
      out += assignment + value + "\n";
      done = true;
      continue;
    }
    out += line + "\n";
  }
  if (!done) {
    out += assignment + value + "\n";
  }
  return out;
}

std::string
replace_lines(const std::string& text, const std::string& regex, const std::string& line_text)
{
  std::regex re(regex, std::regex::extended);
  std::istringstream in(text);
  std::string out;
  bool matched = false;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, re)) {
      out += line_text + "\n";
      matched = true;
    } else {
      out += line + "\n";
    }
  }
  if (!matched) {
    out += line_text + "\n";
  }
  return out;
}

std::string
replace_block(const std::string& text, const std::string& regex, const std::vector<std::string>& lines)
{
  std::regex re(regex, std::regex::extended);
  std::string block;
  for (const auto& l : lines) {
    block += l + "\n";
  }
  std::istringstream in(text);
  std::string out;
  bool matched = false;
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_search(line, re)) {
      out += line + "\n";
    } else if (!matched) {
      out += block;
      matched = true;
    }
  }
  return matched ? out : out + block;
}

std::string
append_missing(const std::string& text, const std::vector<std::string>& lines)
{
  std::string out = text;
  if (!out.empty() && out.back() != '\n') {
    out += '\n';
  }
  std::istringstream in(text);
  std::set<std::string> present;
  for (std::string line; std::getline(in, line);) {
    present.insert(line);
  }
  for (const auto& l : lines) {
    if (present.insert(l).second) {
      out += l + "\n";
    }
  }
  return out;
}

void
run_step(StepContext& ctx, const recipe::Step& step)
{
  const std::string what = step.kind + " step at " + step.location.str();
  try {
    std::visit(
      [&](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, recipe::FileStep>) {
          place_file(ctx, s.path, s.content, s.source, s.mode, s.owner, s.group);
        } else if constexpr (std::is_same_v<T, recipe::OverlayStep>) {
          util::TempDir tmp;
          std::filesystem::path tar = tmp.path() / "overlay.tar";
          archive::TarOptions options;
          options.uid = guest_uid(ctx.g, s.owner);
          options.gid = guest_gid(ctx.g, s.group);
          archive::tar_directory(s.source, tar, options);
          ctx.g.mkdir_p(s.dest);
          ctx.g.tar_in(tar.string(), s.dest);
        } else if constexpr (std::is_same_v<T, recipe::EditStep>) {
          std::string text = ctx.g.exists(s.path) ? ctx.g.read_file(s.path) : "";
          for (const auto& [key, value] : s.set) {
            text = set_key_value(text, key, value, s.separator);
          }
          if (!s.lines.empty()) {
            text = s.match ? replace_block(text, *s.match, s.lines) : append_missing(text, s.lines);
          } else if (s.line) {
            text = s.match ? replace_lines(text, *s.match, *s.line) : replace_lines(text, "^" + std::regex_replace(*s.line, std::regex(R"([.^$|()\[\]{}*+?\\])"), "\\$&") + "$", *s.line);
          }
          ctx.g.mkdir_p(dirname_of(s.path));
          ctx.g.write(s.path, text);
        } else if constexpr (std::is_same_v<T, recipe::DeleteStep>) {
          for (const auto& pattern : s.paths) {
            for (const auto& path : ctx.g.glob(pattern)) {
              ctx.g.rm_rf(path);
            }
          }
        } else if constexpr (std::is_same_v<T, recipe::UnitStep>) {
          place_file(ctx, "/etc/systemd/system/" + s.name, s.content, s.source, 0644, "root", "root");
        } else if constexpr (std::is_same_v<T, recipe::SystemdStep>) {
          for (const auto& u : s.disable) {
            disable_unit(ctx.g, u);
          }
          for (const auto& u : s.mask) {
            mask_unit(ctx.g, u);
          }
          for (const auto& u : s.enable) {
            enable_unit(ctx.g, u);
          }
        } else if constexpr (std::is_same_v<T, recipe::GroupStep>) {
          std::string cmd = "getent group " + shell_quote(s.name) + " >/dev/null || groupadd";
          if (s.gid) {
            cmd += " -g " + std::to_string(*s.gid);
          }
          if (s.system) {
            cmd += " -r";
          }
          checked_sh(ctx, cmd + " " + shell_quote(s.name), "groupadd " + s.name);
          if (s.gid && guest_gid(ctx.g, s.name) != *s.gid) {
            throw Error("group " + s.name, "already exists in the image with gid " +
                                               std::to_string(guest_gid(ctx.g, s.name)) + ", not " + std::to_string(*s.gid));
          }
        } else if constexpr (std::is_same_v<T, recipe::UserStep>) {
          std::string cmd = "getent passwd " + shell_quote(s.name) + " >/dev/null || useradd -m -s " + shell_quote(s.shell);
          if (s.uid) {
            cmd += " -u " + std::to_string(*s.uid);
          }
          if (s.group) {
            cmd += " -g " + shell_quote(*s.group);
          }
          if (!s.groups.empty()) {
            std::string groups;
            for (const auto& gname : s.groups) {
              groups += (groups.empty() ? "" : ",") + gname;
            }
            cmd += " -G " + shell_quote(groups);
          }
          if (s.home) {
            cmd += " -d " + shell_quote(*s.home);
          }
          if (s.system) {
            cmd += " -r";
          }
          checked_sh(ctx, cmd + " " + shell_quote(s.name), "useradd " + s.name);
        } else if constexpr (std::is_same_v<T, recipe::SelinuxStep>) {
          // The mode now; the relabel at the end of the build (finalize), so that files
          // written by later steps are labelled too.
          std::string config = ctx.g.exists("/etc/selinux/config") ? ctx.g.read_file("/etc/selinux/config")
                                                                   : "SELINUXTYPE=targeted\n";
          ctx.g.mkdir_p("/etc/selinux");
          ctx.g.write("/etc/selinux/config", set_key_value(config, "SELINUX", s.mode, "="));
        } else if constexpr (std::is_same_v<T, recipe::PackagesStep>) {
          run_packages(ctx, s, what);
        } else if constexpr (std::is_same_v<T, recipe::RunStep>) {
          checked_sh(ctx, s.command, "command '" + s.command + "'");
        } else if constexpr (std::is_same_v<T, recipe::FirstbootStep>) {
          run_firstboot(ctx, s);
        }
      },
      step.spec);
  } catch (const Error& e) {
    if (util::interrupted()) {
      throw; // the interruption is the story, not the step it cut short
    }
    throw Error(what, e.what(), e.exit_code());
  }
}

void
sysprep(StepContext& ctx)
{
  gfs::Handle& g = ctx.g;
  for (const char* id : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    if (g.is_file(id) && !g.is_symlink(id)) {
      g.truncate(id);
    }
  }
  std::vector<std::string> patterns = {
    "/etc/ssh/ssh_host_*",
    "/var/lib/systemd/random-seed", "/var/lib/random-seed", "/var/lib/urandom/random-seed",
    "/tmp/*", "/tmp/.[!.]*", "/var/tmp/*",
    "/root/.bash_history", "/home/*/.bash_history", "/root/.lesshst", "/root/.viminfo",
    "/var/cache/yum/*", "/var/cache/dnf/*", "/var/cache/apt/archives/*.deb", "/var/cache/apt/*.bin",
    "/var/lib/yum/history/*", "/var/lib/rpm/__db.*", "/var/lib/dhclient/*", "/var/lib/dhcp/*.leases",
    "/etc/udev/rules.d/70-persistent-net.rules",
  };
  for (const auto& pattern : patterns) {
    for (const auto& path : g.glob(pattern)) {
      g.rm_rf(path);
    }
  }
  // Log files go, the directories services expect stay.
  // Best effort: the script cannot fail (it ends in `true`), so its result says nothing.
  std::ignore = g.sh("find /var/log -type f -delete 2>/dev/null; true");
  std::string hostname = ctx.guest.package_format == "rpm" ? "localhost.localdomain" : "localhost";
  g.write("/etc/hostname", hostname + "\n");
}

} // namespace kiln::build
