// The recipe keys of the A/B layout (`ab:`) and of the image's trust store (`trust:`):
// defaults, bounds, every error at its position, and the trust stage the plan keys.
#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/recipe/loader.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/recipe/plan.hpp"
#include "core/recipe/schema.hpp"
#include "core/util/error.hpp"
#include "support/node_artifact.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln::recipe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::ScratchDir;
using test::write_text;

std::string
minimal(const std::string& extra = "")
{
  return "name: demo\nbase:\n  url: https://example.invalid/base.qcow2\n  sha256: " + std::string(64, 'a') + "\n" +
         extra;
}

// The plan of an A/B recipe with a test kiln-node artifact in `dir` as kiln's own.
Plan
ab_plan(const Recipe& r, const fs::path& dir)
{
  PlanOptions options;
  options.node_artifact = test::make_node_artifact(dir / "own-artifact");
  return make_plan(r, options);
}

std::vector<std::string>
errors_of(const fs::path& path)
{
  try {
    load_recipe(path);
  } catch (const RecipeError& e) {
    std::vector<std::string> out;
    for (const auto& d : e.items()) {
      out.push_back(std::to_string(d.location.line) + ":" + std::to_string(d.location.column) + ": " + d.message);
    }
    return out;
  }
  ADD_FAILURE() << "recipe loaded without errors";
  return {};
}

TEST(RecipeAb, Defaults)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("layout: ab\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  EXPECT_EQ(r.layout, Layout::ab);
  EXPECT_EQ(r.ab.esp_size, 128ull << 20);
  EXPECT_EQ(r.ab.boot_size, 256ull << 20);
  EXPECT_EQ(r.ab.slot_size, 0u);
  EXPECT_EQ(r.ab.data_size, 0u);
  EXPECT_EQ(r.ab.root_fs, "xfs");
  EXPECT_EQ(r.ab.data_fs, "xfs");
  EXPECT_EQ(r.ab.tries, 3u);
  EXPECT_EQ(r.ab.panic, 10u);
  EXPECT_TRUE(r.ab.kernel_args.empty());
  EXPECT_TRUE(r.ab.grow_data);
  EXPECT_FALSE(r.trust.has_value());
  json j = plan_json(r, ab_plan(r, dir.path()));
  EXPECT_EQ(j["ab"]["tries"], 3);
  EXPECT_EQ(j["ab"]["grow_data"], true);
  EXPECT_EQ(j["stages"].back()["steps"][0]["ab"]["settings"]["grow_data"], true);
  EXPECT_EQ(j["ab"]["root_fs"], "xfs");
}

TEST(RecipeAb, EverySetting)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("layout: ab\n"
                                     "ab:\n"
                                     "  esp_size: 64M\n"
                                     "  boot_size: 128M\n"
                                     "  slot_size: 3G\n"
                                     "  data_size: 20G\n"
                                     "  root_fs: ext4\n"
                                     "  data_fs: ext4\n"
                                     "  tries: 9\n"
                                     "  panic: 30\n"
                                     "  kernel_args: [net.ifnames=0, 'kiln.dcos_role=master']\n"
                                     "  grow_data: false\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  EXPECT_FALSE(r.ab.grow_data);
  // grow_data is part of the A/B stage's key: the layout kiln-node installs differs.
  Plan fixed = ab_plan(r, dir.path());
  Recipe grown = r;
  grown.ab.grow_data = true;
  EXPECT_NE(fixed.ab->definition, ab_plan(grown, dir.path()).ab->definition);
  EXPECT_EQ(plan_json(r, fixed)["ab"]["grow_data"], false);
  EXPECT_EQ(r.ab.esp_size, 64ull << 20);
  EXPECT_EQ(r.ab.boot_size, 128ull << 20);
  EXPECT_EQ(r.ab.slot_size, 3ull << 30);
  EXPECT_EQ(r.ab.data_size, 20ull << 30);
  EXPECT_EQ(r.ab.root_fs, "ext4");
  EXPECT_EQ(r.ab.data_fs, "ext4");
  EXPECT_EQ(r.ab.tries, 9u);
  EXPECT_EQ(r.ab.panic, 30u);
  EXPECT_EQ(r.ab.kernel_args, (std::vector<std::string>{"net.ifnames=0", "kiln.dcos_role=master"}));
}

