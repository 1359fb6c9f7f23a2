// The A/B disk's host side (image/ab/disk_layout, image/ab/host_fs) without the programs:
// the partition table, the sfdisk input, the mkfs commands with the features CentOS 7
// reads, failures named, and the sparse copy of a file system into the disk.
// tests/guestfs/ab_layout_test.cpp and mkfs_features_test.cpp run the real tools.
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "image/ab/disk_layout.hpp"
#include "image/ab/host_fs.hpp"
#include "support/fake_runner.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fcntl.h>
#include <regex>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
constexpr std::uint64_t k_mib = 1ull << 20;

recipe::AbLayout
small_ab()
{
  recipe::AbLayout ab;
  ab.esp_size = 32 * k_mib + 5; // rounded up to whole MiB
  ab.boot_size = 64 * k_mib;
  ab.data_size = 0; // the default, 4 GiB
  return ab;
}

bool
contains(const std::vector<std::string>& argv, const std::string& word)
{
  return std::find(argv.begin(), argv.end(), word) != argv.end();
}

TEST(AbDiskLayout, PartitionsInAbiOrderAlignedWithGuidsFromTheKey)
{
  ab::Layout l = ab::plan_layout(small_ab(), "key1", 768 * k_mib);
  std::vector<std::string> names;
  for (const auto& p : l.parts) {
    names.push_back(p.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{std::string(slots::k_part_bios), std::string(slots::k_part_esp),
                                             std::string(slots::k_part_boot), std::string(slots::k_part_a),
                                             std::string(slots::k_part_b), std::string(slots::k_part_data)}));
  std::uint64_t at = k_mib;
  for (const auto& p : l.parts) {
    EXPECT_EQ(p.start, at) << p.name; // contiguous from LBA 2048
    EXPECT_EQ(p.size % k_mib, 0u) << p.name;
    at += p.size;
  }
  EXPECT_EQ(l.at(slots::k_part_esp).size, 33 * k_mib);
  EXPECT_EQ(l.at(slots::k_part_a).size, 768 * k_mib);
  EXPECT_EQ(l.at(slots::k_part_b).size, 768 * k_mib);
  EXPECT_EQ(l.at(slots::k_part_data).size, 4096 * k_mib);
  EXPECT_EQ(l.disk_size, at + k_mib); // room for the backup GPT
  EXPECT_THROW(l.at("kiln-c"), Error);

  const std::regex v4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  EXPECT_TRUE(std::regex_match(l.disk_guid, v4)) << l.disk_guid;
  for (const auto& p : l.parts) {
    EXPECT_TRUE(std::regex_match(p.guid, v4)) << p.guid;
  }
  // The same key gives the same table; another key, other GUIDs.
  ab::Layout again = ab::plan_layout(small_ab(), "key1", 768 * k_mib);
  ab::Layout other = ab::plan_layout(small_ab(), "key2", 768 * k_mib);
  EXPECT_EQ(ab::sfdisk_script(again), ab::sfdisk_script(l));
  EXPECT_NE(other.disk_guid, l.disk_guid);
  EXPECT_NE(other.at(slots::k_part_a).guid, l.at(slots::k_part_a).guid);
}

