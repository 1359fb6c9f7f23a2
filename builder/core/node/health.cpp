#include "core/node/health.hpp"

#include "core/bundle/curl.hpp"
#include "core/node/disk.hpp"
#include "core/node/test_hooks.hpp"
#include "core/node/under_root.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <memory>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kiln::node {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds k_deadline{5000}; // connect + reply, per request
constexpr std::size_t k_reply_limit = 4u << 20; // a master's snapshot is some 100 KiB

// ---- HTTP: one GET with a deadline and a size bound ----

struct Body {
  std::string text;
  bool too_large = false;
};

size_t
on_body(char* data, size_t size, size_t count, void* opaque)
{
  auto* body = static_cast<Body*>(opaque);
  size_t n = size * count;
  if (body->text.size() + n > k_reply_limit) {
    body->too_large = true;
    return 0; // libcurl ends the transfer (CURLE_WRITE_ERROR)
  }
  body->text.append(data, n);
  return n;
}

std::string
http_get(const std::string& url)
{
  bundle::curl_global();
  bundle::CurlHandle curl(curl_easy_init());
  if (!curl) {
    throw Error(url, "libcurl: cannot create a handle");
  }
  Body body;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); // localhost, never through a proxy of the environment
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(k_deadline.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(k_deadline.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kiln-node/" KILN_VERSION);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c);
  util::check_interrupted();
  if (body.too_large) {
    throw Error(url, "the answer is larger than " + std::to_string(k_reply_limit) + " bytes");
  }
  if (rc != CURLE_OK) {
    throw Error(url, error[0] != '\0' ? error : curl_easy_strerror(rc));
  }
  return body.text;
}

// ---- ZooKeeper: a four-letter word over plain TCP ----

struct AddrinfoFree {
  void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};

// Waits until `fd` is ready for `events` or the deadline passes (false).
bool
wait_ready(int fd, short events, Clock::time_point deadline)
{
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) {
      util::check_interrupted();
      continue;
    }
    return n > 0;
  }
}

util::Fd
connect_before(const std::string& host, const std::string& port, Clock::time_point deadline, const std::string& subject)
{
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw Error(subject, std::string("cannot resolve: ") + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, AddrinfoFree> owner(found);
  std::string failure = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    util::Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      failure = errno_text(errno);
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        failure = errno_text(errno);
        continue;
      }
      if (!wait_ready(fd.get(), POLLOUT, deadline)) {
        failure = "no connection within " + std::to_string(k_deadline.count()) + " ms";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        failure = errno_text(err);
        continue;
      }
    }
    return fd;
  }
  throw Error(subject, failure);
}

// Sends `word` to ZooKeeper at HOST:PORT and returns its answer (it closes the
// connection after answering; at most 64 bytes are read).
std::string
zookeeper_ask(const std::string& address, const std::string& word)
{
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    throw Error(address, "not HOST:PORT");
  }
  const Clock::time_point deadline = Clock::now() + k_deadline;
  util::Fd fd = connect_before(address.substr(0, colon), address.substr(colon + 1), deadline, address);
  if (::send(fd.get(), word.data(), word.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(word.size())) {
    throw Error(address, "cannot send " + word + ": " + errno_text(errno));
  }
  std::string answer;
  char buffer[64];
  while (answer.size() < sizeof buffer) {
    if (!wait_ready(fd.get(), POLLIN, deadline)) {
      throw Error(address, "no answer to " + word + " within " + std::to_string(k_deadline.count()) + " ms");
    }
    ssize_t n = ::recv(fd.get(), buffer, sizeof buffer - answer.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n < 0) {
      throw Error(address, "reading the answer to " + word + ": " + errno_text(errno));
    }
    if (n == 0) {
      break;
    }
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  return answer;
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
    std::string answer = zookeeper_ask(zk, "ruok");
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
