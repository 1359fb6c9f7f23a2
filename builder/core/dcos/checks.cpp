#include "core/dcos/checks.hpp"

#include "core/dcos/bundle.hpp"
#include "core/dcos/caching_view.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

namespace kiln::dcos {

using nlohmann::json;

namespace {

// A DC/OS version as far as it is known: "2.2.1", "2.2.x", "2.2".
struct Version {
  int major = 0;
  int minor = 0;
  std::optional<int> patch;
};

std::optional<Version>
parse_version(const std::optional<std::string>& text)
{
  if (!text) {
    return std::nullopt;
  }
  static const std::regex re(R"(([0-9]+)\.([0-9]+)(?:\.([0-9]+|x))?)");
  std::smatch m;
  if (!std::regex_match(*text, m, re)) {
    throw UsageError("--dcos-version " + *text, "expected a DC/OS version such as 2.2.1, 2.2.x or 1.12");
  }
  Version v{std::stoi(m[1].str()), std::stoi(m[2].str()), std::nullopt};
  if (m[3].matched && m[3].str() != "x") {
    v.patch = std::stoi(m[3].str());
  }
  return v;
}

// True when the version is known to be at least major.minor; unknown counts as newest.
bool
since(const std::optional<Version>& v, int major, int minor)
{
  return !v || v->major > major || (v->major == major && v->minor >= minor);
}

// True when the version may be in major.minor.0 .. major.minor.last (unknown: yes).
bool
in_series(const std::optional<Version>& v, int major, int minor, int last)
{
  return !v || (v->major == major && v->minor == minor && (!v->patch || *v->patch <= last));
}

CheckResult
pass(std::string name, std::string detail)
{
  return {std::move(name), true, std::move(detail)};
}

CheckResult
fail(std::string name, std::string detail)
{
  return {std::move(name), false, std::move(detail)};
}

const char* const k_unit_dir = "/etc/systemd/system";

// KEY=VALUE of a shell-style config file (last assignment wins, quotes dropped).
std::map<std::string, std::string>
key_values(const std::string& text)
{
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') {
      continue;
    }
    auto eq = line.find('=', b);
    if (eq == std::string::npos) {
      continue;
    }
    std::string k = line.substr(b, eq - b), v = line.substr(eq + 1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) {
      v.pop_back();
    }
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    out[k] = v;
  }
  return out;
}

