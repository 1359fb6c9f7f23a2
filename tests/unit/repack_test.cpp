// Reproducible file systems (repack.hpp): two disks whose ext4 partitions hold the same
// tree, written in different orders (so with other inode numbers and block places), and
// whose FAT partitions were written at other moments, become byte-identical once re-made
// and pinned, as raw files and as qcow2; what is neither ext4 nor vfat, or not a
// partition of the disk, is kept and reported. Real mke2fs, debugfs, mkfs.vfat, mtools
// and qemu-img.
#include "core/crypto/sha256.hpp"
#include "core/util/runner.hpp"
#include "image/ab/host_fs.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/fsimage/ext4_to_tar.hpp"
#include "image/pipeline/repack.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t k_mib = 1ull << 20;
constexpr std::uint64_t k_offset = k_mib;
constexpr std::uint64_t k_size = 48 * k_mib;
constexpr std::uint64_t k_fat_offset = k_offset + k_size;
constexpr std::uint64_t k_fat_size = 8 * k_mib;

class repack : public ::testing::Test {
protected:
  void run(const std::vector<std::string>& argv, const std::string& input = {})
  {
    util::RunOptions o;
    o.stdin_data = input;
    util::RunResult r = util::system_runner().run(argv, o);
    ASSERT_TRUE(r.ok()) << argv.front() << ": " << r.tail(3);
  }

  // A raw disk with two partitions: an ext4 filled by debugfs `requests`, and a FAT
  // volume holding one file whose modification time is `stamp`, written now.
  fs::path disk(const std::string& name, const std::string& requests, const std::string& stamp)
  {
    fs::path fsimg = m_dir / (name + ".fs");
    fs::path raw = m_dir / (name + ".raw");
    run({"truncate", "-s", std::to_string(k_size), fsimg.string()});
    run({test::require_program("mkfs.ext4", "e2fsprogs"), "-q", "-F", "-L", "root", "-U",
         "5a5a5a5a-0000-4000-8000-000000000001", fsimg.string()});
    test::write_text(m_dir / "requests", requests);
    run({test::require_program("debugfs", "e2fsprogs"), "-w", "-f", (m_dir / "requests").string(), fsimg.string()});
    fs::path fat = m_dir / (name + ".fat");
    run({"truncate", "-s", std::to_string(k_fat_size), fat.string()});
    run({test::require_program("mkfs.vfat", "dosfstools"), "-n", "ESP", "-i", "0badcafe", fat.string()});
    test::write_text(m_dir / "BOOTX64.EFI", "loader\n");
    run({"touch", "-d", stamp, (m_dir / "BOOTX64.EFI").string()});
    run({test::require_program("mmd", "mtools"), "-i", fat.string(), "::EFI"});
    run({"mcopy", "-m", "-i", fat.string(), (m_dir / "BOOTX64.EFI").string(), "::EFI/BOOTX64.EFI"});
    run({"truncate", "-s", std::to_string(k_fat_offset + k_fat_size + k_mib), raw.string()});
    run({test::require_program("sfdisk", "fdisk"), "--quiet", raw.string()},
        "label: dos\nlabel-id: 0x12345678\nstart=2048, size=" + std::to_string(k_size / 512) + ", type=83\nstart=" +
          std::to_string(k_fat_offset / 512) + ", size=" + std::to_string(k_fat_size / 512) + ", type=ef\n");
    ab::copy_sparse(fsimg, raw, k_offset);
    ab::copy_sparse(fat, raw, k_fat_offset);
    return raw;
  }

  std::vector<build::RepackTarget> targets()
  {
    return {{"/dev/sda1", "/", "ext4", gfs::Handle::PartitionSpan{0, k_offset, k_size}},
            {"/dev/sda2", "/boot/efi", "vfat", gfs::Handle::PartitionSpan{0, k_fat_offset, k_fat_size}},
            {"/dev/sda3", "/data", "xfs", gfs::Handle::PartitionSpan{0, 0, 0}},
            {"/dev/sdb1", "/srv", "ext4", gfs::Handle::PartitionSpan{1, 0, 0}},
            {"/dev/mapper/vg-lv", "/var", "ext4", std::nullopt}};
  }

  test::ScratchDir m_dir;
  const std::string m_data = std::string(300000, 'd');
};