// ab: {grow_data: true|false}: kiln-grow-data.service or not; part of the A/B stage key.
TEST(RecipeAb, GrowDataDefaultsOnAndIsPartOfTheAbKey)
{
  ScratchDir dir;
  write_text(dir / "on.yaml", minimal("layout: ab\n"));
  write_text(dir / "off.yaml", minimal("layout: ab\nab: {grow_data: false}\n"));
  write_text(dir / "bad.yaml", minimal("layout: ab\nab: {grow_data: sometimes}\n"));
  Recipe on = load_recipe(dir / "on.yaml");
  Recipe off = load_recipe(dir / "off.yaml");
  EXPECT_TRUE(on.ab.grow_data);
  EXPECT_FALSE(off.ab.grow_data);
  PlanOptions options;
  options.node_artifact = test::make_node_artifact(dir / "artifact");
  Plan on_plan = make_plan(on, options);
  Plan off_plan = make_plan(off, options);
  EXPECT_EQ(on_plan.base_key, off_plan.base_key);
  EXPECT_NE(on_plan.ab->key, off_plan.ab->key);
  EXPECT_EQ(plan_json(on, on_plan)["ab"]["grow_data"], true);
  EXPECT_EQ(plan_json(off, off_plan)["ab"]["grow_data"], false);
  auto errors = errors_of(dir / "bad.yaml");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("grow_data must be true or false, not 'sometimes'"), std::string::npos) << errors[0];
}

TEST(RecipeAb, BadValuesAreReportedAtOnce)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("layout: ab\n"
                                     "ab:\n"
                                     "  esp_size: 8M\n" // line 7
                                     "  slot_size: 1500K\n"
                                     "  root_fs: btrfs\n"
                                     "  tries: 10\n"
                                     "  panic: 0\n"
                                     "  kernel_args: ['a b', root=/dev/sda1]\n"
                                     "  trys: 2\n"));
  auto errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 8u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "7:13: esp_size must be at least 32M (a FAT file system for the EFI loader)");
  EXPECT_EQ(errors[1], "8:14: slot_size must be at least 512M (a root file system)");
  EXPECT_EQ(errors[2].rfind("9:12: root_fs must be one of xfs, ext4, not 'btrfs'", 0), 0u) << errors[2];
  EXPECT_EQ(errors[3], "10:10: tries must be a whole number from 1 to 9, not '10'");
  EXPECT_EQ(errors[4], "11:10: panic must be a whole number from 1 to 3600, not '0'");
  EXPECT_EQ(errors[5], "12:16: kernel_args: 'a b' must be one word (no whitespace)");
  EXPECT_EQ(errors[6], "12:16: kernel_args: 'root=/dev/sda1' is set by kiln for each slot (root=PARTUUID=..., "
                       "kiln.slot=A|B)");
  EXPECT_EQ(errors[7], "13:3: unknown key 'trys' in ab (did you mean 'tries'?)");
}

// DC/OS agents want 20 GB free under /var: an agent's kiln-data that is never grown must
// start that big; masters, plain layouts and grown data are not concerned.
TEST(RecipeAb, AgentDataMustReach20GUnlessGrown)
{
  ScratchDir dir;
  fs::create_directories(dir / "serve");
  auto recipe = [&](const std::string& role, const std::string& ab) {
    write_text(dir / "r.yaml", minimal("layout: ab\ndcos: {bundle: serve, role: " + role + "}\n" + ab));
    return dir / "r.yaml";
  };
  for (const char* role : {"slave", "slave_public"}) {
    SCOPED_TRACE(role);
    auto errors = errors_of(recipe(role, "ab:\n  grow_data: false\n  data_size: 20479M\n"));
    ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
    EXPECT_EQ(errors[0], "9:14: ab: data_size 20479M with grow_data: false can never give the 20G DC/OS " +
                           std::string(role) +
                           " nodes need free under /var: give data_size: 20G or more, or grow_data: true");
    errors = errors_of(recipe(role, "ab: {grow_data: false}\n"));
    ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
    EXPECT_EQ(errors[0].rfind("7:5: ab: data_size 4G with grow_data: false", 0), 0u) << errors[0];
    EXPECT_NO_THROW(load_recipe(recipe(role, "ab: {grow_data: false, data_size: 20G}\n")));
    EXPECT_NO_THROW(load_recipe(recipe(role, "ab: {data_size: 1G}\n")));
    EXPECT_NO_THROW(load_recipe(recipe(role, "")));
  }
  EXPECT_NO_THROW(load_recipe(recipe("master", "ab: {grow_data: false, data_size: 1G}\n")));
  write_text(dir / "r.yaml", minimal("layout: ab\nab: {grow_data: maybe}\n"));
  auto errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "6:17: grow_data must be true or false, not 'maybe'");
}

