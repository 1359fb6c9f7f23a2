// kiln-fleet's modules without a cluster: the cluster file's checks, the plan, the state
// file, the transport template, and the controller driven through its seams by an
// in-memory Mesos master (the operator API's JSON), in-memory nodes and a fake clock.
#include "core/fleet/cluster.hpp"
#include "core/fleet/controller.hpp"
#include "core/fleet/plan.hpp"
#include "core/fleet/state.hpp"
#include "core/fleet/transport.hpp"
#include "core/recipe/value.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <set>

namespace kiln::fleet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;
using test::write_text;

const char* k_head = R"(master:
  url: http://127.0.0.1:5050/api/v1
transport:
  command: ssh -o BatchMode=yes root@{address}
)";

std::string
agents_yaml(int n, const std::string& role = "agent")
{
  std::string s = "nodes:\n";
  for (int i = 1; i <= n; ++i) {
    s +=
      "  - {host: " + role + std::to_string(i) + ", address: 10.0.0." + std::to_string(i) + ", role: " + role + "}\n";
  }
  return s;
}

Cluster
load_text(const ScratchDir& dir, const std::string& text)
{
  write_text(dir.path() / "cluster.yaml", text);
  return load_cluster(dir.path() / "cluster.yaml");
}

std::vector<std::string>
problems(const ScratchDir& dir, const std::string& text)
{
  try {
    load_text(dir, text);
  } catch (const recipe::RecipeError& e) {
    return e.lines();
  }
  return {};
}

// ---- the cluster file ----

TEST(FleetCluster, LoadsDefaultsAndLimits)
{
  ScratchDir dir;
  Cluster c = load_text(dir, std::string(k_head) +
                               "action: {reimage: https://repo/node-v2.kbundle}\n"
                               "limits: {agents_at_once: 2, drain_grace: 30s, poll: 100ms, deadlines: {drain: 2m}}\n" +
                               agents_yaml(3));
  EXPECT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.action.kind, Action::Kind::reimage);
  EXPECT_EQ(c.action.bundle_url, "https://repo/node-v2.kbundle");
  EXPECT_EQ(c.limits.agents_at_once, 2u);
  EXPECT_EQ(c.limits.drain_grace, std::chrono::seconds(30));
  EXPECT_EQ(c.limits.poll, std::chrono::milliseconds(100));
  EXPECT_EQ(c.limits.deadlines.drain, std::chrono::minutes(2));
  EXPECT_EQ(c.node_command, "kiln-node");
  EXPECT_EQ(c.reboot_command, "systemctl reboot");
  EXPECT_EQ(c.state_file, fs::absolute(dir.path() / "cluster.state.json").lexically_normal());
}

TEST(FleetCluster, EveryProblemAtItsLineAndColumn)
{
  ScratchDir dir;
  auto lines = problems(dir, "master:\n  url: ftp://x\n  tokn: t\naction: {wipe: true, reimage: http://x/b}\n"
                             "limits: {agents_at_once: 0, drain_grace: soon}\n"
                             "nodes:\n  - {host: a1, address: 10.0.0.300, role: agent}\n"
                             "  - {host: a1, address: 10.0.0.2, role: slave}\n");
  std::string all;
  for (const auto& l : lines) {
    all += l + "\n";
  }
  const std::string f = (dir.path() / "cluster.yaml").string();
  EXPECT_NE(all.find(f + ":2:8: url must be an http:// or https:// URL"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":3:3: unknown key 'tokn' in master"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":4:9: action must be either"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":5:26: agents_at_once must be a whole number from 1"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":5:42: drain_grace must be a duration"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":7:25: address must be the node's IP address"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":8:12: host a1 is listed twice"), std::string::npos) << all;
  EXPECT_NE(all.find(f + ":8:41: role must be one of master, agent, agent_public"), std::string::npos) << all;
}

