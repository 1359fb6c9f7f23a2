#include "core/recipe/loader.hpp"
#include "core/recipe/plan.hpp"
#include "core/recipe/schema.hpp"
#include "core/recipe/schema/steps.hpp"
#include "core/util/error.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace kiln::recipe {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::write_text;

const std::string k_digest = std::string(64, 'a');

std::string
minimal(const std::string& extra = "")
{
  return "name: demo\nbase:\n  url: https://example.invalid/base.qcow2\n  sha256: " + k_digest + "\n" + extra;
}

// Loads and expects failure; returns the diagnostics as "LINE:COL: message" (file name stripped).
std::vector<std::string>
errors_of(const fs::path& path, const LoadOptions& options = {})
{
  try {
    load_recipe(path, options);
  } catch (const RecipeError& e) {
    std::vector<std::string> out;
    for (const auto& d : e.items()) {
      EXPECT_EQ(d.location.file.empty(), false);
      out.push_back(std::to_string(d.location.line) + ":" + std::to_string(d.location.column) + ": " + d.message);
    }
    return out;
  }
  ADD_FAILURE() << "recipe loaded without errors";
  return {};
}

TEST(Recipe, MinimalLoadsWithDefaults)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal());
  Recipe r = load_recipe(dir / "r.yaml");
  EXPECT_EQ(r.name, "demo");
  EXPECT_EQ(r.base.kind, BaseImage::Kind::url);
  EXPECT_EQ(r.base.urls, std::vector<std::string>{"https://example.invalid/base.qcow2"});
  EXPECT_EQ(r.base.format, "qcow2");
  EXPECT_TRUE(r.sysprep);
  EXPECT_EQ(r.outputs.formats, std::vector<OutputFormat>{OutputFormat::qcow2});
  EXPECT_EQ(r.outputs.name, "demo");
  EXPECT_EQ(r.layout, Layout::plain);
}

TEST(Recipe, UnknownKeyWithSuggestionAndPosition)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("sysprepp: true\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "5:1: unknown key 'sysprepp' in recipe (did you mean 'sysprep'?)");
}

TEST(Recipe, EveryErrorIsReportedNotOnlyTheFirst)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", "name: demo\n"
                             "base:\n"
                             "  url: https://example.invalid/x\n"
                             "  sha256: abc\n"
                             "size: lots\n"
                             "network: maybe\n"
                             "outputs: {formats: [qcow2, iso]}\n"
                             "stages:\n"
                             "  - name: s\n"
                             "    steps:\n"
                             "      - selinux: {mode: permisive}\n"
                             "      - file: {path: etc/x, content: a, mode: 999}\n"
                             "      - group: {name: g, gid: -1}\n"
                             "      - nope: {}\n");
  auto errs = errors_of(dir / "r.yaml");
  std::vector<std::string> expected = {
    "4:11: sha256 must be 64 lower-case hex digits, not 'abc' (3 characters)",
    "5:7: size must be a size such as 4G, 512M or 1048576, not 'lots'",
    "6:10: network must be true or false, not 'maybe'",
    "7:28: formats: unknown format 'iso' (known: qcow2, raw, vmdk, vhd, pxe)",
    "11:25: mode must be one of enforcing, permissive, disabled, not 'permisive' (did you mean 'permissive'?)",
    "12:22: path must be an absolute path in the image, not 'etc/x'",
    "12:47: mode must be an octal mode such as 0644, not '999'",
    "13:31: gid must be a whole number from 0 to 4294967294, not '-1'",
    "14:9: unknown step 'nope' (known: file, overlay, edit, delete, unit, systemd, group, user, selinux, packages, "
    "run, firstboot)",
  };
  EXPECT_EQ(errs, expected);
}

TEST(Recipe, MissingRequiredFields)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", "description: no name, no base\nstages:\n  - steps: []\n");
  auto errs = errors_of(dir / "r.yaml");
  std::vector<std::string> expected = {
    "1:1: recipe: missing required field 'name'",
    "1:1: recipe: missing required field 'base'",
    "3:5: stage: missing required field 'name'",
  };
  EXPECT_EQ(errs, expected);
}

