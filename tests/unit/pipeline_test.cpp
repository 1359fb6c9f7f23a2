// The build pipeline's logic without an appliance: every stage key in the plan and its
// resolution (core/recipe/plan), the stages the engine runs in order (image/pipeline/
// stage), finalize's inventory and kernel through the in-memory guest
// (image/pipeline/finalize), and the one manifest base shared by outputs and bundle
// (image/pipeline/publish), and the bootstrap base's mmdebstrap run through a fake
// process runner (image/pipeline/base). tests/guestfs/build_test.cpp builds real images.
#include "core/recipe/loader.hpp"
#include "core/recipe/plan.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/fetch/cache.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/pipeline/base.hpp"
#include "image/pipeline/finalize.hpp"
#include "image/pipeline/options.hpp"
#include "image/pipeline/publish.hpp"
#include "image/pipeline/stage.hpp"
#include "support/fake_editor.hpp"
#include "support/fake_runner.hpp"
#include "support/node_artifact.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;
using test::write_text;

const std::string k_head =
  "name: demo\nbase:\n  url: https://example.invalid/base.qcow2\n  sha256: " + std::string(64, 'a') + "\n";

recipe::Plan
plan_of(const ScratchDir& dir, const std::string& yaml)
{
  write_text(dir / "r.yaml", k_head + yaml);
  recipe::PlanOptions options;
  options.node_artifact = test::make_node_artifact(dir / "artifact");
  return recipe::make_plan(recipe::load_recipe(dir / "r.yaml"), options);
}

std::vector<std::string>
names(const recipe::Plan& plan)
{
  std::vector<std::string> out;
  for (const auto* s : recipe::stages_in_order(plan)) {
    out.push_back(s->name);
  }
  return out;
}

TEST(PipelinePlan, EveryStageKeyIsInThePlanInBuildOrder)
{
  ScratchDir dir;
  recipe::Plan plan = plan_of(dir, "layout: ab\nstages: [{name: one, steps: [{run: 'true'}]}]\n");
  EXPECT_EQ(names(plan), (std::vector<std::string>{"one", "finalize", "ab"}));
  EXPECT_TRUE(plan.resolved());
  EXPECT_EQ(plan.finalize.key.size(), 64u);
  EXPECT_EQ(plan.ab->key, recipe::stage_key(plan.finalize.key, *plan.ab));
  // kiln plan --json shows them all, finalize before ab.
  json j = recipe::plan_json(recipe::load_recipe(dir / "r.yaml"), plan);
  ASSERT_EQ(j["stages"].size(), 3u);
  EXPECT_EQ(j["stages"][1]["name"], "finalize");
  EXPECT_EQ(j["stages"][1]["key"], plan.finalize.key);
  EXPECT_EQ(j["stages"][1]["steps"][0]["finalize"]["sysprep"], true);
  // sysprep is part of finalize's key, and of nothing before it.
  recipe::Plan no_sysprep = plan_of(dir, "layout: ab\nsysprep: false\nstages: [{name: one, steps: [{run: 'true'}]}]\n");
  EXPECT_EQ(no_sysprep.stages[0].key, plan.stages[0].key);
  EXPECT_NE(no_sysprep.finalize.key, plan.finalize.key);
  EXPECT_NE(no_sysprep.ab->key, plan.ab->key);
  // Resolving a plan with nothing remote changes nothing.
  recipe::Plan same = recipe::resolve_plan(plan, {});
  EXPECT_EQ(names(same), names(plan));
  EXPECT_EQ(same.ab->key, plan.ab->key);
}

