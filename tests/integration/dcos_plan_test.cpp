// The four CentOS 7 DC/OS recipes resolve offline with `kiln plan --json`: the base is
// a pinned URL (never fetched by plan), the role recipes carry the implicit dcos stage,
// a URL bundle is "resolved at build" and a local bundle's digest enters the key. They
// are A/B images with EL7's GRUB, linux-firmware, a pinned Docker, the site's NTP servers
// and kiln-node; kiln refuses them without the site's NTP servers or trust key, and refuses
// an agent whose kiln-data can never hold the 20G DC/OS asks for.
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::map<std::string, std::string> k_offline{{"http_proxy", "http://127.0.0.1:9"},
                                                   {"https_proxy", "http://127.0.0.1:9"}};

fs::path
recipe_path(const std::string& recipe)
{
  return test::source_dir() / "recipes/centos7" / recipe;
}

fs::path
trust_key()
{
  return test::source_dir() / "tests/fixtures/ab-keys/release.pub";
}

// What an operator must give every CentOS 7 recipe.
std::vector<std::string>
site_sets()
{
  return {"--set", "ntp_servers=ntp1.example.org, ntp2.example.org", "--set", "trust_key=" + trust_key().string()};
}

util::RunResult
run_plan(const fs::path& recipe, const std::vector<std::string>& extra)
{
  std::vector<std::string> args{"plan", recipe.string(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  // No proxy, no resolver needed: plan must not touch the network at all.
  return test::run_kiln(args, k_offline);
}

json
plan(const std::string& recipe, const std::vector<std::string>& extra = {})
{
  std::vector<std::string> args = site_sets();
  args.insert(args.end(), extra.begin(), extra.end());
  util::RunResult r = run_plan(recipe_path(recipe), args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.ok() ? json::parse(r.out) : json::object();
}

// The element of `list` whose `field` is `value`.
const json&
named(const json& list, const char* field, const std::string& value)
{
  for (const auto& item : list) {
    if (item[field] == value) {
      return item;
    }
  }
  ADD_FAILURE() << "no " << field << " " << value;
  static const json none = json::object();
  return none;
}

const json&
stage(const json& p, const std::string& name)
{
  return named(p["stages"], "name", name);
}

const json&
input(const json& p, const std::string& kind)
{
  return named(p["inputs"], "kind", kind);
}

// Every step of the plan's stages with the given kind, as {"KIND": body}.
std::vector<json>
steps_of(const json& p, const std::string& kind)
{
  std::vector<json> out;
  for (const auto& s : p["stages"]) {
    for (const auto& step : s["steps"]) {
      if (step.contains(kind)) {
        out.push_back(step[kind]);
      }
    }
  }
  return out;
}

std::vector<std::string>
names(const json& stages)
{
  std::vector<std::string> out;
  for (const auto& s : stages) {
    out.push_back(s["name"]);
  }
  return out;
}

TEST(DcosPlan, AllFourCentos7RecipesResolveOffline)
{
  for (const char* name : {"base.yaml", "dcos-master.yaml", "dcos-agent.yaml", "dcos-agent-public.yaml"}) {
    SCOPED_TRACE(name);
    json p = plan(name);
    ASSERT_TRUE(p.contains("stages"));
    EXPECT_EQ(p["base"]["url"], "https://cloud.centos.org/centos/7/images/CentOS-7-x86_64-GenericCloud-2009.qcow2");
    EXPECT_EQ(p["base"]["sha256"], "e38bab0475cc6d004d2e17015969c659e5a308111851b0e2715e84646035bdd3");
    std::string steps = p["stages"].dump();
    EXPECT_NE(steps.find("vault.centos.org/7.9.2009/updates/x86_64"), std::string::npos);
    EXPECT_NE(steps.find("download.docker.com/linux/centos/7/x86_64/stable"), std::string::npos);
    EXPECT_NE(steps.find("docker-ce-19.03.5-3.el7"), std::string::npos);
    EXPECT_NE(steps.find("docker-ce-cli-19.03.5-3.el7"), std::string::npos);
    EXPECT_EQ(steps.find("1.2.10-3.2"), std::string::npos);
    if (std::string(name) == "base.yaml") {
      EXPECT_EQ(names(p["stages"]),
                (std::vector<std::string>{"repos", "packages", "host", "time", "trust", "finalize", "ab"}));
      EXPECT_EQ(stage(p, "finalize")["key"].get<std::string>().size(), 64u); // kiln plan shows every key
      continue;
    }
    EXPECT_EQ(names(p["stages"]),
              (std::vector<std::string>{"repos", "packages", "host", "time", "trust", "dcos", "finalize", "ab"}));
    const json& dcos = stage(p, "dcos");
    EXPECT_EQ(dcos["resolved"], "at build");
    EXPECT_EQ(dcos["key"], "");
    EXPECT_EQ(input(p, "dcos-bundle")["source"], "http://10.1.1.8:8080");
    EXPECT_EQ(input(p, "dcos-bundle")["resolved"], "at build");
    // The keys after it need the dcos stage's, so they too are resolved at build.
    EXPECT_EQ(stage(p, "finalize")["resolved"], "at build");
    EXPECT_EQ(stage(p, "ab")["resolved"], "at build");
  }
  EXPECT_EQ(stage(plan("dcos-master.yaml"), "dcos")["steps"][0]["dcos"]["role"], "master");
  EXPECT_EQ(stage(plan("dcos-agent.yaml"), "dcos")["steps"][0]["dcos"]["role"], "slave");
  EXPECT_EQ(stage(plan("dcos-agent-public.yaml"), "dcos")["steps"][0]["dcos"]["role"], "slave_public");
  // The shared stages are the same for every role: one cached base serves all three.
  for (const char* shared : {"packages", "host", "time", "trust"}) {
    SCOPED_TRACE(shared);
    EXPECT_EQ(stage(plan("dcos-master.yaml"), shared)["key"], stage(plan("dcos-agent.yaml"), shared)["key"]);
  }
}

// What issue 13 asks of a real CentOS 7 DC/OS node, read from the resolved plan of each role.
TEST(DcosPlan, EveryRoleIsAnAbNodeWithGrubFirmwarePinnedDockerAndSiteTime)
{
  for (const auto& [name, data_size] : {std::pair{"dcos-master.yaml", 8ull << 30},
                                        {"dcos-agent.yaml", 20ull << 30},
                                        {"dcos-agent-public.yaml", 20ull << 30}}) {
    SCOPED_TRACE(name);
    json p = plan(name);
    ASSERT_TRUE(p.contains("stages"));
    // layout ab, with kiln-data sized for the role and grown to the disk's end.
    EXPECT_EQ(p["layout"], "ab");
    const json& ab = stage(p, "ab");
    ASSERT_EQ(ab["steps"].size(), 1u);
    const json& settings = ab["steps"][0]["ab"]["settings"];
    EXPECT_EQ(settings["data_size"], data_size);
    EXPECT_EQ(settings["grow_data"], true);
    EXPECT_EQ(settings["data_fs"], "xfs");
    EXPECT_EQ(settings["slot_size"], 12ull << 30);
    EXPECT_EQ(p["ab"], settings);
    // kiln-node goes in, by digest.
    ASSERT_EQ(ab["inputs"].size(), 1u);
    EXPECT_EQ(ab["inputs"][0]["kind"], "kiln-node");
    EXPECT_EQ(ab["inputs"][0]["sha256"].get<std::string>().size(), 64u);
    EXPECT_EQ(ab["inputs"][0]["version"].get<std::string>().rfind("kiln-node ", 0), 0u);
    EXPECT_EQ(input(p, "kiln-node")["sha256"], ab["inputs"][0]["sha256"]);
    EXPECT_EQ(p["outputs"]["formats"], (json{"raw", "qcow2", "pxe"}));
    // The trust key becomes /etc/kiln/trust.d/release.pem.
    EXPECT_EQ(stage(p, "trust")["steps"][0]["file"]["path"], "/etc/kiln/trust.d/release.pem");
    // EL7's GRUB for BIOS and UEFI (and Secure Boot), the kernel, and linux-firmware back in.
    std::vector<std::string> installed;
    for (const auto& pk : steps_of(p, "packages")) {
      for (const auto& i : pk["install"]) {
        installed.push_back(i);
      }
    }
    for (const char* pkg : {"grub2-pc", "grub2-pc-modules", "grub2-efi-x64-modules", "grub2-efi-x64", "shim-x64",
                            "kernel", "linux-firmware"}) {
      EXPECT_NE(std::find(installed.begin(), installed.end(), pkg), installed.end()) << pkg;
    }
    // Docker pinned: its repository file excludes the three packages, after the install.
    std::vector<json> edits = steps_of(p, "edit");
    auto pin = std::find_if(edits.begin(), edits.end(),
                            [](const json& e) { return e["path"] == "/etc/yum.repos.d/docker-ce-stable.repo"; });
    ASSERT_NE(pin, edits.end());
    EXPECT_EQ((*pin)["set"], (json{{"exclude", "docker-ce* docker-ce-cli* containerd.io*"}}));
    EXPECT_EQ((*pin)["separator"], "=");
    const json& packages = stage(p, "packages")["steps"];
    EXPECT_TRUE(packages[0].contains("packages"));
    EXPECT_EQ(packages.back(), (json{{"edit", *pin}}));
    // Time: one server line per site server in place of the stock lines, chrony-wait enabled.
    auto chrony =
      std::find_if(edits.begin(), edits.end(), [](const json& e) { return e["path"] == "/etc/chrony.conf"; });
    ASSERT_NE(chrony, edits.end());
    EXPECT_EQ((*chrony)["lines"], (json{"server ntp1.example.org iburst", "server ntp2.example.org iburst"}));
    EXPECT_EQ((*chrony)["match"], "^(server|pool) ");
    std::vector<std::string> enabled;
    for (const auto& sd : steps_of(p, "systemd")) {
      for (const auto& u : sd["enable"]) {
        enabled.push_back(u);
      }
    }
    for (const char* unit : {"chronyd.service", "chrony-wait.service", "docker.service"}) {
      EXPECT_NE(std::find(enabled.begin(), enabled.end(), unit), enabled.end()) << unit;
    }
    // No public pool anywhere unless asked for.
    EXPECT_EQ(p["stages"].dump().find("pool.ntp.org"), std::string::npos);
  }
}

// A failed kiln command: exit status 2 and one line `kiln: error: FILE:LINE:COL: MESSAGE`
// per problem; returns the lines.
std::vector<std::string>
error_lines(const util::RunResult& r)
{
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  std::vector<std::string> lines;
  std::istringstream in(r.err);
  for (std::string line; std::getline(in, line);) {
    EXPECT_EQ(line.rfind("kiln: error: ", 0), 0u) << line;
    lines.push_back(line);
  }
  return lines;
}

TEST(DcosPlan, RefusedWithoutTheSiteNtpServersOrTrustKey)
{
  const std::string base = recipe_path("base.yaml").string();
  for (const char* name : {"base.yaml", "dcos-master.yaml", "dcos-agent.yaml", "dcos-agent-public.yaml"}) {
    SCOPED_TRACE(name);
    // No NTP servers: one line at the place that uses them (base.yaml's chrony edit).
    auto lines = error_lines(run_plan(recipe_path(name), {"--set", "trust_key=" + trust_key().string()}));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("kiln: error: " + base + ":"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(": variable 'ntp_servers' is required: give it with --set ntp_servers=VALUE"),
              std::string::npos)
      << lines[0];
    // No trust key: one line too (not also the key file '${trust_key}' that is missing).
    lines = error_lines(run_plan(recipe_path(name), {"--set", "ntp_servers=ntp1.example.org"}));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(": variable 'trust_key' is required"), std::string::npos) << lines[0];
  }
  // An empty list is no list of servers.
  auto lines = error_lines(
    run_plan(recipe_path("dcos-agent.yaml"), {"--set", "ntp_servers=", "--set", "trust_key=" + trust_key().string()}));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("each: item '' of '' must be one word"), std::string::npos) << lines[0];
  lines = error_lines(run_plan(recipe_path("dcos-agent.yaml"), {"--set", "ntp_servers=a.example,,b.example", "--set",
                                                                "trust_key=" + trust_key().string()}));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("each: item '' of 'a.example,,b.example'"), std::string::npos) << lines[0];
  // The public pool is an explicit choice: by its names.
  json p = plan("dcos-agent.yaml", {"--set", "ntp_servers=0.centos.pool.ntp.org,1.centos.pool.ntp.org"});
  EXPECT_NE(p["stages"].dump().find("\"server 1.centos.pool.ntp.org iburst\""), std::string::npos);
}