TEST(FleetCluster, MissingFieldsAndNodes)
{
  ScratchDir dir;
  auto lines = problems(dir, "name: x\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(":1:1: the cluster file: missing required field 'master'"), std::string::npos) << lines[0];
}

// ---- the transport template ----

TEST(FleetTransport, DefaultTemplateExpandsToSshWithTheCommandAsOneArgument)
{
  Cluster c;
  Node n{"a1.example", "10.0.0.11", Role::agent};
  auto argv = transport_argv(c.transport, n, "kiln-node '--json' 'status'");
  EXPECT_EQ(argv,
            (std::vector<std::string>{"ssh", "-o", "BatchMode=yes", "root@10.0.0.11", "kiln-node '--json' 'status'"}));
  EXPECT_EQ(expand("{host}/{address}/{x}", n), "a1.example/10.0.0.11/{x}");
  EXPECT_EQ(shell_command({"reimage", "http://h/a b'c"}), "'reimage' 'http://h/a b'\\''c'");
}

// ---- the plan ----

TEST(FleetPlan, MastersOneAtATimeThenAgentsInBatches)
{
  ScratchDir dir;
  Cluster c = load_text(dir, std::string(k_head) +
                               "action: {reimage: http://r/b.kbundle}\nlimits: {agents_at_once: 2}\n" + agents_yaml(5) +
                               "  - {host: m1, address: 10.0.1.1, role: master}\n"
                               "  - {host: m2, address: 10.0.1.2, role: master}\n"
                               "  - {host: m3, address: 10.0.1.3, role: master}\n");
  Plan p = make_plan(c);
  ASSERT_EQ(p.batches.size(), 6u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(p.batches[i].masters);
    ASSERT_EQ(p.batches[i].nodes.size(), 1u);
    EXPECT_EQ(p.batches[i].nodes[0].host, "m" + std::to_string(i + 1));
  }
  EXPECT_EQ(p.batches[3].nodes.size(), 2u);
  EXPECT_EQ(p.batches[4].nodes.size(), 2u);
  EXPECT_EQ(p.batches[5].nodes.size(), 1u);
  EXPECT_EQ(p.batches[5].nodes[0].host, "agent5");
  auto text = describe_plan(p, c);
  EXPECT_NE(std::find(text.begin(), text.end(), "batch 4: agent1 (10.0.0.1, agent), agent2 (10.0.0.2, agent)"),
            text.end());
}

TEST(FleetPlan, QuorumLossRefused)
{
  ScratchDir dir;
  for (int masters : {1, 2}) {
    std::string yaml = std::string(k_head) + "action: {reimage: http://r/b.kbundle}\nnodes:\n";
    for (int i = 1; i <= masters; ++i) {
      yaml += "  - {host: m" + std::to_string(i) + ", address: 10.0.1." + std::to_string(i) + ", role: master}\n";
    }
    Cluster c = load_text(dir, yaml);
    std::string error = std::string(test::error_of([&] { make_plan(c); }).what());
    EXPECT_NE(error.find("refused: taking 1 of " + std::to_string(masters)), std::string::npos) << error;
    EXPECT_NE(error.find("quorum"), std::string::npos) << error;
  }
}

TEST(FleetPlan, MasterWipeOnlyWhenForced)
{
  ScratchDir dir;
  Cluster c = load_text(dir, std::string(k_head) + "action: {wipe: true}\nnodes:\n"
                                                   "  - {host: m1, address: 10.0.1.1, role: master}\n"
                                                   "  - {host: m2, address: 10.0.1.2, role: master}\n"
                                                   "  - {host: m3, address: 10.0.1.3, role: master}\n");
  std::string error = std::string(test::error_of([&] { make_plan(c); }).what());
  EXPECT_NE(error.find("--force-wipe-masters"), std::string::npos) << error;
  EXPECT_EQ(make_plan(c, {true}).batches.size(), 3u);
}

// ---- the state file ----

TEST(FleetState, RoundTripAndAnotherRunRefused)
{
  ScratchDir dir;
  Cluster c = load_text(dir, std::string(k_head) + "action: {wipe: true}\n" + agents_yaml(2));
  EXPECT_FALSE(load_state(c.state_file));
  RunState s = start_state(c, std::nullopt);
  s.nodes["agent1"].phase = Phase::drained;
  s.nodes["agent1"].agent_id = "S1";
  save_state(c.state_file, s);
  auto back = load_state(c.state_file);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->nodes["agent1"].phase, Phase::drained);
  EXPECT_EQ(back->nodes["agent1"].agent_id, "S1");
  EXPECT_EQ(start_state(c, back).nodes["agent1"].phase, Phase::drained);
  Cluster other = load_text(dir, std::string(k_head) + "action: {reimage: http://r/b}\n" + agents_yaml(2));
  EXPECT_NE(std::string(test::error_of([&] { start_state(other, back); }).what()).find("belongs to another run"),
            std::string::npos);
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    files += e.path().filename().string().starts_with("cluster.state") ? 1 : 0;
  }
  EXPECT_EQ(files, 1);
}

