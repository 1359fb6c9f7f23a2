// kiln-fleet against a fake Mesos master (tests/support/mesos_master.py) and nodes that are
// real kiln-node runs on A/B disk image files, reached through a real sshd on loopback
// with the default transport's shape (tests/support/fleet_fakes, fleet_node.py).
#include "integration/node_fixture.hpp"
#include "support/fleet_fakes.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <set>

namespace kiln::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Options {
  int agents = 5;
  int masters = 0;
  unsigned at_once = 2;
  std::string action = "reimage"; // or "wipe"
  std::vector<std::string> master_args; // mesos_master.py's
  std::string drain_deadline = "5s";
  std::string boot_deadline = "5s";
};

class FleetRun : public ::testing::Test {
protected:
  void start(const Options& o)
  {
    m_options = o;
    const fs::path d = m_dir.path();
    // The images: slot A of every node holds "old"; the bundle holds "new", signed.
    fs::path old_root = node::make_rootfs(d, "old", 16, node::sample_files("1"));
    fs::path new_root = node::make_rootfs(d, "new", 16, node::sample_files("2"));
    node::Keys key = node::make_key(d / "keys", "release");
    m_trust = node::trust_dir(d / "trust", {key});
    fs::create_directories(d / "bundles");
    auto pkey = crypto::load_private_key(key.key);
    bundle::BundleInfo info = bundle::write_bundle(new_root, d / "bundles", node::base_manifest("node-v2"), &pkey);
    m_http = std::make_unique<HttpServer>(d / "bundles");
    m_bundle_url = m_http->url("/files/" + info.path.filename().string());

    json agents = json::array();
    json nodes = json::object();
    std::vector<std::string> addresses;
    for (int i = 1; i <= o.agents + o.masters; ++i) {
      const bool master = i > o.agents;
      const std::string host = master ? "m" + std::to_string(i - o.agents) : "agent" + std::to_string(i);
      const std::string address = "127.0.0." + std::to_string((master ? 20 - o.agents : 10) + i);
      fs::path nd = d / "nodes" / host;
      fs::create_directories(nd);
      node::make_ab_disk(
        nd, {"kiln_order=A B", "kiln_A_state=good", "kiln_A_tries=0", "kiln_B_state=empty", "kiln_B_tries=0"},
        old_root);
      write_text(nd / "booted", "A\n");
      write_text(nd / "bootid", "boot-0-" + host + "\n");
      write_text(nd / "health", "good\n");
      for (const char* f : {"etc/mesosphere/roles/slave", "var/lib/dcos/cluster-id", "var/lib/kiln/dcos-installed"}) {
        write_text(nd / "root" / f, "x");
      }
      const std::string id = "S" + std::to_string(i);
      if (!master) {
        write_text(nd / "root/var/lib/mesos/slave/meta/slaves/latest", id + "\n");
        agents.push_back({{"id", id}, {"hostname", host}});
      }
      nodes[address] = {{"dir", nd.string()}, {"host", host}, {"role", master ? "master" : "agent"}};
      addresses.push_back(address);
      m_hosts.push_back({host, address});
    }
    write_text(d / "token", "secret-token\n");
    m_master = std::make_unique<FakeMesosMaster>(d / "master", agents, "secret-token", o.master_args);
    m_sshd = std::make_unique<Sshd>(d / "ssh", addresses);
    json config = {{"nodes", nodes},
                   {"kiln_node", KILN_NODE_TEST_BIN},
                   {"trust", m_trust.string()},
                   {"master", m_master->url()},
                   {"log", (d / "all-commands.log").string()}};
    write_text(d / "nodes.json", config.dump(2));
    const std::string script =
      "python3 " + (support_dir() / "fleet_node.py").string() + " " + (d / "nodes.json").string();
    std::string yaml = "name: test\n"
                       "master:\n  url: " +
                       m_master->url() +
                       "/api/v1\n  token_file: token\n"
                       "transport:\n  command: " +
                       m_sshd->transport() +
                       "\n"
                       "  node_command: " +
                       script +
                       " kiln-node\n"
                       "  reboot_command: " +
                       script +
                       " reboot\n"
                       "  boot_id_command: " +
                       script + " bootid\n";
    yaml += o.action == "wipe" ? "action: {wipe: true}\n" : "action: {reimage: " + m_bundle_url + "}\n";
    yaml += "limits:\n  agents_at_once: " + std::to_string(o.at_once) +
            "\n  drain_grace: 1s\n  poll: 100ms\n  deadlines: {drain: " + o.drain_deadline +
            ", command: 60s, boot: " + o.boot_deadline + ", rejoin: 5s}\nnodes:\n";
    for (const auto& [host, address] : m_hosts) {
      yaml +=
        "  - {host: " + host + ", address: " + address + ", role: " + (host[0] == 'm' ? "master" : "agent") + "}\n";
    }
    m_cluster = d / "cluster.yaml";
    write_text(m_cluster, yaml);
  }