TEST(RecipeAb, AbBlockNeedsTheAbLayoutAndWholeMiB)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("ab: {boot_size: 100000000}\n"));
  auto errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 2u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "5:5: ab: applies only with layout: ab");
  EXPECT_EQ(errors[1], "5:17: boot_size must be a whole number of MiB (partitions are MiB-aligned)");
}

TEST(RecipeTrust, KeysBecomeAKeyedTrustStage)
{
  ScratchDir dir;
  fs::create_directories(dir / "keys");
  fs::create_directories(dir / "keys2");
  crypto::generate_keypair(dir / "keys", "release");
  crypto::generate_keypair(dir / "keys", "backup");
  write_text(dir / "revoked.list", "# none yet\n");
  write_text(dir / "r.yaml", minimal("stages: [{name: os, steps: [{run: 'true'}]}]\n"
                                     "trust:\n"
                                     "  keys: [keys/release.pub, keys/backup.pub]\n"
                                     "  revoked: revoked.list\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  ASSERT_TRUE(r.trust.has_value());
  EXPECT_EQ(r.trust->keys.size(), 2u);
  EXPECT_EQ(r.trust->keys[0], (dir / "keys/release.pub").string());
  EXPECT_EQ(*r.trust->revoked, (dir / "revoked.list").string());
  ASSERT_EQ(r.stages.size(), 2u);
  EXPECT_EQ(r.stages[1].name, "trust");
  ASSERT_EQ(r.stages[1].steps.size(), 3u);
  const auto& first = std::get<FileStep>(r.stages[1].steps[0].spec);
  EXPECT_EQ(first.path, "/etc/kiln/trust.d/release.pem");
  EXPECT_EQ(first.mode, 0644u);
  EXPECT_EQ(std::get<FileStep>(r.stages[1].steps[1].spec).path, "/etc/kiln/trust.d/backup.pem");
  EXPECT_EQ(std::get<FileStep>(r.stages[1].steps[2].spec).path, "/etc/kiln/trust.d/revoked.list");

  // The keys are inputs of the trust stage: a new key changes its key, not the earlier stage's.
  Plan before = ab_plan(r, dir.path());
  crypto::generate_keypair(dir / "keys2", "release");
  fs::copy_file(dir / "keys2/release.pub", dir / "keys/release.pub", fs::copy_options::overwrite_existing);
  Plan after = ab_plan(load_recipe(dir / "r.yaml"), dir.path());
  EXPECT_EQ(before.stages[0].key, after.stages[0].key);
  EXPECT_NE(before.stages[1].key, after.stages[1].key);
  EXPECT_EQ(after.stages[1].inputs.size(), 3u);
}

TEST(RecipeTrust, BadKeysAndReservedStageName)
{
  ScratchDir dir;
  write_text(dir / "notakey.pem", "hello\n");
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  crypto::generate_keypair(dir / "a", "k");
  crypto::generate_keypair(dir / "b", "k");
  write_text(dir / "r.yaml", minimal("stages: [{name: trust, steps: [{run: 'true'}]}]\n"
                                     "trust:\n"
                                     "  keys: [notakey.pem, missing.pem, a/k.pub, b/k.pub]\n"));
  auto errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 4u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "5:10: stage name 'trust' is reserved for the trust: keys");
  EXPECT_EQ(errors[1].rfind("7:10: keys: " + (dir / "notakey.pem").string() + ": not a PEM public key", 0), 0u)
    << errors[1];
  EXPECT_EQ(errors[2], "7:23: keys: no such file '" + (dir / "missing.pem").string() + "'");
  EXPECT_EQ(errors[3], "7:45: keys: two keys would both be installed as k.pem");

  write_text(dir / "r2.yaml", minimal("trust: {revoked: x}\n"));
  errors = errors_of(dir / "r2.yaml");
  ASSERT_EQ(errors.size(), 2u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "5:8: trust: missing required field 'keys'");
}

TEST(RecipeAbNode, PlanShowsTheArtifactDigestInTheAbStage)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("layout: ab\nstages: [{name: one, steps: [{run: 'true'}]}]\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  Plan plan = ab_plan(r, dir.path());
  const std::string digest = crypto::sha256_tree(dir / "own-artifact");
  ASSERT_TRUE(plan.ab.has_value());
  ASSERT_EQ(plan.ab->inputs.size(), 1u);
  EXPECT_EQ(plan.ab->inputs[0].kind, "kiln-node");
  EXPECT_EQ(plan.ab->inputs[0].sha256, digest);
  EXPECT_EQ(plan.ab->inputs[0].version, "kiln-node 9.9.9 (kiln test)");
  EXPECT_EQ(plan.inputs.back().sha256, digest);
  EXPECT_EQ(plan.ab->key, stage_key(plan.finalize.key, *plan.ab)); // after finalize
  EXPECT_EQ(plan.ab->key.size(), 64u);
  json j = plan_json(r, plan);
  const json& ab = j["stages"].back();
  EXPECT_EQ(ab["name"], "ab");
  EXPECT_EQ(ab["key"], plan.ab->key);
  EXPECT_EQ(ab["inputs"][0]["sha256"], digest);
  EXPECT_EQ(ab["inputs"][0]["version"], "kiln-node 9.9.9 (kiln test)");
  EXPECT_EQ(j["inputs"].back()["kind"], "kiln-node");

  // A plain recipe has no A/B stage and needs no artifact.
  write_text(dir / "plain.yaml", minimal());
  Plan plain = make_plan(load_recipe(dir / "plain.yaml"));
  EXPECT_FALSE(plain.ab.has_value());
}

TEST(RecipeAbNode, ANewArtifactChangesOnlyTheAbKey)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("layout: ab\nstages: [{name: one, steps: [{run: 'true'}]}]\n"));
  Recipe r = load_recipe(dir / "r.yaml");
  PlanOptions options;
  options.node_artifact = test::make_node_artifact(dir / "a");
  Plan before = make_plan(r, options);
  Plan same = make_plan(r, options);
  EXPECT_EQ(before.ab->key, same.ab->key);
  // One byte of one library inside the tree.
  write_text(dir / "a/usr/lib/kiln/node/lib/libnode.so.1", "another build\n");
  Plan after = make_plan(r, options);
  EXPECT_EQ(before.base_key, after.base_key);
  ASSERT_EQ(after.stages.size(), 1u);
  EXPECT_EQ(before.stages[0].key, after.stages[0].key);
  EXPECT_EQ(before.finalize.key, after.finalize.key);
  EXPECT_NE(before.ab->key, after.ab->key);
  EXPECT_NE(before.ab->inputs[0].sha256, after.ab->inputs[0].sha256);

  // ab: {node: FILE}: a single executable, by its file digest.
  fs::copy_file(KILN_NODE_BIN, dir / "kiln-node-custom");
  write_text(dir / "r2.yaml", minimal("layout: ab\nstages: [{name: one, steps: [{run: 'true'}]}]\n"
                                      "ab: {node: kiln-node-custom}\n"));
  Recipe custom = load_recipe(dir / "r2.yaml");
  ASSERT_TRUE(custom.ab.node.has_value());
  EXPECT_EQ(*custom.ab.node, (dir / "kiln-node-custom").string());
  Plan file_plan = make_plan(custom, options); // ab.node wins over the own artifact
  EXPECT_EQ(file_plan.ab->inputs[0].source, (dir / "kiln-node-custom").string());
  EXPECT_EQ(file_plan.ab->inputs[0].sha256, crypto::sha256_file(dir / "kiln-node-custom"));
  EXPECT_EQ(file_plan.stages[0].key, after.stages[0].key);
  EXPECT_NE(file_plan.ab->key, after.ab->key);
  // ab: {node: DIR}: another tree.
  test::make_node_artifact(dir / "other", "kiln-node 1.0 (kiln other)");
  write_text(dir / "r3.yaml", minimal("layout: ab\nab: {node: other}\n"));
  Plan dir_plan = make_plan(load_recipe(dir / "r3.yaml"), options);
  EXPECT_EQ(dir_plan.ab->inputs[0].version, "kiln-node 1.0 (kiln other)");
}