// ---- the controller on fakes ----

// An in-memory master speaking the operator API's JSON: agents, the schedule, DOWN
// machines, drains that finish when asked, gone ids that never come back, and agents that
// re-register (pending while their machine is DOWN).
class FakeMaster : public MesosApi {
public:
  struct A {
    std::string id, host;
    bool active = true, deactivated = false;
    std::string drain;
  };
  std::vector<A> agents;
  json windows = json::array();
  std::set<std::string> down, gone;
  std::vector<std::pair<std::string, bool>> pending; // host, new id
  bool drains = true; // DRAINING becomes DRAINED at the next GET_AGENTS
  // Mesos removes a DOWN machine's agents and tells them to shut down (they forget their id);
  // false: an agent that keeps its id (and stays deactivated by its drain).
  bool removes_on_down = true;
  std::set<std::string> shut_down; // hosts whose agent its master shut down
  std::vector<std::string> calls;
  std::set<int> unavailable; // these GET_AGENTS calls (1, 2, ...) fail: HTTP 503
  int next_id = 100;
  std::size_t max_down = 0;

  json call(const json& r) override
  {
    const std::string type = r.at("type");
    calls.push_back(type);
    settle();
    if (type == "GET_AGENTS" && unavailable.contains(static_cast<int>(std::count(calls.begin(), calls.end(), type)))) {
      throw MasterUnavailable("Mesos GET_AGENTS", "HTTP 503: no leading master");
    }
    if (type == "GET_AGENTS") {
      json list = json::array();
      for (auto& a : agents) {
        if (a.drain == "DRAINING" && drains) {
          a.drain = "DRAINED";
        }
        json j = {{"agent_info", {{"id", {{"value", a.id}}}, {"hostname", a.host}}},
                  {"active", a.active},
                  {"deactivated", a.deactivated}};
        if (!a.drain.empty()) {
          j["drain_info"] = {{"state", a.drain}};
        }
        list.push_back(j);
      }
      return {{"type", "GET_AGENTS"}, {"get_agents", {{"agents", list}, {"recovered_agents", json::array()}}}};
    }
    if (type == "GET_MAINTENANCE_SCHEDULE") {
      return {{"type", type}, {"get_maintenance_schedule", {{"schedule", {{"windows", windows}}}}}};
    }
    if (type == "UPDATE_MAINTENANCE_SCHEDULE") {
      windows = r.at("update_maintenance_schedule").at("schedule").value("windows", json::array());
      return nullptr;
    }
    if (type == "GET_MAINTENANCE_STATUS") {
      json d = json::array();
      for (const auto& h : down) {
        d.push_back({{"hostname", h}, {"ip", ip(h)}});
      }
      return {{"type", type}, {"get_maintenance_status", {{"status", {{"down_machines", d}}}}}};
    }
    if (type == "START_MAINTENANCE" || type == "STOP_MAINTENANCE") {
      const auto& m = r.at(type == "START_MAINTENANCE" ? "start_maintenance" : "stop_maintenance").at("machines");
      for (const auto& id : m) {
        const std::string h = id.at("hostname");
        if (type == "START_MAINTENANCE") {
          if (!in_schedule(h)) {
            throw Error("Mesos " + type, "HTTP 400: machine not scheduled");
          }
          down.insert(h);
          max_down = std::max(max_down, down.size());
          for (auto& a : agents) {
            if (a.host == h) {
              a.active = false;
              if (removes_on_down) {
                shut_down.insert(h);
              }
            }
          }
          if (removes_on_down) {
            std::erase_if(agents, [&](const A& a) { return a.host == h; });
          }
        } else {
          if (!down.contains(h)) {
            throw Error("Mesos " + type, "HTTP 400: machine not DOWN");
          }
          down.erase(h);
          windows = without_machine({{"windows", windows}}, {h, ip(h)})["windows"];
        }
      }
      settle();
      return nullptr;
    }
    if (type == "DRAIN_AGENT") {
      for (auto& a : agents) {
        if (a.id == r.at("drain_agent").at("agent_id").at("value")) {
          a.drain = "DRAINING";
          a.deactivated = true;
          EXPECT_FALSE(r.at("drain_agent").at("mark_gone").get<bool>());
          // A google.protobuf.Duration: seconds and nanos (drain_grace 5m by default), nothing else.
          EXPECT_EQ(r.at("drain_agent").at("max_grace_period"), json({{"seconds", 300}, {"nanos", 0}}));
        }
      }
      return nullptr;
    }
    if (type == "REACTIVATE_AGENT") {
      for (auto& a : agents) {
        if (a.id == r.at("reactivate_agent").at("agent_id").at("value")) {
          a.deactivated = false;
          a.drain.clear();
        }
      }
      return nullptr;
    }
    if (type == "MARK_AGENT_GONE") {
      const std::string id = r.at("mark_agent_gone").at("agent_id").at("value");
      gone.insert(id);
      for (const auto& a : agents) {
        if (a.id == id) {
          shut_down.insert(a.host);
        }
      }
      std::erase_if(agents, [&](const A& a) { return a.id == id; });
      return nullptr;
    }
    throw Error("Mesos " + type, "HTTP 400: unknown call");
  }