std::optional<std::string>
find_command(FsView& view, const std::string& name)
{
  for (const char* dir : {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/", "/usr/local/bin/"}) {
    std::string p = dir + name;
    if (view.is_file(p)) {
      return p;
    }
  }
  return std::nullopt;
}

std::string
strip_release(const std::string& version)
{
  return version.substr(0, version.find_first_of("-~"));
}

// ---- the checks ----

CheckResult
check_preexisting(FsView& view)
{
  const std::string name = "if DC/OS is already installed";
  std::vector<std::string> found;
  if (view.is_dir("/opt/mesosphere") && !view.list("/opt/mesosphere").empty()) {
    found.push_back("/opt/mesosphere (not empty)");
  }
  for (const char* p : {"/etc/mesosphere", "/etc/systemd/system/dcos.target", "/etc/systemd/system/dcos.target.wants",
                        "/etc/profile.d/dcos.sh"}) {
    if (view.exists(p) || view.is_symlink(p)) {
      found.push_back(p);
    }
  }
  for (const auto& n : view.list(k_unit_dir)) {
    if (n.rfind("dcos-", 0) == 0 && n.ends_with(".service")) {
      found.push_back(std::string(k_unit_dir) + "/" + n);
    }
  }
  for (const char* p : {"/var/lib/dcos", "/var/lib/mesos/slave"}) {
    if (!view.is_dir(p)) {
      continue;
    }
    std::vector<std::string> entries = view.list(p);
    // What an operator writes before the install (DC/OS docs: agent attributes and
    // resources) is no installed DC/OS.
    std::erase_if(entries, [&](const std::string& n) {
      return std::string_view(p) == "/var/lib/dcos" && (n == "mesos-slave-common" || n == "mesos-resources");
    });
    if (!entries.empty()) {
      found.push_back(std::string(p) + " (not empty)");
    }
  }
  if (!found.empty()) {
    std::string what;
    for (const auto& f : found) {
      what += (what.empty() ? "" : ", ") + f;
    }
    return fail(name, "found " + what + "; the installer refuses to run on it");
  }
  return pass(name, "not installed");
}

CheckResult
check_selinux(FsView& view, const std::optional<Version>& version)
{
  const std::string name = "SELinux mode";
  if (!view.is_file("/etc/selinux/config")) {
    return pass(name, "no /etc/selinux/config: SELinux is not configured");
  }
  auto kv = key_values(view.read_file("/etc/selinux/config"));
  std::string mode = kv.count("SELINUX") ? kv["SELINUX"] : "";
  std::string type = kv.count("SELINUXTYPE") ? kv["SELINUXTYPE"] : "";
  std::transform(mode.begin(), mode.end(), mode.begin(), ::tolower);
  if (mode == "disabled" || mode == "permissive") {
    return pass(name, mode);
  }
  if (mode == "enforcing") {
    if (!since(version, 1, 12)) {
      return fail(name, "enforcing; DC/OS 1.11 refuses enforcing SELinux (use permissive)");
    }
    if (type != "targeted") {
      return fail(name, "enforcing with policy '" + type + "'; enforcing is supported only with the targeted policy");
    }
    return pass(name, "enforcing, targeted policy");
  }
  return fail(name, "/etc/selinux/config sets SELINUX='" + mode + "' (expected permissive, disabled or enforcing)");
}

CheckResult
check_sort(FsView& view)
{
  const std::string name = "sort -V";
  if (!find_command(view, "sort")) {
    return fail(name, "no sort in the image (coreutils)");
  }
  if (auto v = view.package_version("coreutils")) {
    if (compare_versions(strip_release(*v), "7.0") < 0) {
      return fail(name, "coreutils " + *v + " has no sort -V (needs 7.0 or later)");
    }
    return pass(name, "coreutils " + *v);
  }
  return pass(name, "sort present");
}

const std::vector<std::string> k_docker_packages{"docker-ce",     "docker-ee", "docker",
                                                 "docker-engine", "docker.io", "moby-engine"};

std::optional<std::pair<std::string, std::string>>
docker_package(FsView& view)
{
  for (const auto& p : k_docker_packages) {
    if (auto v = view.package_version(p)) {
      return std::pair{p, *v};
    }
  }
  return std::nullopt;
}

std::vector<CheckResult>
check_docker(FsView& view, const std::optional<Version>& version)
{
  std::vector<CheckResult> out;
  auto pkg = docker_package(view);
  auto binary = find_command(view, "docker");
  if (!pkg || !binary) {
    out.push_back(fail("docker is installed", !binary ? "no docker binary in the image"
                                                      : "docker binary present but no docker package in the " +
                                                          std::string("package database")));
  } else {
    out.push_back(pass("docker is installed", pkg->first + " " + pkg->second + ", " + *binary));
  }
  if (unit_masked(view, "docker.service")) {
    out.push_back(fail("docker is enabled", "docker.service is masked"));
  } else if (!unit_enabled(view, "docker.service")) {
    out.push_back(fail("docker is enabled", "docker.service is not enabled (no .wants link in /etc/systemd/system)"));
  } else {
    out.push_back(pass("docker is enabled", "docker.service"));
  }
  // The installer accepts Docker 1.6; DC/OS 1.13+ documents a kmem bug below 18.09.1
  // (the Red Hat 1.13.1 fork excepted).
  if (pkg) {
    std::string v = strip_release(pkg->second);
    bool rh_fork = pkg->first == "docker" && v.rfind("1.13.1", 0) == 0;
    std::string minimum = since(version, 1, 13) && !rh_fork ? "18.09.1" : "1.6";
    if (auto containerd = view.package_version("containerd.io"); containerd && *containerd == "1.2.10-3.2.el7") {
      out.push_back(fail("docker version", "containerd.io 1.2.10-3.2 is installed; DC/OS advises against it"));
    } else if (compare_versions(v, minimum) < 0) {
      out.push_back(fail("docker version", pkg->first + " " + v + " is older than the minimum " + minimum));
    } else {
      out.push_back(pass("docker version", v + " >= " + minimum));
    }
  } else {
    out.push_back(fail("docker version", "unknown: docker is not installed"));
  }
  // daemon.json: devicemapper on loop devices is refused by the installer; live-restore
  // must be off (docs).
  std::string driver = "overlay2 (default)";
  const std::string dj = "/etc/docker/daemon.json";
  if (view.is_file(dj)) {
    json d;
    try {
      d = json::parse(view.read_file(dj));
    } catch (const json::exception& e) {
      out.push_back(fail("docker storage driver", dj + " is not valid JSON: " + e.what()));
      return out;
    }
    if (d.contains("live-restore") && d["live-restore"] == true) {
      out.push_back(fail("docker storage driver", dj + " turns live-restore on; DC/OS needs it off"));
      return out;
    }
    if (d.contains("storage-driver") && d["storage-driver"].is_string()) {
      driver = d["storage-driver"].get<std::string>();
    }
    if (driver == "devicemapper") {
      bool direct = false;
      for (const auto& o : d.value("storage-opts", json::array())) {
        std::string s = o.is_string() ? o.get<std::string>() : "";
        direct = direct || s.rfind("dm.thinpooldev", 0) == 0 || s.rfind("dm.directlvm_device", 0) == 0;
      }
      if (!direct) {
        out.push_back(fail("docker storage driver", "devicemapper without a thin pool device uses loop devices"));
        return out;
      }
    }
  }
  out.push_back(pass("docker storage driver", driver));
  return out;
}

std::vector<CheckResult>
check_commands(FsView& view, const std::optional<Version>& version)
{
  std::vector<std::string> commands{"curl", "bash", "ping", "tar", "xz", "unzip", "ipset", "systemd-notify"};
  if (in_series(version, 1, 12, 5) && version) {
    commands.push_back("ifconfig");
  }
  std::vector<CheckResult> out;
  for (const auto& c : commands) {
    std::string name = c + " is installed";
    if (auto p = find_command(view, c)) {
      out.push_back(pass(name, *p));
    } else {
      out.push_back(fail(name, "not found in /usr/bin, /bin, /usr/sbin or /sbin"));
    }
  }
  return out;
}

CheckResult
check_systemd(FsView& view)
{
  const std::string name = "systemd version";
  auto v = view.package_version("systemd");
  if (!v) {
    return fail(name, "systemd is not installed (no package in the package database)");
  }
  std::string major = v->substr(0, v->find_first_not_of("0123456789"));
  if (major.empty() || std::stoi(major) < 200) {
    return fail(name, "systemd " + *v + " is older than 200");
  }
  return pass(name, major + " >= 200");
}

CheckResult
check_nogroup(FsView& view)
{
  const std::string name = "group nogroup";
  if (view.is_file("/etc/group")) {
    std::istringstream in(view.read_file("/etc/group"));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("nogroup:", 0) == 0) {
        return pass(name, line.substr(0, line.find(':', 8)));
      }
    }
  }
  return fail(name, "no group nogroup in /etc/group");
}

