// FAT times pinned to the epoch (fsimage/fat_times.hpp): FAT12, FAT16 and FAT32 volumes
// made by the real mkfs.vfat and filled by mtools at two different moments (other
// modification times, a file deleted) become byte-identical; every short entry, "." and
// ".." and deleted ones included, carries the epoch; long names survive, fsck.fat finds
// nothing wrong; what is not a FAT volume kiln can walk is refused with a reason.
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/runner.hpp"
#include "image/fsimage/fat_times.hpp"
#include "support/test_support.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t k_epoch = 1700000000; // 2023-11-14 22:13:20 UTC

class fat_times : public ::testing::Test {
protected:
  void run(const std::vector<std::string>& argv)
  {
    util::RunResult r = util::system_runner().run(argv);
    ASSERT_TRUE(r.ok()) << argv.front() << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.tail(3);
  }

  // A FAT volume of `mib` MiB (`fat`: 12, 16 or 32) holding EFI/BOOT/BOOTX64.EFI,
  // EFI/debian/grub.cfg, a deeper tree with a long name, and a file deleted again; the
  // sources' modification time is `stamp` (touch -d).
  fs::path volume(const std::string& name, unsigned mib, unsigned fat, const std::string& stamp)
  {
    const fs::path img = m_dir / (name + ".img");
    const std::string mtools = test::require_program("mcopy", "mtools");
    run({"truncate", "-s", std::to_string(mib) + "M", img.string()});
    run({test::require_program("mkfs.vfat", "dosfstools"), "-F", std::to_string(fat), "-n", "KILN-ESP", "-i",
         "1234abcd", img.string()});
    const fs::path src = m_dir / (name + "-src");
    test::write_text(src / "BOOTX64.EFI", std::string(70000, 'e'));
    test::write_text(src / "grub.cfg", "search --label kiln-boot\n");
    test::write_text(src / "gone", "temporary\n");
    for (const char* f : {"BOOTX64.EFI", "grub.cfg", "gone"}) {
      run({"touch", "-d", stamp, (src / f).string()});
    }
    const std::string i = img.string();
    run({"mmd", "-i", i, "::EFI", "::EFI/BOOT", "::EFI/debian", "::EFI/debian/fonts", "::EFI/debian/fonts/deeper"});
    run({"mcopy", "-m", "-i", i, (src / "BOOTX64.EFI").string(), "::EFI/BOOT/BOOTX64.EFI"});
    run({"mcopy", "-m", "-i", i, (src / "gone").string(), "::EFI/debian/gone"});
    run({"mcopy", "-m", "-i", i, (src / "grub.cfg").string(), "::EFI/debian/grub.cfg"});
    run({"mcopy", "-m", "-i", i, (src / "grub.cfg").string(), "::EFI/debian/fonts/deeper/unicode-font.pf2"});
    run({"mdel", "-i", i, "::EFI/debian/gone"});
    return img;
  }

  // Every 32-byte directory entry of `img` whose 11-byte short name is `name`.
  std::vector<std::string> entries(const fs::path& img, const std::string& name)
  {
    const std::string bytes = test::read_text(img);
    std::vector<std::string> out;
    for (std::size_t at = 0; at + 32 <= bytes.size(); at += 32) {
      if (bytes.compare(at, 11, name) == 0) {
        out.push_back(bytes.substr(at, 32));
      }
    }
    return out;
  }

  test::ScratchDir m_dir;
};

std::uint16_t
word(const std::string& entry, std::size_t at)
{
  return static_cast<std::uint16_t>(static_cast<unsigned char>(entry[at]) |
                                    (static_cast<unsigned char>(entry[at + 1]) << 8));
}

TEST(fat_time, encodes_utc_in_two_second_steps_and_clamps_to_what_fat_holds)
{
  fsimage::FatTime t = fsimage::fat_time(k_epoch);
  EXPECT_EQ(t.date, (43 << 9) | (11 << 5) | 14); // 2023-11-14
  EXPECT_EQ(t.time, (22 << 11) | (13 << 5) | 10); // 22:13:20
  EXPECT_EQ(fsimage::fat_time(k_epoch + 1).time, t.time); // :21 is :20
  fsimage::FatTime early = fsimage::fat_time(0);
  EXPECT_EQ(early.date, (0 << 9) | (1 << 5) | 1); // 1980-01-01
  EXPECT_EQ(early.time, 0);
  fsimage::FatTime late = fsimage::fat_time(5000000000);
  EXPECT_EQ(late.date, (127 << 9) | (12 << 5) | 31); // 2107-12-31
  EXPECT_EQ(late.time, (23 << 11) | (59 << 5) | 29); // 23:59:58
}