  static std::string ip(const std::string& host) { return "10.0.0." + host.substr(host.size() - 1); }
  bool in_schedule(const std::string& h) const { return scheduled({{"windows", windows}}, {h, ip(h)}); }
  // The node rebooted: its agent disconnects and registers again once its machine is up.
  void rebooted(const std::string& host, bool new_id)
  {
    new_id = new_id || shut_down.erase(host) > 0;
    for (auto& a : agents) {
      if (a.host == host) {
        a.active = false;
      }
    }
    pending.emplace_back(host, new_id);
  }
  void settle()
  {
    std::vector<std::pair<std::string, bool>> still;
    for (const auto& [host, new_id] : pending) {
      if (down.contains(host)) {
        still.emplace_back(host, new_id);
        continue;
      }
      auto it = std::find_if(agents.begin(), agents.end(), [&](const A& a) { return a.host == host; });
      if (new_id) {
        if (it != agents.end() && !gone.contains(it->id)) {
          still.emplace_back(host, new_id); // the old id still stands: the new agent is refused
          continue;
        }
        A fresh;
        fresh.id = "S" + std::to_string(next_id++);
        fresh.host = host;
        agents.push_back(fresh);
      } else if (it != agents.end()) {
        it->active = true;
      }
    }
    pending = still;
  }
};

