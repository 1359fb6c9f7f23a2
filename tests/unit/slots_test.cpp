// core/slots: the GPT reader (checked against sfdisk, CRC failures, backup header) and
// the boot state machine's prediction of what kiln's grub.cfg boots next.
#include "core/grubenv/grubenv.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/slots/state.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/ab_table.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

fs::path
ab_table(const fs::path& dir)
{
  return test::partitioned_disk(dir / "disk.img", "64M", test::ab_sfdisk_script(20));
}

std::string
lower(std::string s)
{
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

TEST(gpt, crc32_matches_the_standard_check_value)
{
  EXPECT_EQ(slots::crc32("123456789", 9), 0xCBF43926u);
}

TEST(gpt, partitions_match_sfdisk)
{
  ScratchDir dir;
  fs::path disk = ab_table(dir.path());
  slots::Gpt gpt = slots::read_gpt(disk);
  auto j = nlohmann::json::parse(util::run_checked({"sfdisk", "-J", disk.string()}).out)["partitiontable"];
  EXPECT_EQ(gpt.disk_guid, lower(j["id"].get<std::string>()));
  ASSERT_EQ(gpt.partitions.size(), j["partitions"].size());
  for (std::size_t i = 0; i < gpt.partitions.size(); ++i) {
    const auto& p = gpt.partitions[i];
    const auto& q = j["partitions"][i];
    EXPECT_EQ(p.label, q["name"].get<std::string>());
    EXPECT_EQ(p.partuuid, lower(q["uuid"].get<std::string>()));
    EXPECT_EQ(p.first_lba, q["start"].get<std::uint64_t>());
    EXPECT_EQ(p.size, q["size"].get<std::uint64_t>() * 512);
    EXPECT_EQ(p.number, i + 1);
  }
  EXPECT_EQ(gpt.by_label(slots::k_part_b).number, 5u);
  EXPECT_FALSE(gpt.from_backup);
  EXPECT_NE(test::error_of([&] { gpt.by_label("kiln-c"); }).reason().find("no partition labelled kiln-c"),
            std::string::npos);
}

TEST(gpt, a_damaged_primary_falls_back_to_the_backup_and_both_damaged_is_an_error)
{
  ScratchDir dir;
  fs::path disk = ab_table(dir.path());
  auto flip = [&](std::uint64_t offset) {
    util::Fd fd = util::open_file(disk, O_RDWR);
    char c = 0;
    ASSERT_EQ(::pread(fd.get(), &c, 1, static_cast<off_t>(offset)), 1);
    c = static_cast<char>(c ^ 0x10);
    ASSERT_EQ(::pwrite(fd.get(), &c, 1, static_cast<off_t>(offset)), 1);
  };
  flip(1024 + 130); // an entry's byte in the primary array: entries CRC fails
  slots::Gpt gpt = slots::read_gpt(disk);
  EXPECT_TRUE(gpt.from_backup);
  EXPECT_EQ(gpt.by_label(slots::k_part_a).label, "kiln-a");
  flip(64 * 1024 * 1024 - 512 + 40); // the backup header's first usable LBA: header CRC fails
  std::string reason = test::error_of([&] { slots::read_gpt(disk); }).reason();
  EXPECT_NE(reason.find("fail their CRC32"), std::string::npos) << reason;
  EXPECT_NE(reason.find("fails its CRC32"), std::string::npos) << reason;
}

TEST(gpt, a_file_without_a_table_is_refused)
{
  ScratchDir dir;
  test::write_text(dir / "zero.img", std::string(1 << 20, '\0'));
  EXPECT_NE(test::error_of([&] { slots::read_gpt(dir / "zero.img"); }).reason().find("no valid GPT"),
            std::string::npos);
}

grubenv::Env
env_of(const std::vector<std::pair<std::string, std::string>>& vars)
{
  grubenv::Env env;
  for (const auto& [k, v] : vars) {
    env.set(k, v);
  }
  return env;
}

slots::BootPrediction
next(const std::vector<std::pair<std::string, std::string>>& vars)
{
  return slots::read_boot_env(env_of(vars)).next_boot();
}

TEST(boot_state, a_new_image_boots_its_good_slot_a_and_grub_editenv_reads_it)
{
  grubenv::Env env = slots::initial_env(std::string(64, 'a'), "node-7");
  slots::BootEnv b = slots::read_boot_env(env);
  EXPECT_EQ(b.order_text, "A B");
  EXPECT_EQ(b.slot('A').state, "good");
  EXPECT_EQ(b.slot('A').digest, std::string(64, 'a'));
  EXPECT_EQ(b.slot('A').name, "node-7");
  EXPECT_EQ(b.slot('B').state, "empty");
  EXPECT_EQ(b.next_boot().slot, 'A');
  // The bytes GRUB and grub-editenv read: the warning comment, then the variables.
  ScratchDir dir;
  util::write_file_atomic(dir / "grubenv", grubenv::serialize(env));
  util::RunResult list = util::run({"grub-editenv", (dir / "grubenv").string(), "list"});
  ASSERT_TRUE(list.ok()) << list.err;
  EXPECT_EQ(list.out, "kiln_order=A B\nkiln_A_state=good\nkiln_A_tries=0\nkiln_A_digest=" + std::string(64, 'a') +
                        "\nkiln_A_name=node-7\nkiln_B_state=empty\nkiln_B_tries=0\n");
}

TEST(boot_state, prediction_follows_the_grub_script)
{
  // Missing block: defaults, every slot empty -> A.
  auto p = next({});
  EXPECT_EQ(p.slot, 'A');
  EXPECT_EQ(p.reason, slots::BootReason::empty);
  // Good first.
  p = next({{"kiln_order", "B A"}, {"kiln_A_state", "good"}, {"kiln_B_state", "good"}});
  EXPECT_EQ(p.slot, 'B');
  // Trial with tries left boots and loses one.
  p = next({{"kiln_order", "B A"}, {"kiln_A_state", "good"}, {"kiln_B_state", "trial"}, {"kiln_B_tries", "3"}});
  EXPECT_EQ(p.slot, 'B');
  EXPECT_EQ(p.reason, slots::BootReason::trial);
  EXPECT_EQ(p.tries_after, "2");
  // Trial out of tries (or a value GRUB's table does not know) becomes bad; A boots.
  for (const char* tries : {"0", "10", "", "x"}) {
    p = next({{"kiln_order", "B A"}, {"kiln_A_state", "good"}, {"kiln_B_state", "trial"}, {"kiln_B_tries", tries}});
    EXPECT_EQ(p.slot, 'A') << tries;
    ASSERT_EQ(p.marked_bad.size(), 1u);
    EXPECT_EQ(p.marked_bad[0], 'B');
  }
  // Nothing qualifies: the first non-empty slot of the order (a bad one too).
  p = next({{"kiln_order", "A B"}, {"kiln_A_state", "empty"}, {"kiln_B_state", "bad"}});
  EXPECT_EQ(p.slot, 'B');
  EXPECT_EQ(p.reason, slots::BootReason::last_resort);
  // Words other than A and B are ignored, and GRUB walks only the words of kiln_order:
  // a good A that the order does not name is never reached.
  p = next({{"kiln_order", "X B"}, {"kiln_A_state", "good"}, {"kiln_B_state", "bad"}});
  EXPECT_EQ(p.slot, 'B');
  EXPECT_EQ(p.reason, slots::BootReason::last_resort);
  // An unset state variable reads as empty; a set-but-blank one is "not empty".
  p = next({{"kiln_order", "A B"}, {"kiln_A_state", ""}});
  EXPECT_EQ(p.reason, slots::BootReason::last_resort);
}

TEST(boot_state, edits)
{
  grubenv::Env env = env_of({{"kiln_order", "A B"}, {"kiln_A_state", "good"}, {"kiln_A_tries", "0"}});
  slots::set_empty(env, 'B');
  EXPECT_EQ(env.get("kiln_B_state"), "empty");
  EXPECT_EQ(env.get("kiln_B_digest"), "");
  slots::set_trial(env, 'B', 3, std::string(64, 'd'), "node");
  EXPECT_EQ(env.get("kiln_order"), "B A");
  EXPECT_EQ(env.get("kiln_B_state"), "trial");
  EXPECT_EQ(env.get("kiln_B_tries"), "3");
  EXPECT_EQ(env.get("kiln_B_name"), "node");
  EXPECT_THROW(slots::set_trial(env, 'B', 0, "", ""), UsageError);
  EXPECT_THROW(slots::set_trial(env, 'B', 10, "", ""), UsageError);
  // Rollback from B to A (good) puts A first; from A to B (trial) is refused.
  slots::roll_back(env, 'B');
  EXPECT_EQ(env.get("kiln_order"), "A B");
  EXPECT_NE(test::error_of([&] { slots::roll_back(env, 'A'); }).reason().find("slot B is trial, not good"),
            std::string::npos);
  slots::set_good(env, 'B');
  EXPECT_EQ(env.get("kiln_B_state"), "good");
  EXPECT_EQ(env.get("kiln_B_tries"), "0");
  EXPECT_EQ(env.get("kiln_order"), "A B"); // mark-good never reorders
  // The block fits the 1024-byte grubenv with both digests and names set.
  slots::set_trial(env, 'A', 9, std::string(64, 'f'), std::string(60, 'n'));
  env.set("kiln_B_name", std::string(60, 'm'));
  EXPECT_EQ(grubenv::serialize(env).size(), grubenv::k_default_size);
}

} // namespace
} // namespace kiln