CheckResult
check_not_enabled(FsView& view, const std::string& what, const std::vector<std::string>& units)
{
  const std::string name = what + " is not enabled";
  for (const auto& u : units) {
    if (unit_enabled(view, u)) {
      return fail(name, u + " is enabled; disable and mask it");
    }
  }
  std::string detail;
  for (const auto& u : units) {
    if (unit_masked(view, u)) {
      detail += (detail.empty() ? "" : ", ") + u + " masked";
    }
  }
  return pass(name, detail.empty() ? "not enabled" : detail);
}

CheckResult
check_time_sync(FsView& view)
{
  const std::string name = "time synchronisation is enabled";
  for (const char* u : {"chronyd.service", "chrony.service", "ntpd.service", "ntp.service", "ntpsec.service",
                        "systemd-timesyncd.service", "openntpd.service"}) {
    if (unit_enabled(view, u)) {
      return pass(name, u);
    }
  }
  return fail(name, "no chronyd, ntpd or systemd-timesyncd unit is enabled; DC/OS services wait for a synced clock");
}

std::string
docker_root(FsView& view)
{
  if (view.is_file("/etc/docker/daemon.json")) {
    try {
      json d = json::parse(view.read_file("/etc/docker/daemon.json"));
      for (const char* k : {"data-root", "graph"}) {
        if (d.contains(k) && d[k].is_string()) {
          return d[k].get<std::string>();
        }
      }
    } catch (const json::exception&) {
    }
  }
  return "/var/lib/docker";
}