// In-memory nodes: kiln-node status, reimage (the other slot, booted at the next reboot),
// wipe, the reboot, the boot id; a node can be made to come back not good.
class FakeNodes : public Transport {
public:
  struct N {
    std::string booted = "A", next;
    std::string state = "good";
    int boot = 1;
    int writes = 0;
    bool healthy = true;
  };
  FakeMaster& master;
  std::map<std::string, N> nodes;
  bool wipe = false;
  int in_flight = 0, max_in_flight = 0;
  // The first `rendezvous` writes wait (5s at most, real time) until that many nodes are
  // written and not yet rebooted: a controller that writes them together passes at once.
  int rendezvous = 0;
  std::function<void(const std::string& host)> on_write; // called as a node is written
  std::mutex lock;
  std::condition_variable written;
  explicit FakeNodes(FakeMaster& m) : master(m) {}

  util::RunResult run(const Node& node, const std::string& command, Millis) override
  {
    std::unique_lock<std::mutex> hold(lock);
    N& n = nodes[node.host];
    util::RunResult r;
    r.exit_code = 0;
    if (command.find("'status'") != std::string::npos) {
      json slots = {{"A", {{"state", n.booted == "A" ? n.state : "good"}}},
                    {"B", {{"state", n.booted == "B" ? n.state : "empty"}}}};
      r.out = json({{"booted", n.booted}, {"slots", slots}}).dump();
    } else if (command.find("'reimage'") != std::string::npos) {
      ++n.writes;
      if (on_write) {
        on_write(node.host);
      }
      n.next = n.booted == "A" ? "B" : "A";
      max_in_flight = std::max(max_in_flight, ++in_flight);
      meet(hold);
    } else if (command.find("'wipe'") != std::string::npos) {
      ++n.writes;
      n.next = n.booted;
      max_in_flight = std::max(max_in_flight, ++in_flight);
    } else if (command == "reboot") {
      --in_flight;
      ++n.boot;
      n.booted = n.next.empty() ? n.booted : n.next;
      n.state = n.healthy ? "good" : "trial";
      master.rebooted(node.host, wipe);
      r.exit_code = 255;
    } else if (command == "bootid") {
      r.out = "boot-" + std::to_string(n.boot) + "\n";
    } else {
      r.exit_code = 127;
    }
    return r;
  }
  void meet(std::unique_lock<std::mutex>& hold)
  {
    if (rendezvous <= 0) {
      return;
    }
    --rendezvous;
    written.notify_all();
    written.wait_for(hold, std::chrono::seconds(5), [&] { return rendezvous == 0; });
  }
};

class FakeClock : public Clock {
public:
  Millis t{0};
  Millis now() override { return t; }
  std::int64_t wall_ns() override { return 1700000000000000000 + t.count() * 1000000; }
  void sleep(Millis d) override { t += d; }
};

class NoMasters : public MasterProbe {
public:
  std::map<std::string, std::string> problems; // host -> what is wrong with it
  std::vector<std::string> asked;
  MasterHealth probe(const Node& m) override
  {
    asked.push_back(m.host);
    return {m.host == "m1", problems[m.host]};
  }
};

class RecordedEvents : public Events {
public:
  std::vector<Event> all;
  void emit(const Event& e) override { all.push_back(e); }
};

class FleetController : public ::testing::Test {
protected:
  Cluster make(const std::string& action, int agents, unsigned at_once)
  {
    Cluster c =
      load_text(m_dir, std::string("master: {url: http://127.0.0.1:1/api/v1}\n"
                                   "transport: {command: fake, reboot_command: reboot, boot_id_command: bootid}\n"
                                   "action: ") +
                         action + "\nlimits: {agents_at_once: " + std::to_string(at_once) +
                         ", poll: 1s, deadlines: {drain: 30s, boot: 20s, rejoin: 20s}}\n" + agents_yaml(agents));
    for (int i = 1; i <= agents; ++i) {
      FakeMaster::A a;
      a.id = "S" + std::to_string(i);
      a.host = "agent" + std::to_string(i);
      m_master.agents.push_back(a);
    }
    m_nodes.wipe = action.find("wipe") != std::string::npos;
    return c;
  }