TEST(PipelinePlan, ABundleByUrlLeavesTheKeysFromDcosOnToTheBuild)
{
  ScratchDir dir;
  recipe::Plan planned = plan_of(dir, "layout: ab\nab: {data_size: 20G}\ndcos: {bundle: 'http://127.0.0.1:9/serve', "
                                      "role: master}\nstages: [{name: one, steps: [{run: 'true'}]}]\n");
  EXPECT_EQ(names(planned), (std::vector<std::string>{"one", "dcos", "finalize", "ab"}));
  EXPECT_FALSE(planned.resolved());
  EXPECT_EQ(planned.stages[0].key.size(), 64u);
  EXPECT_EQ(planned.stages[1].key, "");
  EXPECT_EQ(planned.finalize.key, "");
  EXPECT_EQ(planned.ab->key, "");
  // A build refuses to run stages of an unresolved plan.
  Error refused = test::error_of([&] { build::appliance_stages(recipe::load_recipe(dir / "r.yaml"), planned); });
  EXPECT_NE(std::string(refused.what()).find("unresolved"), std::string::npos) << refused.what();
  // ... and resolving without the bundle's digest is an error, not a plan with holes.
  EXPECT_THROW(recipe::resolve_plan(planned, {}), Error);

  const std::string digest(64, 'b');
  recipe::Plan plan = recipe::resolve_plan(planned, {digest});
  EXPECT_TRUE(plan.resolved());
  EXPECT_EQ(plan.stages[0].key, planned.stages[0].key);
  EXPECT_EQ(plan.stages[1].inputs.at(0).sha256, digest);
  EXPECT_EQ(plan.stages[1].key, recipe::stage_key(plan.stages[0].key, plan.stages[1]));
  EXPECT_EQ(plan.ab->key, recipe::stage_key(plan.finalize.key, *plan.ab));
  bool input_resolved = false;
  for (const auto& in : plan.inputs) {
    input_resolved = input_resolved || (in.kind == "dcos-bundle" && in.sha256 == digest);
  }
  EXPECT_TRUE(input_resolved);
  // Another bundle, other keys from dcos on; the recipe's own stage keeps its key.
  recipe::Plan other = recipe::resolve_plan(planned, {std::string(64, 'c')});
  EXPECT_EQ(other.stages[0].key, plan.stages[0].key);
  EXPECT_NE(other.stages[1].key, plan.stages[1].key);
  EXPECT_NE(other.finalize.key, plan.finalize.key);
  EXPECT_NE(other.ab->key, plan.ab->key);
  // The input plan is left as it was.
  EXPECT_EQ(planned.stages[1].key, "");
}

TEST(PipelineStages, TheEngineRunsTheRecipesStagesDcosAndFinalizeByTheirPlanKeys)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", k_head + "dcos: {bundle: 'http://127.0.0.1:9/serve', role: slave}\n"
                                      "stages:\n"
                                      "  - {name: one, steps: [{run: 'true'}]}\n"
                                      "  - {name: two, steps: [{packages: {install: [x], network: true}}]}\n");
  recipe::Recipe r = recipe::load_recipe(dir / "r.yaml");
  recipe::Plan plan = recipe::resolve_plan(recipe::make_plan(r), {std::string(64, 'b')});
  auto stages = build::appliance_stages(r, plan);
  ASSERT_EQ(stages.size(), 4u);
  EXPECT_EQ(stages[0]->name(), "one");
  EXPECT_EQ(stages[0]->key(), plan.stages[0].key);
  EXPECT_FALSE(stages[0]->needs_network());
  EXPECT_EQ(stages[1]->name(), "two");
  EXPECT_TRUE(stages[1]->needs_network()); // a packages step with network: true
  EXPECT_EQ(stages[2]->name(), "dcos");
  EXPECT_EQ(stages[2]->key(), plan.stages[2].key);
  EXPECT_EQ(stages[3]->name(), "finalize");
  EXPECT_EQ(stages[3]->key(), plan.finalize.key);
}

steps::GuestInfo
guest(const std::string& format)
{
  return {"/dev/sda1",         format == "rpm" ? "centos" : "debian", format, format == "rpm" ? "yum" : "apt", 7,
          {{"/", "/dev/sda1"}}};
}