CheckResult
check_xfs(FsView& view, const std::string& what, const std::string& path)
{
  const std::string name = "XFS ftype for " + what + " " + path;
  auto f = view.filesystem_of(path);
  if (!f) {
    return pass(name, "file system unknown (not mounted in the image)");
  }
  if (f->type != "xfs") {
    return pass(name, f->type + " on " + f->mountpoint + " (not XFS)");
  }
  if (!f->ftype) {
    return fail(name, "XFS on " + f->mountpoint + " but its superblock cannot be read");
  }
  if (!*f->ftype) {
    return fail(name,
                "XFS on " + f->mountpoint + " (" + f->device + ") has ftype=0; overlay needs mkfs.xfs -n ftype=1");
  }
  return pass(name, "XFS ftype=1 on " + f->mountpoint);
}

CheckResult
check_ports(FsView& view, Role role, const std::optional<std::string>& version)
{
  const std::string name = "ports for " + std::string(role_name(role));
  std::vector<int> ports = role_ports(role, version);
  std::set<int> needed(ports.begin(), ports.end());
  std::vector<std::string> conflicts;
  for (const auto& [unit, listens] : listening_units()) {
    if (!unit_enabled(view, unit)) {
      continue;
    }
    for (int p : listens) {
      if (needed.count(p) != 0) {
        conflicts.push_back(unit + " (port " + std::to_string(p) + ")");
      }
    }
  }
  if (!conflicts.empty()) {
    std::string what;
    for (const auto& c : conflicts) {
      what += (what.empty() ? "" : ", ") + c;
    }
    return fail(name, "enabled units listen on ports DC/OS needs: " + what);
  }
  return pass(name, std::to_string(needed.size()) + " ports, no enabled unit known to use them");
}

CheckResult
check_bundle(FsView& view)
{
  const std::string name = "DC/OS bundle in " + std::string(slots::k_dcos_install_dir);
  const std::string dir = std::string(slots::k_dcos_install_dir);
  const std::string script_path = dir + "/dcos_install.sh";
  if (!view.is_file(script_path)) {
    return fail(name, script_path + " is missing");
  }
  InstallScript s = parse_install_script(view.read_file(script_path));
  if (s.bootstrap_url != k_offline_bootstrap_url) {
    return fail(name, "dcos_install.sh uses bootstrap_url '" + s.bootstrap_url + "', not " +
                        std::string(k_offline_bootstrap_url));
  }
  if (s.bootstrap_id.empty() || s.package_list_id.empty()) {
    return fail(name, "dcos_install.sh names no bootstrap id or no cluster package list id");
  }
  std::string boot = dir + "/" + bootstrap_path(s.bootstrap_id);
  if (!view.is_file(boot)) {
    return fail(name, boot + " is missing");
  }
  std::string list = dir + "/" + package_list_path(s.package_list_id);
  if (!view.is_file(list)) {
    return fail(name, list + " is missing");
  }
  std::vector<std::string> ids;
  try {
    ids = parse_package_list(view.read_file(list), list);
    for (const auto& id : ids) {
      std::string p = dir + "/" + package_path(id, list);
      if (!view.is_file(p)) {
        return fail(name, p + " is missing (listed in " + list + ")");
      }
    }
  } catch (const Error& e) {
    return fail(name, e.what());
  }
  return pass(name, "bootstrap " + s.bootstrap_id.substr(0, 12) + ", " + std::to_string(ids.size()) + " packages");
}