TEST(Recipe, UnpinnedRemoteBaseNeedsPermission)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", "name: demo\nbase: {url: https://example.invalid/x.qcow2}\n");
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("missing required field 'sha256'"), std::string::npos);
  LoadOptions allow;
  allow.allow_unpinned = true;
  EXPECT_FALSE(load_recipe(dir / "r.yaml", allow).base.sha256.has_value());
}

TEST(Recipe, WrongTypes)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("stages: {name: x}\nvars: [a]\n"));
  auto errs = errors_of(dir / "r.yaml");
  std::vector<std::string> expected = {
    "5:9: stages must be a list, not a mapping",
    "6:7: vars must be a mapping of names to values, not a list",
  };
  EXPECT_EQ(errs, expected);
}

TEST(Recipe, YamlSyntaxErrorHasPosition)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", "name: demo\nbase: [unclosed\n");
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0].substr(0, 2), "3:");
}

TEST(Recipe, DuplicateKeyIsAnError)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("name: again\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "5:1: duplicate key 'name'");
}

TEST(Recipe, ExtendsMergesVarsAndStagesByName)
{
  ScratchDir dir;
  write_text(dir / "common/base.yaml", minimal("vars:\n  ntp: a.example\n  zone: UTC\n"
                                               "sysprep: false\n"
                                               "stages:\n"
                                               "  - name: os\n    steps: [{run: base-os}]\n"
                                               "  - name: time\n    steps: [{run: 'ntp ${ntp} ${zone}'}]\n"));
  write_text(dir / "role.yaml", "extends: common/base.yaml\n"
                                "name: role\n"
                                "vars: {ntp: b.example}\n"
                                "stages:\n"
                                "  - name: os\n    steps: [{run: role-os}]\n"
                                "  - name: dcos\n    steps: [{run: install}]\n");
  Recipe r = load_recipe(dir / "role.yaml");
  EXPECT_EQ(r.name, "role");
  EXPECT_FALSE(r.sysprep); // inherited
  ASSERT_EQ(r.stages.size(), 3u);
  EXPECT_EQ(r.stages[0].name, "os");
  EXPECT_EQ(std::get<RunStep>(r.stages[0].steps[0].spec).command, "role-os"); // replaced in place
  EXPECT_EQ(r.stages[1].name, "time");
  EXPECT_EQ(std::get<RunStep>(r.stages[1].steps[0].spec).command, "ntp b.example UTC");
  EXPECT_EQ(r.stages[2].name, "dcos");
  ASSERT_EQ(r.chain.size(), 2u);
  EXPECT_EQ(fs::path(r.chain[1]).filename(), "base.yaml");
  EXPECT_EQ(r.tree.find("extends"), nullptr);
}

// A variable declared without a value must be given (--set, or a child recipe's vars):
// every use reports it at its place, an unused one at its declaration, and the value that
// could not be resolved adds no second error at the same place.
TEST(Recipe, VariableWithoutValueIsRequired)
{
  ScratchDir dir;
  write_text(dir / "base.yaml", minimal("vars:\n  ntp:\n  zone: null\n  spare: ~\n"
                                        "stages:\n  - name: time\n    steps:\n"
                                        "      - file: {path: '/etc/${zone}', content: x}\n"
                                        "      - run: 'ntp ${ntp}'\n"));
  auto errors = errors_of(dir / "base.yaml");
  // Three, not also "path must be an absolute path" for '/etc/${zone}': only the cause.
  ASSERT_EQ(errors.size(), 3u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "8:3: variable 'spare' is required: give it with --set spare=VALUE");
  EXPECT_EQ(errors[1].rfind("12:22: variable 'zone' is required: give it with --set zone=VALUE (declared without "
                            "a value at ",
                            0),
            0u)
    << errors[1];
  EXPECT_NE(errors[1].find("base.yaml:7:3)"), std::string::npos) << errors[1];
  EXPECT_EQ(errors[2].rfind("13:14: variable 'ntp' is required", 0), 0u) << errors[2];

  LoadOptions set;
  set.set = {{"ntp", "a.example"}, {"zone", "UTC"}, {"spare", ""}};
  Recipe r = load_recipe(dir / "base.yaml", set);
  EXPECT_EQ(std::get<RunStep>(r.stages[0].steps[1].spec).command, "ntp a.example");
  EXPECT_EQ(r.vars.at("spare"), "");
  // A child's vars give the values too.
  write_text(dir / "child.yaml", "extends: base.yaml\nvars: {ntp: b.example, zone: UTC, spare: s}\n");
  EXPECT_EQ(std::get<RunStep>(load_recipe(dir / "child.yaml").stages[0].steps[1].spec).command, "ntp b.example");
}