  // Runs (or resumes) the whole plan; the error's text, or "" when it succeeded.
  std::string run(const Cluster& c, ControlOptions options = {})
  {
    RunState state = start_state(c, load_state(c.state_file));
    Controller controller(c, {m_master, m_nodes, m_probe, m_clock, m_events}, std::move(options));
    try {
      controller.run(make_plan(c), state);
    } catch (const Error& e) {
      return e.what();
    }
    return {};
  }

  ScratchDir m_dir;
  FakeMaster m_master;
  FakeNodes m_nodes{m_master};
  FakeClock m_clock;
  NoMasters m_probe;
  RecordedEvents m_events;
};

TEST_F(FleetController, RollingReimageOfFiveTwoAtATime)
{
  Cluster c = make("{reimage: http://r/v2.kbundle}", 5, 2);
  m_nodes.rendezvous = 2; // the first batch's two writes meet: a serial run would keep one
  ASSERT_EQ(run(c), "");
  EXPECT_EQ(m_nodes.max_in_flight, 2); // the limit, reached and never passed
  EXPECT_EQ(m_master.max_down, 2u);
  int batches = 0;
  for (const auto& e : m_events.all) {
    batches += e.kind == Event::Kind::batch ? 1 : 0;
  }
  EXPECT_EQ(batches, 3);
  for (int i = 1; i <= 5; ++i) {
    const std::string h = "agent" + std::to_string(i);
    EXPECT_EQ(m_nodes.nodes[h].booted, "B") << h;
    EXPECT_EQ(m_nodes.nodes[h].writes, 1) << h;
  }
  // Machine DOWN removed each agent; each registered again with a new id once up.
  std::set<std::string> hosts;
  for (const auto& a : m_master.agents) {
    EXPECT_TRUE(a.active && !a.deactivated) << a.id;
    EXPECT_TRUE(a.id.starts_with("S1")) << a.id; // S100..: new ids
    hosts.insert(a.host);
  }
  EXPECT_EQ(hosts.size(), 5u);
  EXPECT_TRUE(m_master.windows.empty());
  EXPECT_TRUE(m_master.down.empty());
  auto state = load_state(c.state_file);
  for (const auto& [host, n] : state->nodes) {
    EXPECT_EQ(n.phase, Phase::done) << host;
  }
}

// A master that leaves a DOWN machine's agent registered: the agent keeps its id and comes
// back deactivated by its drain, so the run reactivates it.
TEST_F(FleetController, ReimagedAgentThatKeptItsIdIsReactivated)
{
  Cluster c = make("{reimage: http://r/v2.kbundle}", 2, 2);
  m_master.removes_on_down = false;
  ASSERT_EQ(run(c), "");
  ASSERT_EQ(m_master.agents.size(), 2u);
  for (const auto& a : m_master.agents) {
    EXPECT_TRUE(a.active && !a.deactivated) << a.id;
  }
  EXPECT_EQ(std::count(m_master.calls.begin(), m_master.calls.end(), "REACTIVATE_AGENT"), 2);
  auto state = load_state(c.state_file);
  EXPECT_EQ(state->nodes["agent1"].new_agent_id, "S1");
}

TEST_F(FleetController, WipeRejoinsWithNewIdsOldOnesGone)
{
  Cluster c = make("{wipe: true}", 3, 3);
  ASSERT_EQ(run(c), "");
  EXPECT_EQ(m_master.gone, (std::set<std::string>{"S1", "S2", "S3"}));
  ASSERT_EQ(m_master.agents.size(), 3u);
  auto state = load_state(c.state_file);
  for (const auto& [host, n] : state->nodes) {
    EXPECT_EQ(n.phase, Phase::done) << host;
    EXPECT_FALSE(n.new_agent_id.empty());
    EXPECT_NE(n.new_agent_id, n.agent_id);
    EXPECT_EQ(m_nodes.nodes[host].booted, "A");
  }
}