TEST(PipelineFinalize, TheInventoryReadsThePackageDatabaseSortedByName)
{
  test::FakeEditor g;
  g.on_sh = [](const std::string& script, test::FakeEditor&) {
    EXPECT_NE(script.find("rpm -qa"), std::string::npos) << script;
    return edit::CommandResult{0,
                               "zlib\t1.2.7-18.el7\tx86_64\nbash\t4.2.46-34.el7\tx86_64\nbroken line\n"
                               "docker-ce\t3:19.03.5-3.el7\tx86_64\n",
                               ""};
  };
  auto packages = build::package_inventory(g, guest("rpm"));
  ASSERT_EQ(packages.size(), 3u);
  EXPECT_EQ(packages[0].name, "bash");
  EXPECT_EQ(packages[1].name, "docker-ce");
  EXPECT_EQ(packages[1].version, "3:19.03.5-3.el7");
  EXPECT_EQ(packages[2].name, "zlib");
  EXPECT_EQ(packages[2].arch, "x86_64");

  g.on_sh = [](const std::string& script, test::FakeEditor&) {
    EXPECT_NE(script.find("dpkg-query"), std::string::npos) << script;
    return edit::CommandResult{1, "", "dpkg-query: no packages found"};
  };
  Error e = test::error_of([&] { build::package_inventory(g, guest("deb")); });
  EXPECT_EQ(std::string(e.what()), "package inventory: cannot read the deb database: dpkg-query: no packages found");
}

TEST(PipelineFinalize, TheNewestKernelAndItsInitramfsGoBesideTheLayer)
{
  ScratchDir dir;
  build::LayerStore layers(dir.path());
  test::FakeEditor el7;
  el7.add_file("/boot/vmlinuz-3.10.0-1160.el7.x86_64", "old kernel");
  el7.add_file("/boot/initramfs-3.10.0-1160.el7.x86_64.img", "old initramfs");
  el7.add_file("/boot/vmlinuz-3.10.0-1160.83.1.el7.x86_64", "new kernel");
  el7.add_file("/boot/initramfs-3.10.0-1160.83.1.el7.x86_64.img", "new initramfs");
  el7.add_file("/boot/vmlinuz-0-rescue-0123456789abcdef", "rescue kernel");
  el7.add_file("/boot/initramfs-0-rescue-0123456789abcdef.img", "rescue initramfs");
  auto k = build::extract_kernel(el7, layers, "key1");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->version, "3.10.0-1160.83.1.el7.x86_64");
  EXPECT_EQ(k->kernel, dir / "key1.kernel");
  EXPECT_EQ(util::read_file(k->kernel), "new kernel");
  EXPECT_EQ(util::read_file(k->initramfs), "new initramfs");

  test::FakeEditor debian; // Debian names its initramfs initrd.img-V
  debian.add_file("/boot/vmlinuz-6.1.0-18-amd64", "kernel");
  debian.add_file("/boot/initrd.img-6.1.0-18-amd64", "initrd");
  auto d = build::extract_kernel(debian, layers, "key2");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(util::read_file(d->initramfs), "initrd");

  test::FakeEditor no_initrd; // a kernel without its initramfs cannot boot over PXE
  no_initrd.add_file("/boot/vmlinuz-6.1.0-18-amd64", "kernel");
  EXPECT_FALSE(build::extract_kernel(no_initrd, layers, "key3").has_value());
  EXPECT_FALSE(fs::exists(dir / "key3.kernel"));
  test::FakeEditor none;
  none.add_dir("/boot");
  EXPECT_FALSE(build::extract_kernel(none, layers, "key4").has_value());
}

TEST(PipelinePublish, TheManifestBaseNamesEveryStageKeyOfTheResolvedPlan)
{
  ScratchDir dir;
  recipe::Plan plan = plan_of(dir, "layout: ab\nstages: [{name: one, steps: [{run: 'true'}]}]\n");
  recipe::Recipe r = recipe::load_recipe(dir / "r.yaml");
  manifest::Manifest m = build::manifest_base(r, plan, {{"bash", "5.2", "amd64"}}, "demo");
  ASSERT_EQ(m.stages.size(), 3u);
  EXPECT_EQ(m.stages[0].name, "one");
  EXPECT_EQ(m.stages[0].key, plan.stages[0].key);
  EXPECT_EQ(m.stages[1].name, "finalize");
  EXPECT_EQ(m.stages[1].key, plan.finalize.key);
  EXPECT_EQ(m.stages[2].name, "ab");
  EXPECT_EQ(m.stages[2].key, plan.ab->key);
  EXPECT_EQ(m.recipe_digest, plan.recipe_digest);
  ASSERT_EQ(m.packages.size(), 1u);
  EXPECT_EQ(m.inputs.back().kind, "kiln-node"); // by its VERSION line
  EXPECT_EQ(m.inputs.back().source.rfind("kiln-node ", 0), 0u);
}

