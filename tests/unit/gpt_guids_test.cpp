// core/slots/gpt_guids: a written disk gets GUIDs of its own. A table made by sfdisk gets
// new GUIDs from the pure planner, is written, and is read back by kiln's reader (both
// copies) and checked by sfdisk and sgdisk.
#include "core/node/identity.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/slots/gpt_guids.hpp"
#include "core/slots/grubcfg.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/ab_table.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <regex>
#include <set>
#include <unistd.h>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

slots::GptTable
primary_of(const fs::path& disk)
{
  util::Fd fd = util::open_file(disk, O_RDONLY);
  return slots::read_primary_table(fd.get(), 512, disk.string());
}

// Counting bytes: deterministic, different every draw.
std::function<slots::Guid()>
counter(int start = 1)
{
  return [n = start]() mutable {
    slots::Guid g{};
    g[0] = static_cast<unsigned char>(n);
    g[15] = static_cast<unsigned char>(n * 7);
    ++n;
    return g;
  };
}

TEST(gpt_guids, every_guid_is_new_and_the_layout_stays)
{
  ScratchDir dir;
  fs::path disk = test::partitioned_disk(dir / "disk.img", "64M", test::ab_sfdisk_script(20));
  slots::Gpt before = slots::read_gpt(disk);
  slots::GuidPlan plan = slots::plan_new_guids(primary_of(disk), counter());
  ASSERT_EQ(plan.partitions.size(), before.partitions.size());
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    slots::write_gpt_growth(fd.get(), plan.rewrite, disk.string());
  }
  slots::Gpt after = slots::read_gpt(disk);
  EXPECT_FALSE(after.from_backup);
  EXPECT_EQ(before.disk_guid, plan.old_disk_guid);
  EXPECT_EQ(after.disk_guid, plan.new_disk_guid);
  EXPECT_NE(after.disk_guid, before.disk_guid);
  const std::regex v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  EXPECT_TRUE(std::regex_match(after.disk_guid, v4)) << after.disk_guid;
  std::set<std::string> seen{after.disk_guid};
  ASSERT_EQ(after.partitions.size(), before.partitions.size());
  for (std::size_t i = 0; i < before.partitions.size(); ++i) {
    const auto& b = before.partitions[i];
    const auto& a = after.partitions[i];
    EXPECT_EQ(a.label, b.label);
    EXPECT_EQ(a.type_guid, b.type_guid);
    EXPECT_EQ(a.first_lba, b.first_lba);
    EXPECT_EQ(a.last_lba, b.last_lba);
    EXPECT_NE(a.partuuid, b.partuuid);
    EXPECT_TRUE(std::regex_match(a.partuuid, v4)) << a.partuuid;
    EXPECT_TRUE(seen.insert(a.partuuid).second) << "two partitions share " << a.partuuid;
    EXPECT_EQ(plan.partitions[i].label, b.label);
    EXPECT_EQ(plan.partitions[i].old_guid, b.partuuid);
    EXPECT_EQ(plan.partitions[i].new_guid, a.partuuid);
  }
  util::RunResult sf = util::run({"sfdisk", "--verify", disk.string()});
  EXPECT_TRUE(sf.ok()) << sf.out << sf.err;
  if (!test::require_program("sgdisk", "gdisk").empty()) {
    util::RunResult v = util::run({"sgdisk", "-v", disk.string()});
    EXPECT_NE(v.out.find("No problems found"), std::string::npos) << v.out;
  }
  // The backup copy alone says the same.
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    std::string zero(512, '\0');
    ASSERT_EQ(::pwrite(fd.get(), zero.data(), zero.size(), 512), 512);
  }
  slots::Gpt backup = slots::read_gpt(disk);
  EXPECT_TRUE(backup.from_backup);
  EXPECT_EQ(backup.disk_guid, after.disk_guid);
  EXPECT_EQ(backup.by_label(slots::k_part_a).partuuid, after.by_label(slots::k_part_a).partuuid);
}

// A draw that repeats itself, or repeats a GUID the table holds, is drawn again.
TEST(gpt_guids, a_repeated_draw_is_drawn_again)
{
  ScratchDir dir;
  fs::path disk = test::partitioned_disk(dir / "disk.img", "64M", test::ab_sfdisk_script(20));
  slots::GptTable table = primary_of(disk);
  slots::Guid old_a = table.entries[0].unique;
  int calls = 0;
  slots::GuidPlan plan = slots::plan_new_guids(table, [&, next = counter(9)]() mutable {
    ++calls;
    // First the table's own first GUID, then the same value twice, then fresh ones.
    if (calls == 1) {
      return old_a;
    }
    if (calls == 2 || calls == 3) {
      slots::Guid g{};
      g.fill(0x11);
      return g;
    }
    return next();
  });
  std::set<std::string> seen{plan.new_disk_guid};
  for (const auto& c : plan.partitions) {
    EXPECT_TRUE(seen.insert(c.new_guid).second) << c.new_guid;
    EXPECT_NE(c.new_guid, c.old_guid);
  }
  // Rejected: the repeat of 0x11..., and the table's own GUID when drawing it again
  // gives the same version-4 GUID (sfdisk's are random ones).
  const int own_rejected = slots::random_guid(old_a) == old_a ? 1 : 0;
  EXPECT_EQ(calls, static_cast<int>(plan.partitions.size()) + 1 + 1 + own_rejected);
}

// kiln-boot's grub.cfg follows the new PARTUUIDs; one that does not name the slots is
// not kiln's and is refused.
TEST(gpt_guids, grub_cfg_follows_and_a_foreign_one_is_refused)
{
  slots::GrubConfig cfg;
  cfg.partuuid_a = "0a0a0a0a-0000-4000-8000-00000000000a";
  cfg.partuuid_b = "0b0b0b0b-0000-4000-8000-00000000000b";
  const std::string text = slots::make_grub_cfg(cfg);
  std::vector<slots::GuidChange> changes = {
    {std::string(slots::k_part_esp), "0e0e0e0e-0000-4000-8000-00000000000e", "1e1e1e1e-0000-4000-8000-00000000001e"},
    {std::string(slots::k_part_a), cfg.partuuid_a, "1a1a1a1a-0000-4000-8000-00000000001a"},
    {std::string(slots::k_part_b), cfg.partuuid_b, "1b1b1b1b-0000-4000-8000-00000000001b"}};
  std::string out = node::rewrite_grub_cfg(text, changes, "grub.cfg");
  EXPECT_EQ(out.find(cfg.partuuid_a), std::string::npos);
  EXPECT_EQ(out.find(cfg.partuuid_b), std::string::npos);
  EXPECT_NE(out.find("root=PARTUUID=1a1a1a1a-0000-4000-8000-00000000001a"), std::string::npos) << out;
  EXPECT_NE(out.find("root=PARTUUID=1b1b1b1b-0000-4000-8000-00000000001b"), std::string::npos) << out;
  // Nothing but the GUIDs changed.
  cfg.partuuid_a = "1a1a1a1a-0000-4000-8000-00000000001a";
  cfg.partuuid_b = "1b1b1b1b-0000-4000-8000-00000000001b";
  EXPECT_EQ(out, slots::make_grub_cfg(cfg));
  try {
    node::rewrite_grub_cfg("set default=0\n", changes, "foreign.cfg");
    FAIL() << "a grub.cfg naming no slot was rewritten";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not the grub.cfg kiln wrote"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slots::random_guid(node::random_bytes16())[7] >> 4, 4);
  EXPECT_NE(node::random_bytes16(), node::random_bytes16());
}

} // namespace
} // namespace kiln