TEST_F(fat_times, volumes_written_at_other_moments_become_identical_in_every_fat_type)
{
  struct Kind {
    unsigned fat;
    unsigned mib;
  };
  for (const Kind k : {Kind{12, 2}, Kind{16, 32}, Kind{32, 64}}) {
    const std::string n = "fat" + std::to_string(k.fat);
    fs::path one = volume(n + "-one", k.mib, k.fat, "2021-03-04 05:06:07");
    fs::path two = volume(n + "-two", k.mib, k.fat, "2024-08-09 10:11:12");
    ASSERT_NE(crypto::sha256_file(one), crypto::sha256_file(two)) << n;
    fsimage::FatTimesReport r = fsimage::set_fat_times(one, k_epoch);
    fsimage::set_fat_times(two, k_epoch);
    EXPECT_EQ(crypto::sha256_file(one), crypto::sha256_file(two)) << n;
    // Root, EFI, BOOT, debian, fonts, deeper.
    EXPECT_EQ(r.directories, 6u) << n;
    // Five directories' "." and ".." (10), their five entries, two files kept, one deleted,
    // two more files and the volume label.
    EXPECT_GE(r.entries, 18u) << n;

    // Every time field of the loader's entry, and of "." in a subdirectory, is the epoch.
    fsimage::FatTime want = fsimage::fat_time(k_epoch);
    std::vector<std::string> found = entries(one, "BOOTX64 EFI");
    std::vector<std::string> dots = entries(one, ".          ");
    ASSERT_EQ(found.size(), 1u) << n;
    ASSERT_EQ(dots.size(), 5u) << n;
    for (const std::string& e : {found[0], dots[2]}) {
      EXPECT_EQ(e[13], 0);
      EXPECT_EQ(word(e, 14), want.time);
      EXPECT_EQ(word(e, 16), want.date);
      EXPECT_EQ(word(e, 18), want.date);
      EXPECT_EQ(word(e, 22), want.time);
      EXPECT_EQ(word(e, 24), want.date);
    }

    // Still a sound volume, with its long names and contents.
    util::RunResult fsck =
      util::system_runner().run({test::require_program("fsck.fat", "dosfstools"), "-n", one.string()});
    EXPECT_TRUE(fsck.ok()) << n << ": " << fsck.out << fsck.err;
    util::RunResult dir = util::system_runner().run({"mdir", "-i", one.string(), "-/", "::EFI"});
    EXPECT_NE(dir.out.find("unicode-font.pf2"), std::string::npos) << dir.out; // a long name
    EXPECT_NE(dir.out.find("2023-11-14"), std::string::npos) << dir.out;
    EXPECT_EQ(dir.out.find("2021-"), std::string::npos) << dir.out;
    util::RunResult cat = util::system_runner().run({"mtype", "-i", one.string(), "::EFI/debian/grub.cfg"});
    EXPECT_EQ(cat.out, "search --label kiln-boot\n");
  }
}

TEST_F(fat_times, refuses_what_is_not_a_fat_volume_it_can_walk)
{
  const fs::path zeros = m_dir / "zeros.img";
  test::write_text(zeros, std::string(1 << 20, '\0'));
  try {
    fsimage::set_fat_times(zeros, k_epoch);
    FAIL() << "zeros taken for FAT";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), zeros.string());
    EXPECT_NE(std::string(e.what()).find("no boot sector signature"), std::string::npos) << e.what();
  }

  // Nested past the limit.
  fs::path deep = volume("deep", 2, 12, "2021-03-04 05:06:07");
  fsimage::FatTimesLimits shallow;
  shallow.max_depth = 2;
  EXPECT_THROW(fsimage::set_fat_times(deep, k_epoch, shallow), Error);

  // A FAT32 directory whose chain ends in itself: the EFI directory's cluster points back
  // to itself in the FAT.
  fs::path loop = volume("loop", 64, 32, "2021-03-04 05:06:07");
  std::string bytes = test::read_text(loop);
  std::vector<std::string> efi = entries(loop, "EFI        ");
  ASSERT_FALSE(efi.empty());
  const std::uint32_t cluster =
    static_cast<std::uint32_t>(word(efi[0], 26)) | (static_cast<std::uint32_t>(word(efi[0], 20)) << 16);
  const std::uint32_t reserved = word(bytes.substr(0, 32), 14);
  const std::uint32_t fat_at = reserved * 512 + cluster * 4;
  {
    util::Fd fd = util::open_file(loop, O_WRONLY);
    const unsigned char self[4] = {static_cast<unsigned char>(cluster & 0xff), static_cast<unsigned char>(cluster >> 8),
                                   static_cast<unsigned char>(cluster >> 16),
                                   static_cast<unsigned char>(cluster >> 24)};
    util::pwrite_full(fd.get(), reinterpret_cast<const char*>(self), 4, fat_at, loop.string());
  }
  try {
    fsimage::set_fat_times(loop, k_epoch);
    FAIL() << "a looping chain walked";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loops"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace kiln
