// core/slots/gpt_grow: kiln-data grown to the end of a larger disk. Tables made by
// sfdisk, grown by the pure planner, written, then read back by kiln's own reader (both
// copies) and checked by sgdisk -v.
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/slots/gpt_grow.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/ab_table.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

const std::string k_ab_table = test::ab_sfdisk_script(20);

fs::path
make_table(const fs::path& dir, const std::string& script, const std::string& size = "64M")
{
  return test::partitioned_disk(dir / "disk.img", size, script);
}

slots::GptTable
primary_of(const fs::path& disk)
{
  util::Fd fd = util::open_file(disk, O_RDONLY);
  return slots::read_primary_table(fd.get(), 512, disk.string());
}

std::uint64_t
sectors(const fs::path& disk)
{
  return fs::file_size(disk) / 512;
}

TEST(gpt_grow, moves_the_backup_to_the_end_and_grows_kiln_data_aligned)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), k_ab_table);
  slots::Gpt before = slots::read_gpt(disk);
  const auto& data_before = before.by_label(slots::k_part_data);
  util::run_checked({"truncate", "-s", "201M", disk.string()}); // not a whole number of MiB past the table
  slots::GrowPlan plan = slots::plan_gpt_growth(primary_of(disk), sectors(disk), slots::k_part_data, disk.string());
  ASSERT_TRUE(plan.changed);
  EXPECT_EQ(plan.partition, data_before.number);
  EXPECT_EQ(plan.old_last_lba, data_before.last_lba);
  EXPECT_EQ(plan.table.alternate_lba, sectors(disk) - 1);
  EXPECT_EQ(plan.new_last_usable, sectors(disk) - 34);
  EXPECT_EQ((plan.new_last_lba + 1) % 2048, 0u) << "ends on a 1 MiB boundary";
  EXPECT_LE(plan.new_last_lba, plan.new_last_usable);
  EXPECT_GT(plan.new_last_usable - plan.new_last_lba, 0u);
  EXPECT_LT(plan.new_last_usable - plan.new_last_lba, 2048u);
  // Backup first (entries, header at the end), primary last (header at LBA 1 the very last).
  ASSERT_EQ(plan.backup_writes.size(), 2u);
  ASSERT_EQ(plan.primary_writes.size(), 2u);
  EXPECT_EQ(plan.backup_writes[1].lba, sectors(disk) - 1);
  EXPECT_EQ(plan.primary_writes[1].lba, 1u);
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    slots::write_gpt_growth(fd.get(), plan, disk.string());
  }
  slots::Gpt after = slots::read_gpt(disk);
  EXPECT_FALSE(after.from_backup);
  EXPECT_EQ(after.by_label(slots::k_part_data).last_lba, plan.new_last_lba);
  EXPECT_EQ(after.by_label(slots::k_part_data).first_lba, data_before.first_lba);
  EXPECT_EQ(after.by_label(slots::k_part_a).partuuid, before.by_label(slots::k_part_a).partuuid);
  EXPECT_EQ(after.disk_guid, before.disk_guid);
  if (!test::require_program("sgdisk", "gdisk").empty()) {
    util::RunResult v = util::run({"sgdisk", "-v", disk.string()});
    EXPECT_TRUE(v.ok()) << v.out << v.err;
    EXPECT_NE(v.out.find("No problems found"), std::string::npos) << v.out;
  }
  util::RunResult sf = util::run({"sfdisk", "--verify", disk.string()});
  EXPECT_TRUE(sf.ok()) << sf.out << sf.err;
  // The backup copy alone (primary header destroyed) describes the same grown table.
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    std::string zero(512, '\0');
    ASSERT_EQ(::pwrite(fd.get(), zero.data(), zero.size(), 512), 512);
  }
  slots::Gpt backup = slots::read_gpt(disk);
  EXPECT_TRUE(backup.from_backup);
  EXPECT_EQ(backup.by_label(slots::k_part_data).last_lba, plan.new_last_lba);
}

// A power cut after the backup copy was written: the old primary still reads (the old
// table, whole), and the next run finishes the growth.
TEST(gpt_grow, a_cut_after_the_backup_leaves_the_old_table_and_the_next_run_finishes)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), k_ab_table);
  slots::Gpt before = slots::read_gpt(disk);
  util::run_checked({"truncate", "-s", "100M", disk.string()});
  slots::GrowPlan plan = slots::plan_gpt_growth(primary_of(disk), sectors(disk), slots::k_part_data, disk.string());
  ASSERT_TRUE(plan.changed);
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    for (const auto& w : plan.backup_writes) {
      ASSERT_EQ(::pwrite(fd.get(), w.bytes.data(), w.bytes.size(), static_cast<off_t>(w.lba * 512)),
                static_cast<ssize_t>(w.bytes.size()));
    }
  }
  slots::Gpt cut = slots::read_gpt(disk);
  EXPECT_FALSE(cut.from_backup);
  EXPECT_EQ(cut.by_label(slots::k_part_data).last_lba, before.by_label(slots::k_part_data).last_lba);
  slots::GrowPlan again = slots::plan_gpt_growth(primary_of(disk), sectors(disk), slots::k_part_data, disk.string());
  ASSERT_TRUE(again.changed);
  EXPECT_EQ(again.new_last_lba, plan.new_last_lba);
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    slots::write_gpt_growth(fd.get(), again, disk.string());
  }
  EXPECT_EQ(slots::read_gpt(disk).by_label(slots::k_part_data).last_lba, plan.new_last_lba);
  util::RunResult sf = util::run({"sfdisk", "--verify", disk.string()});
  EXPECT_TRUE(sf.ok()) << sf.out << sf.err;
}