TEST(DcosPlan, BuildRefusesBeforeTouchingAnything)
{
  test::ScratchDir dir;
  util::RunResult r =
    test::run_kiln({"build", recipe_path("dcos-agent.yaml").string(), "--cache", (dir / "cache").string(), "-o",
                    (dir / "out").string(), "--set", "trust_key=" + trust_key().string()},
                   k_offline);
  auto lines = error_lines(r);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("variable 'ntp_servers' is required"), std::string::npos) << lines[0];
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(DcosPlan, AgentDataThatCanNeverReach20GIsRefused)
{
  test::ScratchDir dir;
  for (const char* role : {"dcos-agent.yaml", "dcos-agent-public.yaml", "dcos-master.yaml"}) {
    SCOPED_TRACE(role);
    // An agent that keeps kiln-data at 8G: refused at its data_size, by plan and by build.
    const fs::path small = dir / (std::string("small-") + role);
    test::write_text(small, "extends: " + recipe_path(role).string() +
                              "\nname: small\nab:\n  slot_size: 12G\n  data_size: 8G\n  grow_data: false\n");
    util::RunResult r = run_plan(small, site_sets());
    if (std::string(role) == "dcos-master.yaml") {
      EXPECT_EQ(r.exit_code, 0) << r.err; // the 20G rule is the agents'
      continue;
    }
    auto lines = error_lines(r);
    ASSERT_EQ(lines.size(), 1u);
    const std::string role_name = std::string(role) == "dcos-agent.yaml" ? "slave" : "slave_public";
    EXPECT_EQ(lines[0], "kiln: error: " + small.string() +
                          ":5:14: ab: data_size 8G with grow_data: false can never "
                          "give the 20G DC/OS " +
                          role_name +
                          " nodes need free under /var: give data_size: 20G or "
                          "more, or grow_data: true");
    std::vector<std::string> build{"build", small.string(),        "--cache", (dir / "cache").string(),
                                   "-o",    (dir / "out").string()};
    auto sets = site_sets();
    build.insert(build.end(), sets.begin(), sets.end());
    EXPECT_EQ(error_lines(test::run_kiln(build, k_offline)), lines);
    EXPECT_FALSE(fs::exists(dir / "out"));
    // The default data size (no data_size) is no bigger: refused at ab:.
    test::write_text(small, "extends: " + recipe_path(role).string() + "\nname: small\nab: {grow_data: false}\n");
    lines = error_lines(run_plan(small, site_sets()));
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find(small.string() + ":3:5: ab: data_size 4G with grow_data: false"), std::string::npos)
      << lines[0];
    // Grown, or 20G already: accepted.
    test::write_text(small, "extends: " + recipe_path(role).string() + "\nname: small\nab: {data_size: 8G}\n");
    EXPECT_EQ(run_plan(small, site_sets()).exit_code, 0);
    test::write_text(small, "extends: " + recipe_path(role).string() +
                              "\nname: small\nab: {data_size: 20G, grow_data: false}\n");
    EXPECT_EQ(run_plan(small, site_sets()).exit_code, 0);
  }
}