// Every event as the line a test can compare.
class RecordingEvents final : public build::BuildEvents {
public:
  explicit RecordingEvents(bool verbose = false) : m_verbose(verbose) {}
  void stage(const build::StageEvent& e) override
  {
    lines.push_back("stage " + e.name + " " + e.key.substr(0, 4) + " " +
                    (e.state == build::StageState::cached ? "cached" : "running: " + e.detail));
  }
  void note(const std::string& line) override { lines.push_back("note " + line); }
  void warning(const std::string& line) override { lines.push_back("warning " + line); }
  void log(const std::string& line) override { lines.push_back("log " + line); }
  bool verbose() const override { return m_verbose; }
  void progress(std::uint64_t done, std::uint64_t total) override
  {
    lines.push_back("progress " + std::to_string(done) + "/" + std::to_string(total));
  }
  std::vector<std::string> lines;

private:
  bool m_verbose;
};

TEST(PipelineEvents, EachKindOfEventReachesItsMethodAndTheLogOnlyWhenVerbose)
{
  build::BuildOptions none; // no events: everything dropped, nothing crashes
  build::say(none, "dropped");
  build::notice_sink(none)("dropped");
  EXPECT_FALSE(build::log_sink(none));

  RecordingEvents quiet;
  build::BuildOptions options;
  options.events = &quiet;
  build::say(options, "base: cached");
  build::notice_sink(options)("libguestfs: warning");
  build::progress_sink(options)(5, 10);
  EXPECT_FALSE(build::log_sink(options)); // nobody formats log lines no one reads
  gfs::HandleOptions h = build::handle_options(options, true);
  EXPECT_TRUE(h.network);
  EXPECT_FALSE(h.log);
  h.notice("KVM hung: software emulation");
  EXPECT_EQ(quiet.lines, (std::vector<std::string>{"note base: cached", "warning libguestfs: warning", "progress 5/10",
                                                   "warning KVM hung: software emulation"}));

  RecordingEvents verbose(true);
  options.events = &verbose;
  ASSERT_TRUE(build::log_sink(options));
  build::handle_options(options, false).log("appliance line");
  EXPECT_EQ(verbose.lines, (std::vector<std::string>{"log appliance line"}));
}

TEST(PipelineStages, ARecipeStageRunsItsStepsOnTheEditorAndSaysSo)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", k_head + "stages:\n  - name: one\n    steps:\n"
                                      "      - file: {path: /etc/kiln/hello, content: hi}\n"
                                      "      - run: 'echo ran'\n");
  recipe::Recipe r = recipe::load_recipe(dir / "r.yaml");
  recipe::Plan plan = recipe::make_plan(r);
  auto stages = build::appliance_stages(r, plan);
  ASSERT_EQ(stages.size(), 2u);

  test::FakeEditor g;
  g.add_file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  g.add_file("/etc/group", "root:x:0:\n");
  steps::GuestInfo info = guest("deb");
  steps::StepContext ctx{g, info, false, {}, {}};
  gfs::Handle handle; // created, never launched: a recipe stage works through the editor alone
  RecordingEvents events;
  build::BuildOptions options;
  options.events = &events;
  build::LayerStore layers(dir / "layers");
  build::StageRun run{handle, ctx, r, layers, options, dir.path()};
  build::LayerMeta meta = stages[0]->run(run);
  EXPECT_TRUE(meta.packages.empty()); // a recipe stage records nothing of its own
  EXPECT_EQ(g.read_file("/etc/kiln/hello"), "hi");
  ASSERT_EQ(g.scripts.size(), 1u);
  EXPECT_NE(g.scripts[0].find("echo ran"), std::string::npos) << g.scripts[0];
  ASSERT_EQ(events.lines.size(), 3u) << testing::PrintToString(events.lines);
  EXPECT_EQ(events.lines[0], "stage one " + plan.stages[0].key.substr(0, 4) + " running: running 2 steps");
  EXPECT_EQ(events.lines[1].rfind("note   [1/2] file (", 0), 0u) << events.lines[1];
  EXPECT_EQ(events.lines[2].rfind("note   [2/2] run (", 0), 0u) << events.lines[2];
}