  util::RunResult fleet(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {})
  {
    std::vector<std::string> argv{KILN_FLEET_TEST_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    util::RunOptions o;
    o.env = env;
    o.timeout = std::chrono::seconds(300);
    util::RunResult r = util::run(argv, o);
    // Kept with the test's scratch directory when it fails.
    write_text(m_dir.path() / ("kiln-fleet-" + std::to_string(++m_runs) + ".log"),
               "$ kiln-fleet " + args.front() + "\n" + r.out + r.err + "exit " + std::to_string(r.exit_code) + "\n");
    return r;
  }

  // One agent, one at a time, whose drain takes `seconds` (a deadline of 60s).
  static Options one_agent_draining_for(const std::string& seconds)
  {
    Options o;
    o.agents = 1;
    o.at_once = 1;
    o.drain_deadline = "60s";
    o.master_args = {"--drain-seconds", seconds};
    return o;
  }
  // `kiln-fleet run` started and read until agent1 drains; nullptr when it ended first.
  std::unique_ptr<util::Child> run_until_draining()
  {
    util::RunOptions ro;
    ro.capture_stderr = false;
    auto child =
      std::make_unique<util::Child>(std::vector<std::string>{KILN_FLEET_TEST_BIN, "run", m_cluster.string()}, ro);
    while (auto line = child->read_line()) {
      if (line->find("agent1: draining:") != std::string::npos) {
        return child;
      }
    }
    return nullptr;
  }

  fs::path node_dir(const std::string& host) const { return m_dir.path() / "nodes" / host; }
  std::vector<std::string> commands(const std::string& host) const
  {
    fs::path log = node_dir(host) / "commands.log";
    return fs::exists(log) ? lines(read_text(log)) : std::vector<std::string>{};
  }
  int count(const std::string& host, const std::string& word) const
  {
    int n = 0;
    for (const auto& c : commands(host)) {
      n += c.find(word) != std::string::npos ? 1 : 0;
    }
    return n;
  }
  json node_status(const std::string& host) const
  {
    util::RunResult r = run_kiln_node({"--json", "--disk", (node_dir(host) / "disk.img").string(), "--booted",
                                       read_text(node_dir(host) / "booted").substr(0, 1), "status"});
    EXPECT_TRUE(r.ok()) << r.err;
    return r.ok() ? json::parse(r.out) : json::object();
  }
  // The master's log entries whose `key` is `value`.
  int logged(const std::string& key, const std::string& value) const
  {
    int n = 0;
    for (const auto& e : m_master->log()) {
      n += e.value(key, "") == value ? 1 : 0;
    }
    return n;
  }
  // The most machines DOWN at once, from the master's log.
  int most_down() const
  {
    int down = 0, most = 0;
    for (const auto& e : m_master->log()) {
      const std::string call = e.value("call", "");
      if (call == "START_MAINTENANCE") {
        most = std::max(most, ++down);
      } else if (call == "STOP_MAINTENANCE") {
        --down;
      }
    }
    return most;
  }

  ScratchDir m_dir;
  int m_runs = 0;
  Options m_options;
  fs::path m_trust, m_cluster;
  std::string m_bundle_url;
  std::unique_ptr<HttpServer> m_http;
  std::unique_ptr<FakeMesosMaster> m_master;
  std::unique_ptr<Sshd> m_sshd;
  std::vector<std::pair<std::string, std::string>> m_hosts;
};

TEST_F(FleetRun, RollingReimageOfFiveAgentsTwoAtATime)
{
  start({});
  util::RunResult plan = fleet({"plan", m_cluster.string()});
  ASSERT_TRUE(plan.ok()) << plan.err;
  EXPECT_NE(plan.out.find("batch 3: agent5 (127.0.0.15, agent)"), std::string::npos) << plan.out;
  EXPECT_TRUE(m_master->log().empty()); // plan asks nothing of the cluster
  util::RunResult r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  json st = m_master->state();
  // Machine DOWN removed each agent (as Mesos does); each registered anew once its
  // machine was up, and nothing was refused.
  ASSERT_EQ(st["agents"].size(), 5u) << st.dump();
  std::set<std::string> hosts;
  for (const auto& a : st["agents"]) {
    EXPECT_TRUE(a["active"].get<bool>() && !a["deactivated"].get<bool>()) << a.dump();
    EXPECT_TRUE(a["id"].get<std::string>().starts_with("S-")) << a.dump();
    hosts.insert(a["hostname"]);
  }
  EXPECT_EQ(hosts.size(), 5u);
  EXPECT_TRUE(st["refused"].empty()) << st.dump();
  EXPECT_TRUE(st["windows"].empty()) << st.dump();
  EXPECT_TRUE(st["down"].empty());
  EXPECT_EQ(most_down(), 2); // two machines DOWN together at some point, never three
  for (const auto& [host, address] : m_hosts) {
    EXPECT_EQ(read_text(node_dir(host) / "booted").substr(0, 1), "B") << host;
    json s = node_status(host);
    EXPECT_EQ(s["slots"]["B"]["state"], "good") << host;
    EXPECT_EQ(s["slots"]["B"]["name"], "node-v2") << host;
    EXPECT_EQ(count(host, "reimage"), 1) << host;
  }
  util::RunResult status = fleet({"--json", "status", m_cluster.string()});
  ASSERT_TRUE(status.ok()) << status.err;
  const json nodes = json::parse(status.out)["nodes"]; // a named copy: the parsed temporary dies here
  for (const auto& n : nodes) {
    EXPECT_EQ(n["phase"], "done") << n.dump();
  }
  // A second run finds everything done and touches nothing.
  const std::size_t calls = m_master->log().size();
  ASSERT_TRUE(fleet({"run", m_cluster.string()}).ok());
  EXPECT_EQ(m_master->log().size(), calls);
}

TEST_F(FleetRun, WipeRejoinsWithNewIdsAndTheOldOnesGone)
{
  Options o;
  o.agents = 2;
  o.action = "wipe";
  start(o);
  util::RunResult r = fleet({"--json", "run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  json st = m_master->state();
  EXPECT_EQ(st["gone"], json::array({"S1", "S2"}));
  ASSERT_EQ(st["agents"].size(), 2u) << st.dump();
  std::set<std::string> hosts;
  for (const auto& a : st["agents"]) {
    EXPECT_TRUE(a["id"].get<std::string>().starts_with("S-")) << a.dump();
    EXPECT_TRUE(a["active"].get<bool>());
    hosts.insert(a["hostname"]);
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"agent1", "agent2"}));
  for (const auto& [host, address] : m_hosts) {
    EXPECT_FALSE(fs::exists(node_dir(host) / "root/var/lib/dcos/cluster-id")) << host;
    EXPECT_EQ(read_text(node_dir(host) / "booted").substr(0, 1), "A");
    EXPECT_EQ(count(host, "wipe"), 1);
  }
  // --json: one JSON object per line, a phase event for each node's rejoin.
  int rejoined = 0;
  for (const auto& line : lines(r.out)) {
    json e = json::parse(line);
    rejoined += e.value("phase", "") == "rejoined" ? 1 : 0;
  }
  EXPECT_EQ(rejoined, 2);
}

TEST_F(FleetRun, NodeFailingHealthStopsTheRunThere)
{
  Options o;
  o.agents = 3;
  o.at_once = 1;
  o.boot_deadline = "2s";
  start(o);
  write_text(node_dir("agent2") / "health", "failing\n");
  util::RunResult r = fleet({"run", m_cluster.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("kiln-fleet: error: agent2: back: no new boot with slot B booted and good within 2s"),
            std::string::npos)
    << r.err;
  EXPECT_EQ(count("agent1", "reimage"), 1);
  EXPECT_TRUE(commands("agent3").empty()); // untouched
  // agent2 booted its new slot on trial, GRUB's count down by one, never confirmed.
  json s2 = node_status("agent2");
  EXPECT_EQ(s2["booted"], "B");
  EXPECT_EQ(s2["slots"]["B"]["state"], "trial");
  EXPECT_EQ(s2["slots"]["B"]["tries"], std::to_string(slots::k_default_tries - 1));
  json st = m_master->state();
  EXPECT_EQ(st["down"], json::array({"agent2"})); // left as it is
  util::RunResult status = fleet({"--json", "status", m_cluster.string()});
  json s = json::parse(status.out);
  EXPECT_EQ(s["nodes"][0]["phase"], "done");
  EXPECT_EQ(s["nodes"][1]["phase"], "rebooting");
  EXPECT_EQ(s["nodes"][2]["phase"], "pending");
}

TEST_F(FleetRun, AgentThatNeverDrainsFailsAtTheDeadline)
{
  Options o;
  o.agents = 2;
  o.at_once = 1;
  o.drain_deadline = "1s";
  o.master_args = {"--never-drain", "agent1"};
  start(o);
  util::RunResult r = fleet({"run", m_cluster.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln-fleet: error: agent1: drained: agent S1 not drained within 1s: drain state DRAINING\n");
  EXPECT_EQ(count("agent1", "reimage"), 0);
  EXPECT_TRUE(commands("agent2").empty());
  EXPECT_TRUE(m_master->state()["down"].empty());
}

// Ctrl-C while an agent drains: kiln-fleet ends at once (exit 130), the state file says
// where the node is, and `run` again goes on from there without draining it twice.
TEST_F(FleetRun, InterruptedWhileDrainingEndsPromptlyAndResumes)
{
  start(one_agent_draining_for("4"));
  auto child = run_until_draining();
  ASSERT_TRUE(child) << "kiln-fleet ended before draining";
  const auto t0 = std::chrono::steady_clock::now();
  child->kill(SIGINT);
  EXPECT_EQ(child->wait(), 130);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  util::RunResult status = fleet({"--json", "status", m_cluster.string()});
  json n = json::parse(status.out)["nodes"][0];
  EXPECT_EQ(n["phase"], "draining");
  EXPECT_NE(n.value("error", "").find("stopped by a signal"), std::string::npos) << n.dump();
  util::RunResult r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  EXPECT_EQ(logged("call", "DRAIN_AGENT"), 1);
}

// Killed (SIGKILL) right after each phase was saved, then run again: every node done, each
// reimaged once, every maintenance call made once per node.
TEST_F(FleetRun, InterruptedAtEveryPhaseBoundaryResumes)
{
  Options o;
  o.agents = 1;
  o.at_once = 1;
  start(o);
  for (const char* phase :
       {"scheduled", "draining", "drained", "down", "written", "rebooting", "back", "up", "rejoined"}) {
    util::RunResult r = fleet({"run", m_cluster.string()}, {{"KILN_FLEET_STOP_AFTER", phase}});
    EXPECT_EQ(r.exit_code, 128 + SIGKILL) << phase << ": " << r.err;
    util::RunResult status = fleet({"--json", "status", m_cluster.string()});
    EXPECT_EQ(json::parse(status.out)["nodes"][0]["phase"], phase);
  }
  util::RunResult r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(count("agent1", "reimage"), 1);
  EXPECT_EQ(count("agent1", "reboot"), 1);
  std::map<std::string, int> calls;
  for (const auto& e : m_master->log()) {
    ++calls[e.value("call", "")];
  }
  EXPECT_EQ(calls["DRAIN_AGENT"], 1);
  EXPECT_EQ(calls["START_MAINTENANCE"], 1);
  EXPECT_EQ(calls["STOP_MAINTENANCE"], 1);
  EXPECT_EQ(calls["UPDATE_MAINTENANCE_SCHEDULE"], 1); // the window added; STOP_MAINTENANCE removed it
  json st = m_master->state();
  EXPECT_TRUE(st["agents"][0]["active"].get<bool>());
  EXPECT_TRUE(st["windows"].empty());
  EXPECT_EQ(read_text(node_dir("agent1") / "booted").substr(0, 1), "B");
}

// Killed (SIGKILL) after the reboot command ran but before `rebooting` was saved: the
// resumed run finds the node's boot id changed since `written` and does not reboot it again
// (a second boot would take another of GRUB's tries of the slot on trial).
TEST_F(FleetRun, KilledAfterTheRebootWasSentRebootsOnce)
{
  Options o;
  o.agents = 1;
  o.at_once = 1;
  start(o);
  util::RunResult r = fleet({"run", m_cluster.string()}, {{"KILN_FLEET_STOP_AFTER", "reboot-sent"}});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.err;
  util::RunResult status = fleet({"--json", "status", m_cluster.string()});
  EXPECT_EQ(json::parse(status.out)["nodes"][0]["phase"], "written");
  EXPECT_EQ(count("agent1", "reboot"), 1);
  r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  EXPECT_EQ(count("agent1", "reboot"), 1); // booted exactly once
  json s = node_status("agent1");
  EXPECT_EQ(s["booted"], "B");
  EXPECT_EQ(s["slots"]["B"]["state"], "good");
}

// A second run of the same cluster file while one runs is refused at once, with one line.
TEST_F(FleetRun, SecondRunOfTheSameFileIsRefused)
{
  start(one_agent_draining_for("30"));
  auto first = run_until_draining();
  ASSERT_TRUE(first) << "kiln-fleet ended before draining";
  const auto t0 = std::chrono::steady_clock::now();
  util::RunResult second = fleet({"run", m_cluster.string()});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(second.exit_code, 1);
  const std::string state = (m_dir.path() / "cluster.state.json").string();
  EXPECT_EQ(second.err, "kiln-fleet: error: " + state + ": another kiln-fleet run holds it\n");
  first->kill(SIGINT);
  EXPECT_EQ(first->wait(), 130);
}

// The master answers 503 (failing over) while the run waits for the drain and the rejoin:
// kiln-fleet polls again and finishes.
TEST_F(FleetRun, MasterFailingOverWhileWaitingIsWaitedFor)
{
  Options o;
  o.agents = 1;
  o.at_once = 1;
  // GET_AGENTS 1: schedule's, 2: drain's, 3: drained's first poll, 5: rejoined's first.
  o.master_args = {"--fail-call", "GET_AGENTS:3", "--fail-call", "GET_AGENTS:5"};
  start(o);
  util::RunResult r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  EXPECT_EQ(logged("event", "unavailable"), 2);
  EXPECT_EQ(read_text(node_dir("agent1") / "booted").substr(0, 1), "B");
}

// The cluster file names a master that is not the leader: it answers every call 307
// Temporary Redirect, and kiln-fleet follows it (the same POST, body and token) to the
// leader. A master that only ever redirects ends the run with one line after 3 hops.
TEST_F(FleetRun, NonLeadingMasterRedirectsToTheLeader)
{
  Options o;
  o.agents = 1;
  o.at_once = 1;
  start(o);
  const fs::path d = m_dir.path();
  const std::string leader = m_master->url() + "/api/v1";
  FakeMesosMaster loop(d / "loop", json::array(), "secret-token", {"--redirect-to", "/api/v1"});
  std::string yaml = read_text(m_cluster);
  write_text(m_cluster, std::string(yaml).replace(yaml.find(leader), leader.size(), loop.url() + "/api/v1"));
  util::RunResult r = fleet({"run", m_cluster.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("still redirected (HTTP 307) after 3 hops, last to " + loop.url() + "/api/v1"),
            std::string::npos)
    << r.err;
  EXPECT_EQ(loop.log().size(), 4u); // the call and 3 hops
  EXPECT_TRUE(m_master->log().empty());

  // Scheme-relative, as a Mesos master writes it: //HOST:PORT/api/v1.
  const std::string scheme_relative = leader.substr(leader.find("//"));
  FakeMesosMaster standby(d / "standby", json::array(), "secret-token", {"--redirect-to", scheme_relative});
  write_text(m_cluster, std::string(yaml).replace(yaml.find(leader), leader.size(), standby.url() + "/api/v1"));
  r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  EXPECT_EQ(read_text(node_dir("agent1") / "booted").substr(0, 1), "B");
  std::map<std::string, int> redirected, answered;
  for (const auto& e : standby.log()) {
    EXPECT_EQ(e.value("to", ""), scheme_relative);
    ++redirected[e.value("type", "")];
  }
  for (const auto& e : m_master->log()) {
    ++answered[e.value("call", "")];
  }
  // Every call reached the leader through the standby, with its token and body.
  EXPECT_EQ(redirected["DRAIN_AGENT"], 1);
  EXPECT_EQ(answered["DRAIN_AGENT"], 1);
  EXPECT_EQ(redirected["START_MAINTENANCE"], 1);
  EXPECT_EQ(answered["STOP_MAINTENANCE"], 1);
  EXPECT_TRUE(m_master->state()["agents"][0]["active"].get<bool>());
}

// Three masters, one at a time: each only while the other two are healthy (their log
// recovered, ZooKeeper answering ruok with imok on a real socket), then healthy again.
TEST_F(FleetRun, MastersOneAtATimeWhileTheOthersAreHealthy)
{
  Options o;
  o.agents = 0;
  o.masters = 3;
  o.master_args = {"--leader", "m2"};
  start(o);
  // Point the master checks at the fake (one process stands in for the three).
  std::string yaml = read_text(m_cluster);
  const std::string health = "  metrics_url: \"" + m_master->url() +
                             "/metrics/snapshot?master={host}\"\n"
                             "  zookeeper: \"127.0.0.1:" +
                             std::to_string(m_master->zookeeper_port()) + "\"\n";
  yaml.insert(yaml.find("transport:"), health);
  write_text(m_cluster, yaml);
  util::RunResult r = fleet({"run", m_cluster.string()});
  ASSERT_TRUE(r.ok()) << r.out << r.err;
  // In order, and never two at once: each master's reboot before the next one's reimage.
  std::vector<std::string> order;
  for (const auto& line : lines(read_text(m_dir.path() / "all-commands.log"))) {
    if (line.find(" reimage ") != std::string::npos || line.ends_with(" reboot")) {
      order.push_back(line.substr(0, line.find(' ')) + (line.ends_with(" reboot") ? " reboot" : " reimage"));
    }
  }
  EXPECT_EQ(
    order, (std::vector<std::string>{"m1 reimage", "m1 reboot", "m2 reimage", "m2 reboot", "m3 reimage", "m3 reboot"}));
  for (const char* m : {"m1", "m2", "m3"}) {
    EXPECT_EQ(read_text(node_dir(m) / "booted").substr(0, 1), "B") << m;
  }
  EXPECT_TRUE(m_master->log().empty()); // no maintenance calls for masters
}

// Exhibitor says one master's ZooKeeper is not serving: no master may go.
TEST_F(FleetRun, NoMasterGoesWhileExhibitorSaysAnotherIsNotServing)
{
  Options o;
  o.agents = 0;
  o.masters = 3;
  o.master_args = {"--leader", "m1", "--zk-host", "m1", "--zk-host", "m2", "--zk-host", "m3", "--zk-unhealthy", "m3"};
  start(o);
  std::string yaml = read_text(m_cluster);
  const std::string health = "  metrics_url: \"" + m_master->url() +
                             "/metrics/snapshot?master={host}\"\n"
                             "  exhibitor_url: \"" +
                             m_master->url() + "/exhibitor/v1/cluster/status\"\n";
  yaml.insert(yaml.find("transport:"), health);
  yaml.insert(yaml.find("  drain_grace"), "  deadlines: {master: 1s}\n");
  yaml.erase(yaml.find("  deadlines: {drain"), yaml.find("nodes:") - yaml.find("  deadlines: {drain"));
  write_text(m_cluster, yaml);
  util::RunResult r = fleet({"run", m_cluster.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.err, "kiln-fleet: error: m1: cleared: the other masters not healthy within 1s: m3: "
                   "Exhibitor: ZooKeeper m3 is not serving\n");
  EXPECT_EQ(count("m1", "reimage"), 0);
}

TEST(FleetPlan, MastersThatWouldLoseQuorumAreRefused)
{
  ScratchDir dir;
  write_text(dir.path() / "c.yaml", "master: {url: http://127.0.0.1:1/api/v1}\naction: {reimage: http://r/b}\nnodes:\n"
                                    "  - {host: m1, address: 10.0.0.1, role: master}\n"
                                    "  - {host: m2, address: 10.0.0.2, role: master}\n");
  util::RunResult r = util::run({KILN_FLEET_TEST_BIN, "plan", (dir.path() / "c.yaml").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines(r.err).size(), 1u);
  EXPECT_NE(r.err.find("refused: taking 1 of 2 masters down leaves 1, fewer than the quorum of 2"), std::string::npos)
    << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(FleetPlan, ClusterFileErrorsAtLineAndColumn)
{
  ScratchDir dir;
  write_text(dir.path() / "c.yaml", "master: {url: http://127.0.0.1:1/api/v1}\naction: {reimage: http://r/b}\n"
                                    "limits: {agents_at_once: many}\nnodes: []\n");
  util::RunResult r = util::run({KILN_FLEET_TEST_BIN, "plan", (dir.path() / "c.yaml").string()});
  EXPECT_EQ(r.exit_code, 2);
  const std::string f = (dir.path() / "c.yaml").string();
  EXPECT_NE(r.err.find("kiln-fleet: error: " + f + ":3:26: agents_at_once must be a whole number"), std::string::npos)
    << r.err;
  EXPECT_NE(r.err.find(f + ":4:8: nodes must be a non-empty list"), std::string::npos) << r.err;
}

} // namespace
} // namespace kiln::test