TEST(DcosPlan, LocalBundleDigestEntersTheKey)
{
  test::ScratchDir dir;
  test::make_serve_tree(dir / "serve");
  json a = plan("dcos-agent.yaml", {"--set", "dcos_bundle=" + (dir / "serve").string()});
  ASSERT_TRUE(a.contains("stages"));
  std::string key = stage(a, "dcos")["key"];
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(input(a, "dcos-bundle")["sha256"].get<std::string>().size(), 64u);
  // With the bundle's digest known, the A/B stage has its key at plan time too.
  EXPECT_EQ(stage(a, "ab")["key"].get<std::string>().size(), 64u);
  // Same tree, same key; a changed bundle, a new key (and only the dcos stage changes).
  EXPECT_EQ(stage(plan("dcos-agent.yaml", {"--set", "dcos_bundle=" + (dir / "serve").string()}), "dcos")["key"], key);
  test::ServeTreeOptions o;
  o.salt = "-2";
  test::make_serve_tree(dir / "serve2", o);
  json b = plan("dcos-agent.yaml", {"--set", "dcos_bundle=" + (dir / "serve2").string()});
  EXPECT_NE(stage(b, "dcos")["key"], key);
  EXPECT_EQ(stage(b, "trust")["key"], stage(a, "trust")["key"]);
}

TEST(DcosPlan, SchemaErrors)
{
  test::ScratchDir dir;
  test::write_text(dir / "r.yaml", "extends: " + (test::source_dir() / "recipes/centos7/base.yaml").string() +
                                     "\nname: x\ndcos: {bundle: ./missing, role: agent, version: two, colour: red}\n");
  std::vector<std::string> args{"plan", (dir / "r.yaml").string()};
  auto sets = site_sets();
  args.insert(args.end(), sets.begin(), sets.end());
  util::RunResult r = test::run_kiln(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bundle: no such directory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("role must be one of master, slave, slave_public, not 'agent'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("version must look like"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown key 'colour' in dcos"), std::string::npos) << r.err;
}

} // namespace
} // namespace kiln