recipe::BaseImage
bootstrap_base()
{
  recipe::BaseImage base;
  base.kind = recipe::BaseImage::Kind::bootstrap;
  base.suite = "bookworm";
  base.variant = "minbase";
  base.packages = {"systemd-sysv", "linux-image-amd64"};
  base.mirror = "http://deb.debian.org/debian";
  return base;
}

TEST(PipelineBase, MmdebstrapWritesATarOfTheSuiteWithTheExtraPackagesAndTheMirrorLast)
{
  recipe::BaseImage base = bootstrap_base();
  EXPECT_EQ(build::mmdebstrap_argv(base, "/c/bootstrap/k.tar.tmp"),
            (std::vector<std::string>{"mmdebstrap", "--quiet", "--variant=minbase", "--format=tar",
                                      "--include=systemd-sysv,linux-image-amd64", "bookworm", "/c/bootstrap/k.tar.tmp",
                                      "http://deb.debian.org/debian"}));
  base.packages.clear();
  base.mirror.clear();
  EXPECT_EQ(build::mmdebstrap_argv(base, "/t"),
            (std::vector<std::string>{"mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", "bookworm", "/t"}));
}

TEST(PipelineBase, TheBootstrapTarIsMadeOnceIntoTheCacheAndAFailureLeavesNothing)
{
  ScratchDir dir;
  fetch::Cache cache(dir / "cache");
  test::FakeRunner runner;
  // The fake does what mmdebstrap does: the tar appears at the path after the suite.
  runner.answer = [](const test::FakeRunner::Call& call) {
    auto suite = std::find(call.argv.begin(), call.argv.end(), "bookworm");
    write_text(*(suite + 1), "rootfs tar");
    util::RunResult r;
    r.exit_code = 0;
    return r;
  };
  build::BuildOptions options;
  options.runner = &runner;
  const std::string key(64, 'b');
  fs::path tar = build::bootstrap_tar(bootstrap_base(), key, cache, options);
  EXPECT_EQ(tar, cache.area("bootstrap") / (key + ".tar"));
  EXPECT_EQ(test::read_text(tar), "rootfs tar");
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0].argv.front(), "mmdebstrap");
  // Made once: the next build of the same base key takes the cached tar.
  EXPECT_EQ(build::bootstrap_tar(bootstrap_base(), key, cache, options), tar);
  EXPECT_EQ(runner.calls.size(), 1u);

  // mmdebstrap that fails: its last lines name the suite, and no tar is left.
  runner.fail_with(1, "I: running apt-get update...\nE: apt-get update failed\n");
  const std::string other(64, 'c');
  Error e = test::error_of([&] { build::bootstrap_tar(bootstrap_base(), other, cache, options); });
  EXPECT_EQ(e.subject(), "mmdebstrap bookworm");
  EXPECT_TRUE(e.reason().starts_with("exit status 1: ")) << e.reason();
  EXPECT_NE(e.reason().find("E: apt-get update failed"), std::string::npos) << e.reason();
  EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  std::vector<fs::path> left;
  for (const auto& entry : fs::directory_iterator(cache.area("bootstrap"))) {
    left.push_back(entry.path());
  }
  EXPECT_EQ(left, std::vector<fs::path>{tar});
}

} // namespace
} // namespace kiln
