// The command lines themselves: help texts, the one-line error format, exit statuses.
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

TEST(Cli, HelpTexts)
{
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"plan", "--help"}, {"fetch", "--help"}}) {
    auto r = test::run_kiln(args);
    EXPECT_EQ(r.exit_code, 0) << args[0];
    EXPECT_NE(r.out.find("Usage: kiln"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "");
  }
  auto r = test::run_kiln({"--help"});
  EXPECT_NE(r.out.find("plan"), std::string::npos);
  EXPECT_NE(r.out.find("fetch"), std::string::npos);
  auto node = test::run_kiln_node({"--help"});
  EXPECT_EQ(node.exit_code, 0);
  EXPECT_NE(node.out.find("Usage: kiln-node"), std::string::npos);
}

TEST(Cli, Version)
{
  auto r = test::run_kiln({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "kiln " KILN_VERSION "\n");
}

TEST(Cli, UsageErrorsAreOneLine)
{
  for (const auto& args : std::vector<std::vector<std::string>>{
         {}, {"frobnicate"}, {"plan"}, {"plan", "a", "b"}, {"fetch", "--retries", "x", "u"}}) {
    auto r = test::run_kiln(args);
    EXPECT_EQ(r.exit_code, 2);
    auto lines = test::lines(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("kiln: error: usage: ", 0), 0u) << lines[0];
    EXPECT_EQ(r.out, "");
  }
}

TEST(Cli, MissingRecipeFile)
{
  auto r = test::run_kiln({"plan", "/nonexistent/r.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kiln: error: /nonexistent/r.yaml: no such recipe file\n");
}

TEST(Cli, BadRecipeReportsEveryErrorAsFileLineCol)
{
  ScratchDir dir;
  test::write_text(dir / "r.yaml", "name: demo\nbase: {url: 'https://x.invalid/a', sha256: 12}\nfoo: 1\n"
                                   "stages:\n  - name: s\n    steps: [{run: '${undefined}'}]\n");
  auto r = test::run_kiln({"plan", (dir / "r.yaml").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  auto lines = test::lines(r.err);
  ASSERT_EQ(lines.size(), 3u) << r.err;
  std::regex form("kiln: error: " + (dir / "r.yaml").string() + ":[0-9]+:[0-9]+: .+");
  for (const auto& line : lines) {
    EXPECT_TRUE(std::regex_match(line, form)) << line;
  }
}

TEST(Cli, PlanJsonAndText)
{
  ScratchDir dir;
  test::write_text(dir / "base.yaml",
                   "name: base\nvars: {ntp: a}\nbase: {url: 'https://x.invalid/a', sha256: " + std::string(64, 'b') +
                     "}\nstages:\n  - name: os\n    steps: [{run: 'echo ${ntp}'}]\n");
  test::write_text(dir / "r.yaml", "extends: base.yaml\nname: r\n");
  auto r = test::run_kiln({"plan", (dir / "r.yaml").string(), "--json", "--set", "ntp=b"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["name"], "r");
  EXPECT_EQ(j["recipe"]["stages"][0]["steps"][0]["run"], "echo b");
  EXPECT_EQ(j["extends"].size(), 2u);
  auto text = test::run_kiln({"plan", (dir / "r.yaml").string(), "--set", "ntp=b"});
  ASSERT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("- run: \"echo b\""), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(j["stages"][0]["key"].get<std::string>()), std::string::npos);
  auto bad = test::run_kiln({"plan", (dir / "r.yaml").string(), "--set", "=x"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "kiln: error: --set =x: expected NAME=VALUE with NAME made of letters, digits and '_'\n");
}

TEST(Cli, PlanWritesNothing)
{
  ScratchDir dir;
  test::write_text(dir / "r.yaml",
                   "name: r\nbase: {url: 'https://x.invalid/a', sha256: " + std::string(64, 'b') + "}\n");
  auto r = test::run_kiln({"plan", (dir / "r.yaml").string()},
                          {{"KILN_CACHE", (dir / "cache").string()}, {"HOME", (dir / "home").string()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir / "cache"));
  EXPECT_FALSE(fs::exists(dir / "home"));
}

} // namespace
} // namespace kiln
