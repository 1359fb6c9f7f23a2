// The four CentOS 7 DC/OS recipes resolve offline with `kiln plan --json`: the base is
// a pinned URL (never fetched by plan), the role recipes carry the implicit dcos stage,
// a URL bundle is "resolved at build" and a local bundle's digest enters the key.
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json
plan(const std::string& recipe, const std::vector<std::string>& extra = {})
{
  std::vector<std::string> args{"plan", (test::source_dir() / "recipes/centos7" / recipe).string(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  // No proxy, no resolver needed: plan must not touch the network at all.
  util::RunResult r = test::run_kiln(args, {{"http_proxy", "http://127.0.0.1:9"}, {"https_proxy", "http://127.0.0.1:9"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.ok() ? json::parse(r.out) : json::object();
}

TEST(DcosPlan, AllFourCentos7RecipesResolveOffline)
{
  for (const char* name : {"base.yaml", "dcos-master.yaml", "dcos-agent.yaml", "dcos-agent-public.yaml"}) {
    SCOPED_TRACE(name);
    json p = plan(name);
    ASSERT_TRUE(p.contains("stages"));
    EXPECT_EQ(p["base"]["url"], "https://cloud.centos.org/centos/7/images/CentOS-7-x86_64-GenericCloud-2009.qcow2");
    EXPECT_EQ(p["base"]["sha256"], "e38bab0475cc6d004d2e17015969c659e5a308111851b0e2715e84646035bdd3");
    std::vector<std::string> stages;
    for (const auto& s : p["stages"]) {
      stages.push_back(s["name"]);
    }
    std::string steps = p["stages"].dump();
    EXPECT_NE(steps.find("vault.centos.org/7.9.2009/updates/x86_64"), std::string::npos);
    EXPECT_NE(steps.find("download.docker.com/linux/centos/7/x86_64/stable"), std::string::npos);
    EXPECT_NE(steps.find("docker-ce-19.03.5-3.el7"), std::string::npos);
    EXPECT_NE(steps.find("docker-ce-cli-19.03.5-3.el7"), std::string::npos);
    EXPECT_EQ(steps.find("1.2.10-3.2"), std::string::npos);
    if (std::string(name) == "base.yaml") {
      EXPECT_EQ(stages, (std::vector<std::string>{"repos", "packages", "host"}));
      continue;
    }
    EXPECT_EQ(stages, (std::vector<std::string>{"repos", "packages", "host", "dcos"}));
    const json& dcos = p["stages"].back();
    EXPECT_EQ(dcos["resolved"], "at build");
    EXPECT_EQ(dcos["key"], "");
    EXPECT_EQ(p["inputs"].back()["kind"], "dcos-bundle");
    EXPECT_EQ(p["inputs"].back()["source"], "http://10.1.1.8:8080");
    EXPECT_EQ(p["inputs"].back()["resolved"], "at build");
  }
  EXPECT_EQ(plan("dcos-master.yaml")["stages"].back()["steps"][0]["dcos"]["role"], "master");
  EXPECT_EQ(plan("dcos-agent.yaml")["stages"].back()["steps"][0]["dcos"]["role"], "slave");
  EXPECT_EQ(plan("dcos-agent-public.yaml")["stages"].back()["steps"][0]["dcos"]["role"], "slave_public");
  // The shared stages are the same for every role: one cached base serves all three.
  EXPECT_EQ(plan("dcos-master.yaml")["stages"][2]["key"], plan("dcos-agent.yaml")["stages"][2]["key"]);
}

TEST(DcosPlan, LocalBundleDigestEntersTheKey)
{
  test::ScratchDir dir;
  test::make_serve_tree(dir / "serve");
  json a = plan("dcos-agent.yaml", {"--set", "dcos_bundle=" + (dir / "serve").string()});
  ASSERT_TRUE(a.contains("stages"));
  std::string key = a["stages"].back()["key"];
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(a["inputs"].back()["sha256"].get<std::string>().size(), 64u);
  // Same tree, same key; a changed bundle, a new key (and only the dcos stage changes).
  EXPECT_EQ(plan("dcos-agent.yaml", {"--set", "dcos_bundle=" + (dir / "serve").string()})["stages"].back()["key"], key);
  test::ServeTreeOptions o;
  o.salt = "-2";
  test::make_serve_tree(dir / "serve2", o);
  json b = plan("dcos-agent.yaml", {"--set", "dcos_bundle=" + (dir / "serve2").string()});
  EXPECT_NE(b["stages"].back()["key"], key);
  EXPECT_EQ(b["stages"][2]["key"], a["stages"][2]["key"]);
}

TEST(DcosPlan, SchemaErrors)
{
  test::ScratchDir dir;
  test::write_text(dir / "r.yaml", "extends: " + (test::source_dir() / "recipes/centos7/base.yaml").string() +
                                     "\nname: x\ndcos: {bundle: ./missing, role: agent, version: two, colour: red}\n");
  util::RunResult r = test::run_kiln({"plan", (dir / "r.yaml").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("bundle: no such directory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("role must be one of master, slave, slave_public, not 'agent'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("version must look like"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown key 'colour' in dcos"), std::string::npos) << r.err;
}

} // namespace
} // namespace kiln
