#include "core/fleet/master_health.hpp"

#include "core/bundle/http_call.hpp"
#include "core/fleet/mesos_http.hpp"
#include "core/util/error.hpp"
#include "core/util/four_letter.hpp"

#include <nlohmann/json.hpp>

namespace kiln::fleet {

namespace {

constexpr std::chrono::milliseconds k_deadline{5000};

// GET `url` (a bounded answer); Error for no answer or a status other than 200.
std::string
get(const std::string& url, const Cluster& cluster, const std::string& token)
{
  bundle::HttpCall c;
  c.url = url;
  c.headers = auth_headers(token);
  c.ca_file = cluster.ca_file.string();
  c.timeout = k_deadline;
  c.user_agent = "kiln-fleet/" KILN_VERSION;
  bundle::HttpAnswer a = bundle::http_call(c);
  if (a.status != 200) {
    throw Error(url, "HTTP " + std::to_string(a.status));
  }
  return a.body;
}

// Empty when Exhibitor's cluster status lists `master` as serving.
std::string
exhibitor_problem(const Cluster& cluster, const Node& master, const std::string& token)
{
  const std::string url = expand(cluster.exhibitor_url, master);
  try {
    auto servers = nlohmann::json::parse(get(url, cluster, token));
    for (const auto& s : servers) {
      const std::string host = s.value("hostname", "");
      if (host == master.host || host == master.address) {
        return s.value("code", 0) == 3
                 ? std::string()
                 : "Exhibitor: ZooKeeper " + host + " is " + s.value("description", "not serving");
      }
    }
    return "Exhibitor " + url + " does not list " + master.host;
  } catch (const Error& e) {
    return std::string("Exhibitor: ") + e.what();
  } catch (const nlohmann::json::exception&) {
    return "Exhibitor " + url + ": not a cluster status";
  }
}

double
metric(const nlohmann::json& snapshot, const std::string& name)
{
  return snapshot.contains(name) && snapshot[name].is_number() ? snapshot[name].get<double>() : 0.0;
}

} // namespace

MasterHealth
NetworkMasterProbe::probe(const Node& master)
{
  MasterHealth h;
  const std::string url = expand(m_cluster.metrics_url, master);
  try {
    auto snapshot = nlohmann::json::parse(get(url, m_cluster, m_token));
    h.elected = metric(snapshot, "master/elected") == 1.0;
    if (metric(snapshot, "registrar/log/recovered") != 1.0) {
      h.problem = master.host + ": registrar/log/recovered is not 1";
      return h;
    }
  } catch (const Error& e) {
    h.problem = master.host + ": " + e.what();
    return h;
  } catch (const nlohmann::json::exception&) {
    h.problem = master.host + ": " + url + " is not a metrics snapshot";
    return h;
  }
  if (!m_cluster.exhibitor_url.empty()) {
    std::string problem = exhibitor_problem(m_cluster, master, m_token);
    h.problem = problem.empty() ? "" : master.host + ": " + problem;
    return h;
  }
  const std::string zk = expand(m_cluster.zookeeper, master);
  try {
    std::string answer = util::four_letter_word(zk, "ruok", k_deadline);
    if (answer != "imok") {
      h.problem = master.host + ": ZooKeeper " + zk + " answered '" + answer.substr(0, 16) + "' to ruok";
    }
  } catch (const Error& e) {
    h.problem = master.host + ": ZooKeeper " + zk + ": " + e.reason();
  }
  return h;
}

std::string
others_problem(MasterProbe& probe, const std::vector<Node>& masters, const std::string& except)
{
  bool leader = false;
  for (const auto& m : masters) {
    MasterHealth h = probe.probe(m);
    leader = leader || h.elected;
    if (m.host != except && !h.problem.empty()) {
      return h.problem;
    }
  }
  return leader ? std::string() : "no master leads (master/elected is 0 on every master)";
}

std::string
master_problem(MasterProbe& probe, const std::vector<Node>& masters, const Node& master)
{
  MasterHealth mine = probe.probe(master);
  if (!mine.problem.empty()) {
    return mine.problem;
  }
  bool leader = mine.elected;
  for (const auto& m : masters) {
    leader = leader || (m.host != master.host && probe.probe(m).elected);
  }
  return leader ? std::string() : "no master leads (master/elected is 0 on every master)";
}

} // namespace kiln::fleet
