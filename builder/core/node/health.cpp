#include "core/node/health.hpp"

#include "core/bundle/http_call.hpp"
#include "core/node/disk.hpp"
#include "core/node/test_hooks.hpp"
#include "core/node/under_root.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/four_letter.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <memory>
#include <unistd.h>

namespace kiln::node {

namespace fs = std::filesystem;

namespace {

constexpr std::chrono::milliseconds k_deadline{5000}; // connect + reply, per request
constexpr std::size_t k_reply_limit = 4u << 20; // a master's snapshot is some 100 KiB

// One GET with a deadline and a size bound, to localhost, never through a proxy.
std::string
http_get(const std::string& url)
{
  bundle::HttpCall call;
  call.url = url;
  call.protocols = "http";
  call.no_proxy = true;
  call.user_agent = "kiln-node/" KILN_VERSION;
  call.timeout = k_deadline;
  call.limit = k_reply_limit;
  bundle::HttpAnswer answer = bundle::http_call(call);
  if (answer.status >= 400) {
    throw Error(url, "The requested URL returned error: " + std::to_string(answer.status));
  }
  return answer.body;
}

// ---- the gates ----

std::string
number_text(const nlohmann::json& v)
{
  if (v.is_number() && std::floor(v.get<double>()) == v.get<double>()) {
    return std::to_string(static_cast<long long>(v.get<double>()));
  }
  return v.dump();
}

// `metric` must be 1 in BASE/metrics/snapshot; else "WHO NOT_OK (...)".
std::string
metric_problem(const std::string& base, const std::string& metric, const std::string& who, const std::string& not_ok)
{
  const std::string url = base + "/metrics/snapshot";
  std::string text;
  try {
    text = http_get(url);
  } catch (const Error& e) {
    return who + " not answering (" + e.subject() + ": " + e.reason() + ")";
  }
  nlohmann::json snapshot = nlohmann::json::parse(text, nullptr, false);
  if (!snapshot.is_object()) {
    return who + " answered something else than a metrics snapshot (" + url + ")";
  }
  auto it = snapshot.find(metric);
  if (it == snapshot.end()) {
    return who + " " + not_ok + " (no " + metric + " in " + url + ")";
  }
  if (!it->is_number() || it->get<double>() != 1.0) {
    return who + " " + not_ok + " (" + metric + " = " + number_text(*it) + " in " + url + ")";
  }
  return {};
}

std::string
trimmed(std::string s)
{
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
    s.pop_back();
  }
  return s;
}

} // namespace

std::optional<std::string>
recorded_dcos_role(const fs::path& root)
{
  fs::path file = under(root, slots::k_dcos_role_file);
  if (!present(file)) {
    return std::nullopt;
  }
  return trimmed(util::read_file(file));
}

std::string
mesos_problem(dcos::Role role)
{
  const TestHooks& hooks = test_hooks(); // test build only
  const bool master = role == dcos::Role::master;
  std::string base = !hooks.mesos.empty() ? hooks.mesos : master ? "http://localhost:5050" : "http://localhost:5051";
  if (!master) {
    return metric_problem(base, "slave/registered", "Mesos agent", "not registered");
  }
  std::string problem =
    metric_problem(base, "registrar/log/recovered", "Mesos master", "has not recovered its replicated log");
  if (!problem.empty()) {
    return problem;
  }
  const std::string zk = !hooks.zookeeper.empty() ? hooks.zookeeper : "localhost:2181";
  try {
    std::string answer = util::four_letter_word(zk, "ruok", k_deadline);
    if (answer != "imok") {
      return "ZooKeeper answered '" + answer + "' to ruok on " + zk + ", not imok";
    }
  } catch (const Error& e) {
    return "ZooKeeper not answering ruok on " + zk + " (" + e.reason() + ")";
  }
  return {};
}

std::string
health_problem(const fs::path& root)
{
  const std::string& fake = test_hooks().systemctl; // test build only
  std::string systemctl = !fake.empty() ? fake : "systemctl";
  auto recorded_role = recorded_dcos_role(root);
  bool dcos = recorded_role.has_value();
  for (const char* dir : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}) {
    dcos = dcos || present(under(root, dir) / std::string(slots::k_dcos_unit));
  }
  if (dcos) {
    if (present(under(root, slots::k_dcos_failed))) {
      return "the DC/OS first-boot install failed (" + std::string(slots::k_dcos_failed) + ")";
    }
    if (!present(under(root, slots::k_dcos_stamp))) {
      return "the DC/OS first-boot install has not finished (no " + std::string(slots::k_dcos_stamp) + ")";
    }
    std::string name = cmdline_value(read_cmdline(), slots::k_cmdline_dcos_role).value_or(recorded_role.value_or(""));
    std::optional<dcos::Role> role = dcos::parse_role(name);
    if (!role) {
      return "unknown DC/OS role '" + name + "' (kiln.dcos_role= or " + std::string(slots::k_dcos_role_file) + ")";
    }
    const std::string unit = dcos::mesos_unit(*role);
    util::RunResult r = util::run({systemctl, "is-active", unit});
    if (!r.ok()) {
      std::string state = r.out.substr(0, r.out.find('\n'));
      return unit + " is not active (" + (state.empty() ? "exit " + std::to_string(r.exit_code) : state) + ")";
    }
    return mesos_problem(*role);
  }
  util::RunResult r = util::run({systemctl, "is-system-running"});
  std::string state = r.out.substr(0, r.out.find('\n'));
  // "starting" while boot jobs (this very check among them) still run.
  if (state == "running" || state == "starting" || state == "initializing") {
    return {};
  }
  return "the system is " + (state.empty() ? "in an unknown state" : state) + " (systemctl is-system-running)";
}

} // namespace kiln::node
