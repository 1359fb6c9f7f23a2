// The recipe keys of the A/B layout (`ab:`) and of the image's trust store (`trust:`):
// defaults, bounds, every error at its position, and the trust stage the plan keys.
#include "core/crypto/signing.hpp"
#include "core/recipe/loader.hpp"
#include "core/recipe/plan.hpp"
#include "core/recipe/schema.hpp"
#include "core/util/error.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln::recipe {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::write_text;
using nlohmann::json;

std::string
minimal(const std::string& extra = "")
{
  return "name: demo\nbase:\n  url: https://example.invalid/base.qcow2\n  sha256: " + std::string(64, 'a') + "\n" +
         extra;
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
  EXPECT_EQ(r.layout, "ab");
  EXPECT_EQ(r.ab.esp_size, 128ull << 20);
  EXPECT_EQ(r.ab.boot_size, 256ull << 20);
  EXPECT_EQ(r.ab.slot_size, 0u);
  EXPECT_EQ(r.ab.data_size, 0u);
  EXPECT_EQ(r.ab.root_fs, "xfs");
  EXPECT_EQ(r.ab.data_fs, "xfs");
  EXPECT_EQ(r.ab.tries, 3u);
  EXPECT_EQ(r.ab.panic, 10u);
  EXPECT_TRUE(r.ab.kernel_args.empty());
  EXPECT_FALSE(r.trust.has_value());
  json j = plan_json(r, make_plan(r));
  EXPECT_EQ(j["ab"]["tries"], 3);
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
                                     "  kernel_args: [net.ifnames=0, 'kiln.dcos_role=master']\n"));
  Recipe r = load_recipe(dir / "r.yaml");
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

TEST(RecipeAb, BadValuesAreReportedAtOnce)
{
  ScratchDir dir;
  write_text(dir / "r.yaml", minimal("layout: ab\n"
                                     "ab:\n"
                                     "  esp_size: 8M\n"           // line 7
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
  Plan before = make_plan(r);
  crypto::generate_keypair(dir / "keys2", "release");
  fs::copy_file(dir / "keys2/release.pub", dir / "keys/release.pub", fs::copy_options::overwrite_existing);
  Plan after = make_plan(load_recipe(dir / "r.yaml"));
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

} // namespace
} // namespace kiln::recipe