TEST_F(repack, disks_with_the_same_tree_become_identical_raw_and_qcow2)
{
  test::write_text(m_dir / "a", "alpha\n");
  test::write_text(m_dir / "b", m_data);
  const std::string a = "write " + (m_dir / "a").string() + " etc/a\n";
  const std::string b = "write " + (m_dir / "b").string() + " usr/b\n";
  const std::string meta = "sif etc/a mtime 20231114221320\nsif usr/b mtime 20231114221320\n"
                           "sif etc mtime 20231114221320\nsif usr mtime 20231114221320\n"
                           "sif / mtime 20231114221320\nea_set etc/a user.k v\n";
  fs::path one = disk("one", "mkdir etc\nmkdir usr\n" + a + b + meta, "2021-03-04 05:06:07");
  fs::path two = disk("two", "mkdir usr\n" + b + "mkdir tmp\nrmdir tmp\nmkdir etc\n" + a + meta, "2024-08-09 10:11:12");
  ASSERT_NE(crypto::sha256_file(one), crypto::sha256_file(two));

  // qcow2 copies, re-made through qemu-img's window.
  std::vector<fs::path> qcow2;
  for (const fs::path& raw : {one, two}) {
    fs::path q = m_dir / (raw.stem().string() + ".qcow2");
    formats::qemu_img(util::system_runner(), "test", {"convert", "-q", "-O", "qcow2", raw.string(), q.string()});
    qcow2.push_back(q);
  }
  for (const fs::path& raw : {one, two}) {
    build::RepackResult r =
      build::repack_file_systems(util::system_runner(), raw, "raw", targets(), 1700000000, m_dir.path());
    EXPECT_EQ(r.remade, std::vector<std::string>{"/ (/dev/sda1, ext4)"});
    EXPECT_EQ(r.pinned, std::vector<std::string>{"/boot/efi (/dev/sda2, vfat)"});
    const std::string kept = " kept as the appliance wrote it, not reproducible: ";
    EXPECT_EQ(r.kept, (std::vector<std::string>{"/data (/dev/sda3, xfs)" + kept + "neither ext4 nor vfat",
                                                "/srv (/dev/sdb1, ext4)" + kept + "not a partition of the image's disk",
                                                "/var (/dev/mapper/vg-lv, ext4)" + kept +
                                                  "not a partition of the image's disk"}));
  }
  EXPECT_EQ(crypto::sha256_file(one), crypto::sha256_file(two));
  for (const fs::path& q : qcow2) {
    build::repack_file_systems(util::system_runner(), q, "qcow2", targets(), 1700000000, m_dir.path());
    // The same content as the re-made raw disk.
    util::RunResult same =
      util::system_runner().run({"qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", one.string(), q.string()});
    EXPECT_TRUE(same.ok()) << q;
  }

  // The partition still holds the tree, with the UUID and label it had.
  fs::path part = m_dir / "part.raw";
  formats::read_span(util::system_runner(), "test", {one, "raw", k_offset, k_size}, part);
  fsimage::Ext4Geometry g = fsimage::read_ext4_geometry(part);
  EXPECT_EQ(g.uuid, "5a5a5a5a-0000-4000-8000-000000000001");
  EXPECT_EQ(g.label, "root");
  fsimage::ext4_to_tar(part, m_dir / "tree.tar");
  util::RunResult list = util::system_runner().run({"tar", "-tvf", (m_dir / "tree.tar").string()});
  EXPECT_NE(list.out.find("./usr/b"), std::string::npos);
  EXPECT_NE(list.out.find("300000"), std::string::npos);

  // The FAT partition holds its file, with the epoch's time.
  fs::path esp = m_dir / "esp.raw";
  formats::read_span(util::system_runner(), "test", {one, "raw", k_fat_offset, k_fat_size}, esp);
  util::RunResult dir = util::system_runner().run({"mdir", "-i", esp.string(), "::EFI"});
  EXPECT_NE(dir.out.find("BOOTX64"), std::string::npos) << dir.out;
  EXPECT_NE(dir.out.find("2023-11-14"), std::string::npos) << dir.out;
}

TEST_F(repack, a_hole_in_the_new_file_system_reads_as_zeros_where_the_old_one_had_data)
{
  fs::path raw = m_dir / "disk.raw";
  test::write_text(raw, std::string(8 * k_mib, 'x'));
  fs::path small = m_dir / "small.raw";
  run({"truncate", "-s", std::to_string(4 * k_mib), small.string()});
  test::write_text(m_dir / "head", "new");
  run({"dd", "if=" + (m_dir / "head").string(), "of=" + small.string(), "conv=notrunc", "status=none"});
  ab::replace_range(small, raw, k_mib, 4 * k_mib);
  const std::string bytes = test::read_text(raw);
  EXPECT_EQ(bytes.substr(0, k_mib), std::string(k_mib, 'x'));
  EXPECT_EQ(bytes.substr(k_mib, 3), "new");
  EXPECT_EQ(bytes.substr(k_mib + 3, 4 * k_mib - 3), std::string(4 * k_mib - 3, '\0'));
  EXPECT_EQ(bytes.substr(5 * k_mib), std::string(3 * k_mib, 'x'));
}

TEST(repack_seed, the_hash_seed_follows_the_uuid_alone)
{
  const std::string a = build::hash_seed_for("5a5a5a5a-0000-4000-8000-000000000001");
  EXPECT_EQ(a, build::hash_seed_for("5a5a5a5a-0000-4000-8000-000000000001"));
  EXPECT_NE(a, build::hash_seed_for("5a5a5a5a-0000-4000-8000-000000000002"));
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '5'); // a name-based UUID
}

} // namespace
} // namespace kiln