TEST(RecipeAbNode, NodeErrorsAtTheirPosition)
{
  ScratchDir dir;
  fs::create_directories(dir / "empty");
  write_text(dir / "r.yaml", minimal("layout: ab\n"
                                     "ab:\n"
                                     "  node: absent\n")); // line 7
  auto errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "7:9: node: no kiln-node artifact '" + (dir / "absent").string() + "' (a directory or an executable)");
  write_text(dir / "r.yaml", minimal("layout: ab\nab:\n  node: empty\n"));
  errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "7:9: node: '" + (dir / "empty").string() + "' has no usr/bin/kiln-node");
  write_text(dir / "r.yaml", minimal("layout: ab\nab:\n  node: [a, b]\n"));
  errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 1u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0].rfind("7:9: node must be a string", 0), 0u) << errors[0];
  write_text(dir / "r.yaml", minimal("ab: {node: empty}\n"));
  errors = errors_of(dir / "r.yaml");
  ASSERT_EQ(errors.size(), 2u) << testing::PrintToString(errors);
  EXPECT_EQ(errors[0], "5:5: ab: applies only with layout: ab");
  EXPECT_EQ(errors[1], "5:12: node: '" + (dir / "empty").string() + "' has no usr/bin/kiln-node");
}

TEST(RecipeAbNode, ArtifactShapeAndOwnArtifactLookup)
{
  ScratchDir dir;
  // A tree without VERSION, and a file that is not executable, are refused at plan time.
  test::make_node_artifact(dir / "t");
  fs::remove(dir / "t/usr/lib/kiln/node/VERSION");
  Error e = test::error_of([&] { describe_node_artifact(dir / "t"); });
  EXPECT_NE(std::string(e.what()).find("usr/lib/kiln/node/VERSION"), std::string::npos) << e.what();
  write_text(dir / "t/usr/lib/kiln/node/VERSION", "something else\n");
  e = test::error_of([&] { describe_node_artifact(dir / "t"); });
  EXPECT_NE(std::string(e.what()).find("kiln-node "), std::string::npos) << e.what();
  write_text(dir / "plain-file", "x");
  e = test::error_of([&] { describe_node_artifact(dir / "plain-file"); });
  EXPECT_NE(std::string(e.what()).find("not executable"), std::string::npos) << e.what();

  // kiln's own: beside the executable (build tree), else ../lib/kiln (installed).
  fs::create_directories(dir / "prefix/bin");
  e = test::error_of([&] { own_node_artifact(dir / "prefix/bin/kiln"); });
  EXPECT_NE(std::string(e.what()).find((dir / "prefix/bin/kiln-node-artifact").string()), std::string::npos);
  EXPECT_NE(std::string(e.what()).find((dir / "prefix/lib/kiln/kiln-node-artifact").string()), std::string::npos);
  test::make_node_artifact(dir / "prefix/lib/kiln/kiln-node-artifact");
  EXPECT_EQ(own_node_artifact(dir / "prefix/bin/kiln"), dir / "prefix/lib/kiln/kiln-node-artifact");
  test::make_node_artifact(dir / "prefix/bin/kiln-node-artifact");
  EXPECT_EQ(own_node_artifact(dir / "prefix/bin/kiln"), dir / "prefix/bin/kiln-node-artifact");
  // The build tree's kiln finds the artifact the build wrote beside it.
  EXPECT_EQ(describe_node_artifact(own_node_artifact(KILN_BIN)).version.rfind("kiln-node ", 0), 0u);
}

} // namespace
} // namespace kiln::recipe