TEST_F(FleetController, HealthFailureStopsTheRunAtThatNode)
{
  Cluster c = make("{reimage: http://r/v2.kbundle}", 4, 2);
  m_nodes.nodes["agent2"].healthy = false;
  std::string error = run(c);
  EXPECT_EQ(error,
            "agent2: back: no new boot with slot B booted and good within 20s: slot B booted but trial, not good");
  auto state = load_state(c.state_file);
  EXPECT_EQ(state->nodes["agent2"].phase, Phase::rebooting);
  EXPECT_FALSE(state->nodes["agent2"].error.empty());
  EXPECT_EQ(state->nodes["agent3"].phase, Phase::pending); // no next batch
  EXPECT_EQ(state->nodes["agent4"].phase, Phase::pending);
  EXPECT_EQ(m_nodes.nodes["agent3"].writes, 0);
}

// A master failing over (HTTP 503) while the run waits for a drain and a rejoin: not yet,
// polled again; the run goes on. Outside a wait it stops the run.
TEST_F(FleetController, MasterUnavailableWhileWaitingIsNotYet)
{
  Cluster c = make("{reimage: http://r/v2.kbundle}", 1, 1);
  // 1: schedule's, 2: drain's, 3: the first of drained's wait, 5: the first of rejoined's
  m_master.unavailable = {3, 5};
  ASSERT_EQ(run(c), "");
  EXPECT_EQ(load_state(c.state_file)->nodes["agent1"].phase, Phase::done);
  fs::remove(c.state_file);
  m_master = FakeMaster();
  m_nodes.nodes.clear();
  c = make("{reimage: http://r/v2.kbundle}", 1, 1);
  m_master.unavailable = {1};
  EXPECT_EQ(run(c), "agent1: scheduled: Mesos GET_AGENTS: HTTP 503: no leading master");
}

TEST_F(FleetController, AgentThatNeverDrainsFailsAtTheDeadline)
{
  Cluster c = make("{reimage: http://r/v2.kbundle}", 2, 1);
  m_master.drains = false;
  std::string error = run(c);
  EXPECT_EQ(error, "agent1: drained: agent S1 not drained within 30s: drain state DRAINING");
  EXPECT_EQ(m_nodes.nodes["agent1"].writes, 0);
  EXPECT_TRUE(m_master.down.empty()); // never downed
  EXPECT_EQ(load_state(c.state_file)->nodes["agent2"].phase, Phase::pending);
}

// A run stopped after every phase in turn (the state saved, the process gone), then run
// again: every node done, each written once, no window or DOWN machine left.
TEST_F(FleetController, ResumedAtEveryPhaseBoundary)
{
  for (const char* action : {"{reimage: http://r/v2.kbundle}", "{wipe: true}"}) {
    Cluster c = make(action, 2, 1);
    const auto& phases = phases_for(c.nodes[0], c.action.kind);
    for (Phase p : phases) {
      if (p == Phase::pending || p == Phase::done) {
        continue;
      }
      struct Killed {};
      ControlOptions o;
      o.stop_after = p;
      o.stop = [] { throw Killed{}; };
      try {
        run(c, o);
      } catch (const Killed&) {
      }
    }
    EXPECT_EQ(run(c), "") << action;
    auto state = load_state(c.state_file);
    for (const auto& [host, n] : state->nodes) {
      EXPECT_EQ(n.phase, Phase::done) << action << " " << host;
      EXPECT_EQ(m_nodes.nodes[host].writes, 1) << action << " " << host;
    }
    EXPECT_TRUE(m_master.windows.empty()) << action;
    EXPECT_TRUE(m_master.down.empty()) << action;
    fs::remove(c.state_file);
    m_master = FakeMaster();
    m_nodes.nodes.clear();
  }
}

Cluster
three_masters(const ScratchDir& dir)
{
  return load_text(dir, "master: {url: http://127.0.0.1:1/api/v1}\n"
                        "transport: {command: fake, reboot_command: reboot, boot_id_command: bootid}\n"
                        "action: {reimage: http://r/v2.kbundle}\n"
                        "limits: {poll: 1s, deadlines: {master: 10s, boot: 20s}}\nnodes:\n"
                        "  - {host: m1, address: 10.0.1.1, role: master}\n"
                        "  - {host: m2, address: 10.0.1.2, role: master}\n"
                        "  - {host: m3, address: 10.0.1.3, role: master}\n");
}