// edit's each: one line per item of a list (or of a comma-separated string), resolved at
// load time so plan shows the lines.
TEST(Recipe, EditEachExpandsOneLinePerItem)
{
  ScratchDir dir;
  write_text(
    dir / "r.yaml",
    minimal("vars: {servers: ' a.example ,b.example'}\n"
            "stages:\n  - name: t\n    steps:\n"
            "      - edit: {path: /etc/c, match: '^server ', each: '${servers}', line: 'server {} iburst # {}'}\n"
            "      - edit: {path: /etc/d, each: [x, y], line: 'allow {}'}\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  const auto& c = std::get<EditStep>(r.stages[0].steps[0].spec);
  EXPECT_EQ(c.lines,
            (std::vector<std::string>{"server a.example iburst # a.example", "server b.example iburst # b.example"}));
  EXPECT_EQ(std::get<EditStep>(r.stages[0].steps[1].spec).lines, (std::vector<std::string>{"allow x", "allow y"}));
  nlohmann::json step = to_json(r.stages[0].steps[0]);
  EXPECT_EQ(step["edit"]["lines"][1], "server b.example iburst # b.example");

  write_text(dir / "r.yaml", minimal("stages:\n  - name: t\n    steps:\n"
                                     "      - edit: {path: /etc/c, each: 'a,,b', line: 'server {}'}\n"
                                     "      - edit: {path: /etc/c, each: 'a', line: 'server'}\n"
                                     "      - edit: {path: /etc/c, each: [], line: 'server {}'}\n"
                                     "      - edit: {path: /etc/c, each: 'a b', line: 'server {}'}\n"));
  auto errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 4u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "8:36: each: item '' of 'a,,b' must be one word (no spaces, not empty)");
  EXPECT_EQ(errors[1], "9:36: 'edit' step: each needs a line with {} where each item goes");
  EXPECT_EQ(errors[2], "10:36: each: the list is empty (give at least one item)");
  EXPECT_EQ(errors[3], "11:36: each: item 'a b' of 'a b' must be one word (no spaces, not empty)");
}

TEST(Recipe, ExtendsCycleNamesTheChain)
{
  ScratchDir dir;
  write_text(dir / "a.yaml", "extends: b.yaml\nname: a\n");
  write_text(dir / "b.yaml", "extends: a.yaml\nname: b\n");
  auto errs = errors_of(dir / "a.yaml");
  ASSERT_EQ(errs.size(), 1u);
  fs::path a = fs::canonical(dir / "a.yaml"), b = fs::canonical(dir / "b.yaml");
  EXPECT_EQ(errs[0], "1:10: extends cycle: " + a.string() + " -> " + b.string() + " -> " + a.string());
}

TEST(Recipe, ExtendsMissingParent)
{
  ScratchDir dir;
  write_text(dir / "a.yaml", "extends: gone.yaml\nname: a\n");
  auto errs = errors_of(dir / "a.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("1:10: cannot read recipe '"), std::string::npos);
  EXPECT_NE(errs[0].find("gone.yaml': no such file"), std::string::npos);
}

TEST(Recipe, ErrorsInAParentPointIntoTheParent)
{
  ScratchDir dir;
  write_text(dir / "base.yaml", minimal("colour: blue\n"));
  write_text(dir / "child.yaml", "extends: base.yaml\nname: child\n");
  try {
    load_recipe(dir / "child.yaml");
    FAIL();
  } catch (const RecipeError& e) {
    ASSERT_EQ(e.items().size(), 1u);
    EXPECT_EQ(fs::path(e.items()[0].location.file).filename(), "base.yaml");
    EXPECT_EQ(e.items()[0].location.line, 5);
  }
}

TEST(Recipe, VariablesSetOverridesAndEscapes)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("vars:\n  host: a\n  url: 'http://${host}:8080'\n"
                                     "stages:\n  - name: s\n    steps:\n"
                                     "      - run: 'curl ${url} $${HOME}'\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  EXPECT_EQ(std::get<RunStep>(r.stages[0].steps[0].spec).command, "curl http://a:8080 ${HOME}");
  LoadOptions options;
  options.set["host"] = "b";
  options.set["extra"] = "1";
  r = load_recipe(dir / "r.yaml", options);
  EXPECT_EQ(std::get<RunStep>(r.stages[0].steps[0].spec).command, "curl http://b:8080 ${HOME}");
  EXPECT_EQ(r.vars.at("url"), "http://b:8080");
  EXPECT_EQ(r.tree.find("vars")->find("extra")->scalar, "1");
}

TEST(Recipe, UndefinedVariableIsAnErrorAtItsUse)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("stages:\n  - name: s\n    steps:\n      - run: 'echo ${missing}'\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "8:14: undefined variable 'missing' (define it under vars: or with --set missing=...)");
}

TEST(Recipe, VariableCycle)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("vars:\n  a: '${b}'\n  b: '${a}'\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_FALSE(errs.empty());
  EXPECT_NE(errs[0].find("variable cycle: a -> b -> a"), std::string::npos);
}

TEST(Recipe, AssignmentParsing)
{
  EXPECT_EQ(parse_assignment("a=b=c"), std::make_pair(std::string("a"), std::string("b=c")));
  EXPECT_EQ(parse_assignment("x="), std::make_pair(std::string("x"), std::string()));
  EXPECT_THROW(parse_assignment("novalue"), kiln::UsageError);
  EXPECT_THROW(parse_assignment("1a=b"), kiln::UsageError);
}

TEST(Recipe, Sizes)
{
  EXPECT_EQ(parse_size("4G"), 4ull << 30);
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("10 k"), 10ull << 10);
  EXPECT_EQ(parse_size("1048576"), 1048576ull);
  EXPECT_EQ(parse_size("4X"), std::nullopt);
  EXPECT_EQ(parse_size("-1G"), std::nullopt);
  EXPECT_EQ(parse_size("99999999999999999999T"), std::nullopt);
}

TEST(Recipe, StepsAndLocalInputs)
{
  ScratchDir dir;
  write_text(dir / "files/motd", "hello\n");
  write_text(dir / "overlays/node/etc/x.conf", "x\n");
  write_text(dir / "recipes/r.yaml",
             minimal("stages:\n  - name: s\n    steps:\n"
                     "      - file: {path: /etc/motd, src: ../files/motd, mode: '0600'}\n"
                     "      - overlay: node\n"
                     "      - unit: {name: kiln-x.service, content: '[Unit]'}\n"
                     "      - systemd: {enable: docker.service, mask: [firewalld.service]}\n"
                     "      - user: {name: core, uid: 1000, groups: [wheel]}\n"
                     "      - firstboot: {name: dcos, script: 'echo hi', after: [docker.service]}\n"
                     "      - delete: [/etc/ssh/ssh_host_rsa_key]\n"
                     "      - edit: {path: /etc/selinux/config, set: {SELINUX: permissive}}\n"));
  Recipe r = load_recipe(dir / "recipes/r.yaml");
  const auto& steps = r.stages.at(0).steps;
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(std::get<FileStep>(steps[0].spec).source, (dir / "files/motd").string());
  EXPECT_EQ(std::get<FileStep>(steps[0].spec).mode, 0600u);
  EXPECT_EQ(std::get<OverlayStep>(steps[1].spec).source, (dir / "overlays/node").string());
  EXPECT_EQ(std::get<SystemdStep>(steps[3].spec).enable, std::vector<std::string>{"docker.service"});
  EXPECT_EQ(std::get<UserStep>(steps[4].spec).uid, 1000u);
  EXPECT_EQ(std::get<FirstbootStep>(steps[5].spec).after, std::vector<std::string>{"docker.service"});
  EXPECT_EQ(std::get<EditStep>(steps[7].spec).set.at("SELINUX"), "permissive");
}

TEST(Recipe, MissingLocalInputsAreErrors)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("stages:\n  - name: s\n    steps:\n"
                                     "      - file: {path: /etc/motd, src: nowhere}\n"
                                     "      - overlay: absent\n"
                                     "      - systemd: {enable: [docker]}\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 3u);
  EXPECT_NE(errs[0].find("8:38: src: no such file"), std::string::npos) << errs[0];
  EXPECT_NE(errs[1].find("9:18: overlay 'absent' not found"), std::string::npos) << errs[1];
  EXPECT_NE(errs[2].find("'docker' is not a systemd unit name"), std::string::npos) << errs[2];
}

class PlanKeys : public ::testing::Test {
protected:
  ScratchDir dir;
  void write(const std::string& first_run, const std::string& last_file)
  {
    write_text(dir / "in.txt", last_file);
    write_text(dir / "r.yaml", minimal("stages:\n"
                                       "  - name: one\n    steps: [{run: '" +
                                       first_run +
                                       "'}]\n"
                                       "  - name: two\n    steps: [{file: {path: /x, src: in.txt}}]\n"));
  }
  std::vector<std::string> keys()
  {
    Plan p = make_plan(load_recipe(dir / "r.yaml"));
    std::vector<std::string> out{p.base_key};
    for (const auto& s : p.stages) {
      out.push_back(s.key);
    }
    return out;
  }
};

TEST_F(PlanKeys, StableAndChainedThroughParents)
{
  write("a", "x");
  auto k1 = keys();
  ASSERT_EQ(k1.size(), 3u);
  EXPECT_EQ(keys(), k1);
  write("a", "y"); // an input file of the last stage changed
  auto k2 = keys();
  EXPECT_EQ(k2[0], k1[0]);
  EXPECT_EQ(k2[1], k1[1]);
  EXPECT_NE(k2[2], k1[2]);
  write("b", "x"); // the first stage changed: every later key changes too
  auto k3 = keys();
  EXPECT_EQ(k3[0], k1[0]);
  EXPECT_NE(k3[1], k1[1]);
  EXPECT_NE(k3[2], k1[2]);
}

TEST_F(PlanKeys, SourceDateEpochIsPartOfEveryKeyWhenSet)
{
  write("a", "x");
  auto unset = keys();
  auto with = [&](std::int64_t epoch) {
    PlanOptions options;
    options.source_date_epoch = epoch;
    return make_plan(load_recipe(dir / "r.yaml"), options);
  };
  Plan p1 = with(1700000000);
  EXPECT_NE(p1.base_key, unset[0]); // a bootstrapped base follows it, and so every stage
  EXPECT_NE(p1.stages.back().key, unset.back());
  EXPECT_EQ(with(1700000000).base_key, p1.base_key);
  EXPECT_NE(with(1700000001).base_key, p1.base_key);
}

TEST_F(PlanKeys, FormattingAndLocationDoNotMatter)
{
  write("a", "x");
  auto k1 = keys();
  write_text(dir / "r.yaml",
             minimal("# a comment\nstages:\n"
                     "  - {name: one, steps: [{run: a}]}\n"
                     "  - name: two\n    steps:\n      - file:\n          src: in.txt\n          path: /x\n"));
  EXPECT_EQ(keys(), k1);
  fs::rename(dir.path() / "r.yaml", dir.path() / "moved.yaml");
  fs::create_directories(dir / "elsewhere");
  fs::rename(dir / "moved.yaml", dir / "elsewhere/r.yaml");
  fs::rename(dir / "in.txt", dir / "elsewhere/in.txt");
  Plan p = make_plan(load_recipe(dir / "elsewhere/r.yaml"));
  EXPECT_EQ(p.stages.back().key, k1.back());
}

TEST(Plan, JsonHasInputsAndStages)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("stages:\n  - name: s\n    steps: [{run: x}]\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  auto j = plan_json(r, make_plan(r));
  EXPECT_EQ(j["name"], "demo");
  EXPECT_EQ(j["inputs"][0]["kind"], "base");
  EXPECT_EQ(j["inputs"][0]["sha256"], k_digest);
  EXPECT_EQ(j["stages"][0]["name"], "s");
  EXPECT_EQ(j["stages"][0]["key"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["recipe"]["stages"][0]["steps"][0]["run"], "x");
}

// Issue 14: the bounds of a recipe. A 450-byte alias bomb (9^9 nodes once expanded) and a
// 30-level ${v}${v} chain (8 GiB) each stop at their budget with FILE:LINE:COL.
TEST(Recipe, AliasBombStopsAtTheNodeBudget)
{
  ScratchDir dir;
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    bomb += std::string(1, c) + ": &" + c + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev +
            ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n";
  }
  ASSERT_LT(bomb.size(), 500u);
  write_text(dir / "r.yaml", minimal("vars:\n" + [&] {
               std::string indented;
               for (const auto& line : test::lines(bomb)) {
                 indented += "  " + line + "\n";
               }
               return indented;
             }()));
  try {
    load_recipe(dir / "r.yaml");
    FAIL() << "the alias bomb loaded";
  } catch (const RecipeError& e) {
    ASSERT_FALSE(e.items().empty());
    const auto& d = e.items()[0];
    EXPECT_EQ(d.location.file, (dir / "r.yaml").string());
    EXPECT_GT(d.location.line, 5);
    EXPECT_GT(d.location.column, 0);
    EXPECT_NE(d.message.find("more than 100000 nodes (aliases included)"), std::string::npos) << d.message;
  }
}

TEST(Recipe, DoublingVariableChainStopsAtTheSubstitutionBudget)
{
  ScratchDir dir;
  std::string vars = "vars:\n  v0: xxxxxxxx\n";
  for (int i = 1; i <= 30; ++i) {
    vars += "  v" + std::to_string(i) + ": ${v" + std::to_string(i - 1) + "}${v" + std::to_string(i - 1) + "}\n";
  }
  write_text(dir / "r.yaml", minimal(vars + "description: ${v30}\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u) << ::testing::PrintToString(errs);
  // v14 is the first past 64 KiB (8 * 2^14 bytes): its line (the vars start on line 5).
  EXPECT_EQ(errs[0], "20:8: expands to more than 65536 bytes");
}

TEST(Recipe, ManyReferencesToALargeVariableStopAtTheTotalBudget)
{
  ScratchDir dir;
  std::string text = minimal("vars:\n  big: " + std::string(60000, 'x') + "\nfiles:\n");
  for (int i = 0; i < 300; ++i) {
    text += "  - {path: /f" + std::to_string(i) + ", content: \"${big}\"}\n";
  }
  write_text(dir / "r.yaml", text);
  std::string errs = ::testing::PrintToString(errors_of(dir / "r.yaml"));
  EXPECT_NE(errs.find("substituted strings exceed 16777216 bytes in all"), std::string::npos) << errs;
}

// extends: of a file that is not a recipe (a shadow file, a config with spaces in its
// values): the errors quote at most the offending token, never its lines.
TEST(Recipe, ExtendsOfAForeignFileQuotesAtMostTheToken)
{
  ScratchDir dir;
  write_text(dir / "shadow", "root:$6$saltsalt$SECRETHASH0123:19000:0:99999:7:::\n"
                             "daemon:*:19000:0:99999:7:::SECRETLINE2\n");
  write_text(dir / "config", "name: first-token SECRETWORD and more\n"
                             "layout: plainish SECRETLAYOUT words\n"
                             "sysprep: maybe SECRETBOOL\n"
                             "description: \"${unterminated SECRETVAR\"\n");
  for (const char* foreign : {"shadow", "config"}) {
    write_text(dir / "r.yaml", std::string("extends: ") + foreign +
                                 "\nbase:\n  url: https://example.invalid/b.qcow2\n"
                                 "  sha256: " +
                                 k_digest + "\n");
    auto errs = errors_of(dir / "r.yaml");
    ASSERT_FALSE(errs.empty()) << foreign;
    for (const auto& e : errs) {
      for (const char* secret : {"SECRETHASH", "saltsalt", "$6$", "19000", "SECRETLINE2", "SECRETWORD", "SECRETLAYOUT",
                                 "SECRETBOOL", "SECRETVAR"}) {
        EXPECT_EQ(e.find(secret), std::string::npos) << foreign << ": " << e;
      }
      EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
  }
  // The offending token itself is quoted (shortened), so the error still says what is wrong.
  auto errs = errors_of(dir / "r.yaml");
  EXPECT_NE(::testing::PrintToString(errs).find("'first-token...'"), std::string::npos)
    << ::testing::PrintToString(errs);
}

// version: the image's monotonic version for kiln-node's anti-rollback (manifest "version").
TEST(Recipe, VersionIsAWholeNumber)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("version: 42\n"));
  EXPECT_EQ(load_recipe(dir / "r.yaml").version, 42u);
  write_text(dir / "r.yaml", minimal());
  EXPECT_EQ(load_recipe(dir / "r.yaml").version, 0u);
  write_text(dir / "r.yaml", minimal("version: 1.2\n"));
  EXPECT_EQ(errors_of(dir / "r.yaml"),
            std::vector<std::string>{"5:10: version must be a whole number from 0 to 4294967294, not '1.2'"});
}

// The image name (outputs.name, else name) becomes the manifest's: refused at load time
// when it is longer than 64 characters, not after the build.
TEST(Recipe, ImageNameLongerThan64IsRefused)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("outputs: {name: " + std::string(65, 'n') + "}\n"));
  auto errs = errors_of(dir / "r.yaml");
  ASSERT_EQ(errs.size(), 1u) << ::testing::PrintToString(errs);
  EXPECT_EQ(errs[0],
            "5:17: the image name must be 1-64 characters of A-Z a-z 0-9 . _ - (not '.' or '..'): 65 characters");
}