TEST(AbDiskLayout, SfdiskGetsTheTableOnStdinAndWritesOnlyTheFile)
{
  ab::Layout l = ab::plan_layout(small_ab(), "key1", 768 * k_mib);
  test::FakeRunner runner;
  ab::partition(runner, "/tmp/disk.raw", l);
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0].argv,
            (std::vector<std::string>{"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "/tmp/disk.raw"}));
  const std::string script = runner.calls[0].stdin_data.value();
  EXPECT_EQ(script.rfind("label: gpt\nlabel-id: " + l.disk_guid + "\nfirst-lba: 2048\nunit: sectors\n\n", 0), 0u);
  const ab::Part& a = l.at(slots::k_part_a);
  EXPECT_NE(script.find("start=" + std::to_string(a.start / 512) + ", size=" + std::to_string(a.size / 512) +
                        ", type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=" + a.guid + ", name=\"" + a.name + "\"\n"),
            std::string::npos)
    << script;
  EXPECT_NE(script.find("type=21686148-6449-6E6F-744E-656564454649"), std::string::npos); // BIOS boot
  EXPECT_NE(script.find("type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), std::string::npos); // ESP
  EXPECT_EQ(std::count(script.begin(), script.end(), '\n'), 5 + 6);

  runner.fail_with(1, "sfdisk: cannot open /tmp/disk.raw\n");
  try {
    ab::partition(runner, "/tmp/disk.raw", l);
    FAIL() << "a failing sfdisk must throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "layout ab: partition table: sfdisk exit status 1: sfdisk: cannot open /tmp/disk.raw");
  }
}

// What CentOS 7 reads: kernel 3.10, xfsprogs 4.5, e2fsprogs 1.42.9, GRUB 2.02 (el7.md).
TEST(AbHostFs, MkfsCommandsCarryTheFeaturesCentOS7Reads)
{
  const std::string uuid = ab::derived_guid("key1", "fs:kiln-a");
  auto xfs = ab::mkfs_argv("xfs", "/tmp/a.img", 768 * k_mib, "kiln-root", uuid);
  EXPECT_EQ(xfs.front(), "mkfs.xfs");
  EXPECT_TRUE(contains(xfs, "uuid=" + uuid + ",crc=1,finobt=0,reflink=0,rmapbt=0,bigtime=0,inobtcount=0"));
  EXPECT_TRUE(contains(xfs, "sparse=0,nrext64=0"));
  EXPECT_TRUE(contains(xfs, "ftype=1")); // overlay2 needs d_type
  EXPECT_TRUE(contains(xfs, "kiln-root"));
  EXPECT_EQ(xfs.back(), "/tmp/a.img");

  auto ext4 = ab::mkfs_argv("ext4", "/tmp/b.img", 64 * k_mib, "kiln-boot", uuid);
  EXPECT_EQ(ext4.front(), "mkfs.ext4");
  EXPECT_TRUE(contains(ext4, "^metadata_csum,^metadata_csum_seed,^orphan_file,^64bit"));
  EXPECT_TRUE(contains(ext4, "hash_seed=" + uuid)); // reproducible directory hashing
  EXPECT_TRUE(contains(ext4, uuid));

  auto small_vfat = ab::mkfs_argv("vfat", "/tmp/e.img", 32 * k_mib, "KILN-ESP", uuid);
  EXPECT_FALSE(contains(small_vfat, "-F"));
  EXPECT_TRUE(contains(small_vfat, uuid.substr(0, 8))); // the volume id
  auto big_vfat = ab::mkfs_argv("vfat", "/tmp/e.img", 128 * k_mib, "KILN-ESP", uuid);
  ASSERT_TRUE(contains(big_vfat, "-F"));
  EXPECT_EQ(*(std::find(big_vfat.begin(), big_vfat.end(), "-F") + 1), "32");

  EXPECT_THROW(ab::mkfs_argv("btrfs", "/tmp/x.img", k_mib, "x", uuid), Error);
}

TEST(AbHostFs, MakeFsSizesASparseFileAndNamesAFailingMkfs)
{
  test::ScratchDir dir;
  test::FakeRunner runner;
  const fs::path img = dir / "a.img";
  ab::make_fs(runner, "xfs", img, 300 * k_mib, "kiln-root", ab::derived_guid("k", "fs"));
  ASSERT_EQ(runner.calls.size(), 1u);
  EXPECT_EQ(runner.calls[0].argv.back(), img.string());
  EXPECT_EQ(fs::file_size(img), 300 * k_mib);
  struct stat st {};
  ASSERT_EQ(::stat(img.c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0); // sparse: mkfs allocates what it writes

  runner.fail_with(1, "mkfs.xfs: agsize too small\n");
  try {
    ab::make_fs(runner, "xfs", img, k_mib, "kiln-root", ab::derived_guid("k", "fs"));
    FAIL() << "a failing mkfs must throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "layout ab: mkfs.xfs kiln-root: mkfs.xfs exit status 1: mkfs.xfs: agsize too small");
  }
}

TEST(AbHostFs, CopySparseCopiesDataAtTheOffsetAndKeepsHoles)
{
  test::ScratchDir dir;
  const fs::path from = dir / "fs.img";
  const fs::path to = dir / "disk.raw";
  ab::make_sparse_file(from, 16 * k_mib);
  ab::make_sparse_file(to, 64 * k_mib);
  auto put = [](const fs::path& path, std::uint64_t at, const std::string& data) {
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(at)), static_cast<ssize_t>(data.size()));
    ::close(fd);
  };
  put(from, 0, "superblock");
  put(from, 9 * k_mib + 3, "inode table");
  ab::copy_sparse(from, to, 5 * k_mib);
  std::string disk = test::read_text(to);
  ASSERT_EQ(disk.size(), 64 * k_mib);
  EXPECT_EQ(disk.substr(5 * k_mib, 10), "superblock");
  EXPECT_EQ(disk.substr(14 * k_mib + 3, 11), "inode table");
  EXPECT_EQ(std::count(disk.begin(), disk.end(), '\0'), static_cast<std::ptrdiff_t>(64 * k_mib - 21));
  struct stat st {};
  ASSERT_EQ(::stat(to.c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_blocks) * 512, 2 * k_mib); // the holes stayed holes
}

} // namespace
} // namespace kiln
