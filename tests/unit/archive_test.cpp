#include "core/archive/archive.hpp"
#include "core/util/error.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace kiln::archive {
namespace {

namespace fs = std::filesystem;

TEST(Archive, TarKeepsModesAndLinksAndSetsOwners)
{
  test::ScratchDir dir;
  test::write_text(dir / "tree/etc/b.conf", "b");
  test::write_text(dir / "tree/etc/a.conf", "aa");
  fs::create_symlink("a.conf", dir / "tree/etc/link");
  ::chmod((dir / "tree/etc/a.conf").c_str(), 0600);
  TarOptions options;
  options.uid = 1000;
  options.gid = 2000;
  options.mtime = 86400;
  tar_directory(dir / "tree", dir / "out.tar", options);
  auto entries = list(dir / "out.tar");
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "etc/");
  EXPECT_EQ(entries[0].type, 'd');
  EXPECT_EQ(entries[1].name, "etc/a.conf"); // sorted by name
  EXPECT_EQ(entries[1].mode, 0600u);
  EXPECT_EQ(entries[1].size, 2u);
  EXPECT_EQ(entries[1].uid, 1000u);
  EXPECT_EQ(entries[1].gid, 2000u);
  EXPECT_EQ(entries[3].name, "etc/link");
  EXPECT_EQ(entries[3].type, 'l');
  EXPECT_EQ(entries[3].link, "a.conf");
  // The real tar reads it.
  auto r = util::run({"tar", "-tvf", (dir / "out.tar").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1000/2000"), std::string::npos) << r.out;
}

TEST(Archive, SameTreeSameBytes)
{
  test::ScratchDir dir;
  test::write_text(dir / "tree/x", "x");
  tar_directory(dir / "tree", dir / "1.tar", {});
  tar_directory(dir / "tree", dir / "2.tar", {});
  EXPECT_EQ(test::read_text(dir / "1.tar"), test::read_text(dir / "2.tar"));
}

TEST(Archive, RefusesSpecialFiles)
{
  test::ScratchDir dir;
  fs::create_directories(dir / "tree");
  ASSERT_EQ(::mkfifo((dir / "tree/fifo").c_str(), 0644), 0);
  EXPECT_THROW(tar_directory(dir / "tree", dir / "out.tar", {}), Error);
}

// A full disk says so: libarchive's "Write error" alone sent a CI run's reader hunting.
TEST(Archive, WriteFailureCarriesTheSystemsReason)
{
  test::ScratchDir dir;
  // Larger than libarchive's output block, so the write happens before the close.
  test::write_text(dir / "tree/big", std::string(1 << 20, 'x'));
  try {
    tar_directory(dir / "tree", "/dev/full", {});
    FAIL() << "writing to /dev/full succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Write error: No space left on device"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace kiln::archive