TEST_F(FleetController, MastersOneAtATimeOnlyWhileTheOthersAreHealthy)
{
  Cluster c = three_masters(m_dir);
  m_probe.problems["m3"] = "m3: registrar/log/recovered is not 1";
  EXPECT_EQ(run(c), "m1: cleared: the other masters not healthy within 10s: m3: registrar/log/recovered is not 1");
  EXPECT_EQ(m_nodes.nodes["m1"].writes, 0);
  m_probe.problems.clear();
  ASSERT_EQ(run(c), "");
  for (const char* m : {"m1", "m2", "m3"}) {
    EXPECT_EQ(m_nodes.nodes[m].writes, 1) << m;
    EXPECT_EQ(m_nodes.nodes[m].booted, "B") << m;
  }
  EXPECT_TRUE(m_master.calls.empty()); // no maintenance for masters
}

// Another master falls ill while this one is written: it is not rebooted; the run resumed
// from `written` checks again, and reboots it once the others are healthy.
TEST_F(FleetController, MasterRebootsOnlyWhileTheOthersAreHealthyStill)
{
  Cluster c = three_masters(m_dir);
  m_nodes.on_write = [&](const std::string& host) {
    if (host == "m1") {
      m_probe.problems["m3"] = "m3: registrar/log/recovered is not 1";
    }
  };
  EXPECT_EQ(run(c), "m1: rebooting: the other masters not healthy within 10s: m3: registrar/log/recovered is not 1");
  EXPECT_EQ(m_nodes.nodes["m1"].writes, 1);
  EXPECT_EQ(m_nodes.nodes["m1"].boot, 1); // not rebooted
  EXPECT_EQ(load_state(c.state_file)->nodes["m1"].phase, Phase::written);
  m_nodes.on_write = nullptr;
  EXPECT_EQ(run(c), "m1: rebooting: the other masters not healthy within 10s: m3: registrar/log/recovered is not 1");
  EXPECT_EQ(m_nodes.nodes["m1"].boot, 1); // resumed: checked again
  m_probe.problems.clear();
  ASSERT_EQ(run(c), "");
  for (const char* m : {"m1", "m2", "m3"}) {
    EXPECT_EQ(m_nodes.nodes[m].writes, 1) << m;
    EXPECT_EQ(m_nodes.nodes[m].boot, 2) << m; // rebooted once
  }
}

// Killed after the reboot command ran but before `rebooting` was saved: the resumed run
// sees the boot id changed since `written` and does not reboot again.
TEST_F(FleetController, RebootSentButNotSavedIsNotRepeated)
{
  for (bool masters : {false, true}) {
    Cluster c = masters ? three_masters(m_dir) : make("{reimage: http://r/v2.kbundle}", 2, 1);
    struct Killed {};
    ControlOptions o;
    o.stop_after_reboot_sent = true;
    o.stop = [] { throw Killed{}; };
    EXPECT_THROW(run(c, o), Killed);
    const std::string first = c.nodes[0].host;
    EXPECT_EQ(load_state(c.state_file)->nodes[first].phase, Phase::written);
    EXPECT_EQ(m_nodes.nodes[first].boot, 2);
    ASSERT_EQ(run(c), "");
    for (const auto& n : c.nodes) {
      EXPECT_EQ(m_nodes.nodes[n.host].boot, 2) << n.host; // rebooted exactly once
      EXPECT_EQ(load_state(c.state_file)->nodes[n.host].phase, Phase::done) << n.host;
    }
    fs::remove(c.state_file);
    m_master = FakeMaster();
    m_nodes.nodes.clear();
  }
}

} // namespace
} // namespace kiln::fleet