// The step table is the one list of step kinds: step_kinds() is its names and every
// StepSpec alternative has exactly one entry.
TEST(StepTable, KindsComeFromTheTableAndCoverEveryAlternative)
{
  const auto& table = step_table();
  ASSERT_EQ(table.size(), std::variant_size_v<StepSpec>);
  std::vector<std::string> names;
  std::set<std::size_t> indices;
  for (const auto& kind : table) {
    names.push_back(kind.name);
    indices.insert(kind.index);
    EXPECT_EQ(find_step_kind(kind.name), &kind);
  }
  EXPECT_EQ(names, step_kinds());
  EXPECT_EQ(indices.size(), table.size());
  EXPECT_EQ(find_step_kind("nope"), nullptr);
}

// Each entry reads a minimal body into its own alternative, and plan describes it.
TEST(StepTable, EveryKindParsesAMinimalBody)
{
  ScratchDir dir;
  write_text(dir / "overlays/o/etc/x", "x\n");
  const std::map<std::string, std::string> bodies = {{"file", "{path: /etc/x, content: x}"},
                                                     {"overlay", "o"},
                                                     {"edit", "{path: /etc/x, set: {A: b}}"},
                                                     {"delete", "/etc/x"},
                                                     {"unit", "{name: x.service, content: '[Unit]'}"},
                                                     {"systemd", "{enable: x.service}"},
                                                     {"group", "{name: g}"},
                                                     {"user", "{name: u}"},
                                                     {"selinux", "{mode: permissive}"},
                                                     {"packages", "{install: [x]}"},
                                                     {"run", "'true'"},
                                                     {"firstboot", "{name: f, script: 'true'}"}};
  std::string steps;
  for (const auto& kind : step_kinds()) {
    ASSERT_EQ(bodies.count(kind), 1u) << "no minimal body for the step kind " << kind;
    steps += "      - " + kind + ": " + bodies.at(kind) + "\n";
  }
  write_text(dir / "r.yaml", minimal("stages:\n  - name: s\n    steps:\n" + steps));
  Recipe r = load_recipe(dir / "r.yaml");
  const auto& parsed = r.stages.at(0).steps;
  ASSERT_EQ(parsed.size(), step_table().size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    const StepKind& kind = step_table()[i];
    EXPECT_EQ(parsed[i].kind, kind.name);
    EXPECT_EQ(parsed[i].spec.index(), kind.index) << kind.name;
    EXPECT_EQ(&step_kind_of(parsed[i].spec), &kind);
    nlohmann::json j = to_json(parsed[i]);
    EXPECT_TRUE(j.contains(kind.name) && j[kind.name].is_object()) << j.dump();
  }
  // The overlay is the one local input here: a tree, of kind overlay.
  Plan plan = make_plan(r);
  ASSERT_EQ(plan.inputs.size(), 2u);
  EXPECT_EQ(plan.inputs[1].kind, "overlay");
  EXPECT_EQ(plan.inputs[1].source, (dir / "overlays/o").string());
}

} // namespace
} // namespace kiln::recipe