TEST(gpt_grow, a_second_run_changes_nothing)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), k_ab_table);
  util::run_checked({"truncate", "-s", "128M", disk.string()});
  slots::GrowPlan plan = slots::plan_gpt_growth(primary_of(disk), sectors(disk), slots::k_part_data, disk.string());
  ASSERT_TRUE(plan.changed);
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    slots::write_gpt_growth(fd.get(), plan, disk.string());
  }
  std::string image = util::read_file(disk);
  slots::GrowPlan again = slots::plan_gpt_growth(primary_of(disk), sectors(disk), slots::k_part_data, disk.string());
  EXPECT_FALSE(again.changed);
  EXPECT_TRUE(again.backup_writes.empty());
  EXPECT_TRUE(again.primary_writes.empty());
  EXPECT_EQ(again.new_last_lba, plan.new_last_lba);
  {
    util::Fd fd = util::open_file(disk, O_RDWR);
    slots::write_gpt_growth(fd.get(), again, disk.string());
  }
  EXPECT_EQ(util::read_file(disk), image);
}

TEST(gpt_grow, the_same_size_disk_still_gets_its_partition_aligned_but_never_shrunk)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), k_ab_table);
  slots::GptTable t = primary_of(disk);
  slots::GrowPlan plan = slots::plan_gpt_growth(t, sectors(disk), slots::k_part_data, disk.string());
  // sfdisk already ends kiln-data at the last usable LBA; the planner never moves it back.
  EXPECT_GE(plan.new_last_lba, plan.old_last_lba);
  EXPECT_FALSE(plan.changed);
}

TEST(gpt_grow, header_and_entries_round_trip_with_valid_crcs)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), k_ab_table);
  slots::GptTable t = primary_of(disk);
  std::vector<unsigned char> primary = slots::header_sector(t, false);
  std::vector<unsigned char> backup = slots::header_sector(t, true);
  std::vector<unsigned char> entries = slots::entry_bytes(t);
  slots::GptTable p = slots::parse_gpt_table(primary, entries, 512, "primary");
  slots::GptTable b = slots::parse_gpt_table(backup, entries, 512, "backup");
  EXPECT_EQ(p.my_lba, 1u);
  EXPECT_EQ(b.my_lba, t.alternate_lba);
  EXPECT_EQ(b.alternate_lba, 1u);
  EXPECT_EQ(b.entries_lba, t.alternate_lba - t.entry_sectors());
  // The bytes kiln writes for the primary are the bytes sfdisk wrote.
  std::string image = util::read_file(disk);
  EXPECT_EQ(std::string(primary.begin(), primary.end()), image.substr(512, 512));
  EXPECT_EQ(std::string(entries.begin(), entries.end()), image.substr(1024, entries.size()));
  // A flipped bit fails the CRC.
  primary[60] ^= 1;
  EXPECT_THROW(slots::parse_gpt_table(primary, entries, 512, "primary"), Error);
  entries[40] ^= 1;
  EXPECT_THROW(slots::parse_gpt_table(backup, entries, 512, "backup"), Error);
}

TEST(gpt_grow, refuses_when_kiln_data_is_not_last)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), "label: gpt\n"
                                         "size=8MiB, name=kiln-boot\n"
                                         "size=20MiB, name=kiln-data\n"
                                         "name=kiln-extra\n");
  util::run_checked({"truncate", "-s", "128M", disk.string()});
  try {
    slots::plan_gpt_growth(primary_of(disk), sectors(disk), slots::k_part_data, "disk");
    FAIL() << "no refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not the last partition"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("kiln-extra"), std::string::npos) << e.what();
  }
}

TEST(gpt_grow, refuses_a_disk_that_shrank_or_has_no_kiln_data)
{
  ScratchDir dir;
  fs::path disk = make_table(dir.path(), k_ab_table);
  slots::GptTable t = primary_of(disk);
  try {
    slots::plan_gpt_growth(t, sectors(disk) - 2048, slots::k_part_data, "disk");
    FAIL() << "no refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shrunk"), std::string::npos) << e.what();
  }
  try {
    slots::plan_gpt_growth(t, sectors(disk) * 2, "kiln-nothing", "disk");
    FAIL() << "no refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no partition labelled kiln-nothing"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace kiln