CheckResult
check_firstboot(FsView& view)
{
  const std::string name = "first-boot install unit";
  const std::string unit = std::string(slots::k_dcos_unit);
  if (!view.is_file(std::string(k_unit_dir) + "/" + unit)) {
    return fail(name, std::string(k_unit_dir) + "/" + unit + " is missing");
  }
  if (!unit_enabled(view, unit)) {
    return fail(name, unit + " is not enabled");
  }
  if (view.exists(std::string(slots::k_dcos_stamp))) {
    return fail(name, std::string(slots::k_dcos_stamp) + " exists: the unit would never run");
  }
  std::string role_file = std::string(slots::k_dcos_role_file);
  if (view.is_file(role_file)) {
    std::string r = view.read_file(role_file);
    r.erase(r.find_last_not_of(" \t\r\n") + 1);
    if (!parse_role(r)) {
      return fail(name, role_file + " holds '" + r + "', not a DC/OS role");
    }
    return pass(name, unit + " enabled, default role " + r);
  }
  return pass(name, unit + " enabled");
}

std::vector<std::string>
wants_dirs(FsView& view)
{
  std::vector<std::string> out;
  for (const auto& n : view.list(k_unit_dir)) {
    if (n.ends_with(".wants") || n.ends_with(".requires")) {
      out.push_back(std::string(k_unit_dir) + "/" + n);
    }
  }
  return out;
}

} // namespace

bool
unit_masked(FsView& view, const std::string& unit)
{
  std::string p = std::string(k_unit_dir) + "/" + unit;
  return view.is_symlink(p) && view.readlink(p) == "/dev/null";
}

bool
unit_enabled(FsView& view, const std::string& unit)
{
  if (unit_masked(view, unit)) {
    return false;
  }
  // Names that mean this unit: itself, and aliases in /etc/systemd/system linking to it.
  std::set<std::string> names{unit};
  for (const auto& n : view.list(k_unit_dir)) {
    std::string p = std::string(k_unit_dir) + "/" + n;
    if (n.ends_with(".service") && view.is_symlink(p)) {
      std::string target = view.readlink(p);
      if (target.substr(target.rfind('/') + 1) == unit) {
        names.insert(n);
      }
    }
  }
  for (const auto& dir : wants_dirs(view)) {
    for (const auto& n : view.list(dir)) {
      if (names.count(n) != 0) {
        return true;
      }
    }
  }
  return false;
}

std::vector<int>
role_ports(Role role, const std::optional<std::string>& version_text)
{
  std::optional<Version> v = parse_version(version_text);
  bool v111 = !v || (v->major == 1 && v->minor == 11);
  bool before_21 = !v || !since(v, 2, 1);
  std::vector<int> ports;
  if (role == Role::master) {
    ports = {53,   80,   443,  1050,  2181,  5050,  7070,  8080,  8101,  8123, 8181,
             9000, 9942, 9990, 36771, 41281, 46839, 61053, 61091, 62080, 62501};
    if (before_21) {
      ports.push_back(15055);
    }
  } else {
    ports = {53, 5051, 61001, 61091, 62080, 62501};
  }
  if (v111) {
    ports.push_back(61420);
  }
  if (since(v, 1, 13)) {
    ports.push_back(62020);
  }
  if (since(v, 2, 1)) {
    for (int p : {179, 62091, 64000}) {
      ports.push_back(p);
    }
    if (role == Role::master) {
      ports.push_back(2379);
      ports.push_back(2380);
    }
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

const std::map<std::string, std::vector<int>>&
listening_units()
{
  static const std::map<std::string, std::vector<int>> units{
    {"named.service", {53}},          {"bind9.service", {53}},
    {"dnsmasq.service", {53}},        {"unbound.service", {53}},
    {"pdns.service", {53}},           {"pdns-recursor.service", {53}},
    {"coredns.service", {53}},        {"systemd-resolved.service", {53}},
    {"httpd.service", {80, 443}},     {"nginx.service", {80, 443}},
    {"apache2.service", {80, 443}},   {"lighttpd.service", {80, 443}},
    {"haproxy.service", {80, 443}},   {"caddy.service", {80, 443}},
    {"traefik.service", {80, 443}},   {"bird.service", {179}},
    {"bgpd.service", {179}},          {"frr.service", {179}},
    {"zookeeper.service", {2181}},    {"etcd.service", {2379, 2380}},
    {"mesos-master.service", {5050}}, {"mesos-slave.service", {5051}},
    {"mesos-agent.service", {5051}},  {"marathon.service", {8080}},
    {"jenkins.service", {8080}},      {"tomcat.service", {8080}},
    {"exhibitor.service", {8181}},    {"polipo.service", {8123}},
    {"php-fpm.service", {9000}},      {"minio.service", {9000}},
  };
  return units;
}

std::vector<CheckResult>
run_checks(FsView& image, const VerifyOptions& options)
{
  CachingView view(image);
  std::optional<Version> version = parse_version(options.version);
  bool agent = options.role != Role::master;
  std::vector<CheckResult> out;
  out.push_back(check_preexisting(view));
  out.push_back(check_selinux(view, version));
  out.push_back(check_sort(view));
  for (auto& r : check_docker(view, version)) {
    out.push_back(std::move(r));
  }
  for (auto& r : check_commands(view, version)) {
    out.push_back(std::move(r));
  }
  out.push_back(check_systemd(view));
  // The installer checked nogroup only in some releases; the docs ask for it in all.
  if (!version || in_series(version, 1, 11, 11) || in_series(version, 1, 12, 4) || in_series(version, 1, 13, 5)) {
    out.push_back(check_nogroup(view));
  }
  out.push_back(check_not_enabled(view, "firewalld", {"firewalld.service"}));
  out.push_back(check_not_enabled(view, "dnsmasq", {"dnsmasq.service"}));
  out.push_back(check_time_sync(view));
  if (agent) {
    out.push_back(check_xfs(view, "the agent work dir", "/var/lib/mesos/slave"));
    out.push_back(check_xfs(view, "the Docker root", docker_root(view)));
  }
  out.push_back(check_ports(view, options.role, options.version));
  out.push_back(check_bundle(view));
  out.push_back(check_firstboot(view));
  return out;
}

std::string
format_line(const CheckResult& r)
{
  return "Checking " + r.name + ": " + (r.pass ? "PASS" : "FAIL") + " (" + r.detail + ")";
}

json
to_json(const std::vector<CheckResult>& results)
{
  json out = json::array();
  for (const auto& r : results) {
    out.push_back({{"check", r.name}, {"result", r.pass ? "PASS" : "FAIL"}, {"detail", r.detail}});
  }
  return out;
}

bool
all_pass(const std::vector<CheckResult>& results)
{
  return std::all_of(results.begin(), results.end(), [](const CheckResult& r) { return r.pass; });
}

} // namespace kiln::dcos
