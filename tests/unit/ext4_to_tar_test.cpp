// An ext4 image's tree read back with libext2fs (ext4_to_tar.hpp): the image is made
// with mke2fs and filled with debugfs (no root, no mount), so every field is set by
// hand; the tar is read with kiln's own tree reader and compared field by field.
#include "core/archive/tree.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/runner.hpp"
#include "image/fsimage/ext4_image.hpp"
#include "image/fsimage/ext4_to_tar.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <archive.h>
#include <archive_entry.h>
#include <chrono>
#include <thread>

namespace kiln {
namespace {

namespace fs = std::filesystem;

// The moment every fixture file system here is made at (2023-11-14 22:13:20 UTC).
constexpr long k_fixture_time = 1700000000;

class ext4_to_tar : public ::testing::Test {
protected:
  void SetUp() override
  {
    m_image = m_dir / "fs.img";
    test::write_text(m_dir / "passwd", "root:x:0:0::/root:/bin/sh\n");
    test::write_text(m_dir / "big", std::string(3 << 20, 'k') + "tail");
    test::write_text(m_dir / "label", std::string("system_u:object_r:etc_t:s0") + '\0');
    run({"truncate", "-s", "64M", m_image.string()});
    run({test::require_program("mkfs.ext4", "e2fsprogs"), "-q", "-F", "-b", "4096", "-L", "kilnroot", "-U",
         "0b1c2d3e-0000-4000-8000-00000000abcd", "-E", "hash_seed=6f2c1d3e-1111-4222-8333-444455556666",
         m_image.string()});
  }

  // Every e2fsprogs run here takes its clock from E2FSPROGS_FAKE_TIME (mke2fs and
  // libext2fs 1.47.0 read it for every time they stamp), so a fixture's bytes do not depend
  // on the second it was made in: two made a second apart are the same (a test checks).
  void run(const std::vector<std::string>& argv)
  {
    util::RunOptions options;
    options.env["E2FSPROGS_FAKE_TIME"] = std::to_string(k_fixture_time);
    util::RunResult r = util::system_runner().run(argv, options);
    ASSERT_TRUE(r.ok()) << argv.front() << ": " << r.tail(3);
  }

  // debugfs -w with `requests` one per line.
  void debugfs(const std::string& requests)
  {
    test::write_text(m_dir / "requests", requests);
    run({test::require_program("debugfs", "e2fsprogs"), "-w", "-f", (m_dir / "requests").string(), m_image.string()});
  }

  // The tar's member names in their order.
  std::vector<std::string> names(const fs::path& tar)
  {
    std::vector<std::string> out;
    struct archive* a = archive_read_new();
    archive_read_support_format_all(a);
    EXPECT_EQ(archive_read_open_filename(a, tar.c_str(), 1 << 16), ARCHIVE_OK);
    struct archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      out.emplace_back(archive_entry_pathname(e));
    }
    archive_read_free(a);
    return out;
  }

  test::ScratchDir m_dir;
  fs::path m_image;
};

TEST_F(ext4_to_tar, every_kind_of_entry_and_its_metadata_come_back)
{
  const std::string long_target = "/usr/share/" + std::string(90, 't');
  debugfs("mkdir etc\n"
          "mkdir dev\n"
          "mkdir usr\n"
          "write " +
          (m_dir / "passwd").string() +
          " etc/passwd\n"
          "sif etc/passwd uid 1500\n"
          "sif etc/passwd gid 4242\n"
          "sif etc/passwd mode 0104750\n"
          "sif etc/passwd mtime 20231114221320\n"
          "ea_set -f " +
          (m_dir / "label").string() +
          " etc/passwd security.selinux\n"
          "ea_set etc/passwd user.kiln value\n"
          "ln etc/passwd etc/passwd-hard\n"
          "sif etc/passwd links_count 2\n"
          "write " +
          (m_dir / "big").string() +
          " usr/big\n"
          "symlink etc/short ../usr/big\n"
          "symlink etc/long " +
          long_target +
          "\n"
          "mknod dev/null c 1 3\n"
          "mknod dev/sda b 8 0\n"
          "mknod dev/fifo p\n");
  fs::path tar = m_dir / "tree.tar";
  fsimage::TreeReadReport report = fsimage::ext4_to_tar(m_image, tar);
  archive::Tree tree = archive::read_tree(tar, "tree");

  ASSERT_TRUE(tree.count("/etc/passwd"));
  const archive::TreeEntry& passwd = tree.at("/etc/passwd");
  EXPECT_EQ(passwd.type, 'f');
  EXPECT_EQ(passwd.mode, 04750u);
  EXPECT_EQ(passwd.uid, 1500);
  EXPECT_EQ(passwd.gid, 4242);
  EXPECT_EQ(passwd.mtime, 1700000000);
  EXPECT_EQ(passwd.sha256, crypto::sha256_hex(test::read_text(m_dir / "passwd")));
  EXPECT_EQ(passwd.xattrs.at("security.selinux"), test::read_text(m_dir / "label"));
  EXPECT_EQ(passwd.xattrs.at("user.kiln"), "value");
  ASSERT_TRUE(tree.count("/etc/passwd-hard"));
  EXPECT_EQ(tree.at("/etc/passwd-hard").type, 'h');
  EXPECT_EQ(tree.at("/etc/passwd-hard").link, "/etc/passwd");
  EXPECT_EQ(tree.at("/usr/big").size, (3u << 20) + 4);
  EXPECT_EQ(tree.at("/usr/big").sha256, crypto::sha256_hex(test::read_text(m_dir / "big")));
  EXPECT_EQ(tree.at("/etc/short").type, 'l');
  EXPECT_EQ(tree.at("/etc/short").link, "../usr/big");
  EXPECT_EQ(tree.at("/etc/long").link, long_target); // a slow symlink: its target in a block
  EXPECT_EQ(tree.at("/dev/null").type, 'c');
  EXPECT_EQ(tree.at("/dev/sda").type, 'b');
  EXPECT_EQ(tree.at("/dev/fifo").type, 'p');
  EXPECT_EQ(tree.count("/lost+found"), 0u); // mke2fs makes its own
  EXPECT_EQ(report.bytes, test::read_text(m_dir / "passwd").size() + (3u << 20) + 4);

  // Sorted, each directory before what it holds.
  std::vector<std::string> order = names(tar);
  ASSERT_FALSE(order.empty());
  std::vector<std::string> sorted = order;
  std::sort(sorted.begin() + 1, sorted.end());
  EXPECT_EQ(order, sorted);

  fsimage::Ext4Geometry g = fsimage::read_ext4_geometry(m_image);
  EXPECT_EQ(g.uuid, "0b1c2d3e-0000-4000-8000-00000000abcd");
  EXPECT_EQ(g.label, "kilnroot");
  EXPECT_EQ(g.block_size, 4096u);
  EXPECT_EQ(g.blocks, 16384u);
  EXPECT_GT(g.inodes, 0u);
  EXPECT_EQ(g.inode_size, 256u);
}

// The use kiln makes of it: a file system re-made from its tree (make_ext4_from_tar) has
// the same tree, and its bytes depend on the tree alone, not on how the original was
// written (here: the same files created in two orders, so with other inode numbers and
// block places).
TEST_F(ext4_to_tar, a_remade_image_keeps_the_tree_and_depends_on_nothing_else)
{
  const std::string files =
    "write " + (m_dir / "passwd").string() + " etc/passwd\n" + "write " + (m_dir / "big").string() + " usr/big\n";
  const std::string dirs = "mkdir etc\nmkdir usr\n";
  const std::string meta = "sif etc/passwd uid 1500\n"
                           "sif usr/big mtime 20231114221320\n"
                           "ea_set etc/passwd user.kiln value\n"
                           "symlink etc/short ../usr/big\n";
  debugfs(dirs + files + meta);
  fs::path first = m_dir / "first.img";
  fs::rename(m_image, first);
  SetUp(); // a fresh empty file system
  debugfs("mkdir usr\nmkdir tmp\nwrite " + (m_dir / "big").string() + " usr/big\nmkdir etc\nwrite " +
          (m_dir / "passwd").string() + " etc/passwd\nrmdir tmp\n" + meta);
  fs::path second = m_image;
  ASSERT_NE(crypto::sha256_file(first), crypto::sha256_file(second));

  fsimage::Ext4Geometry g = fsimage::read_ext4_geometry(first);
  fsimage::Ext4Params params;
  params.size = g.blocks * g.block_size;
  params.label = g.label;
  params.uuid = g.uuid;
  params.hash_seed = "6f2c1d3e-1111-4222-8333-444455556666";
  params.epoch = 2000000000; // after every mtime here: none is clamped
  params.block_size = g.block_size;
  params.inode_size = g.inode_size;
  params.inodes = g.inodes;
  std::vector<std::string> digests;
  for (const fs::path& image : {first, second}) {
    fs::path tar = m_dir / (image.stem().string() + ".tar");
    fs::path remade = m_dir / (image.stem().string() + ".remade");
    fsimage::ext4_to_tar(image, tar);
    fsimage::make_ext4_from_tar(util::system_runner(), tar, remade, params);
    digests.push_back(crypto::sha256_file(remade));
    fs::path again = m_dir / (image.stem().string() + ".again.tar");
    fsimage::ext4_to_tar(remade, again);
    for (const auto& d : archive::diff_trees(archive::read_tree(tar, "a"), archive::read_tree(again, "b"))) {
      ADD_FAILURE() << d.path << ": " << d.aspect << ": " << d.a << " / " << d.b;
    }
    EXPECT_EQ(fsimage::read_ext4_geometry(remade).uuid, g.uuid);
  }
  EXPECT_EQ(digests[0], digests[1]);
}

// The fixtures above are the same bytes whenever they are made: two made across a second
// boundary (the moment straddled once made a_remade_image_... compare two trees whose root
// directories' mtimes differed by a second).
TEST_F(ext4_to_tar, fixtures_do_not_depend_on_the_moment_they_are_made)
{
  const std::string requests = "mkdir etc\nwrite " + (m_dir / "passwd").string() + " etc/passwd\n";
  debugfs(requests);
  fs::path first = m_dir / "first.img";
  fs::rename(m_image, first);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  SetUp();
  debugfs(requests);
  EXPECT_EQ(crypto::sha256_file(first), crypto::sha256_file(m_image));
}

TEST_F(ext4_to_tar, device_numbers_survive)
{
  debugfs("mknod null c 1 3\nmknod big b 259 300\n");
  fs::path tar = m_dir / "tree.tar";
  fsimage::ext4_to_tar(m_image, tar);
  struct archive* a = archive_read_new();
  archive_read_support_format_all(a);
  ASSERT_EQ(archive_read_open_filename(a, tar.c_str(), 1 << 16), ARCHIVE_OK);
  std::map<std::string, std::pair<unsigned, unsigned>> devices;
  struct archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) == AE_IFCHR || archive_entry_filetype(e) == AE_IFBLK) {
      devices[archive_entry_pathname(e)] = {static_cast<unsigned>(archive_entry_rdevmajor(e)),
                                            static_cast<unsigned>(archive_entry_rdevminor(e))};
    }
  }
  archive_read_free(a);
  EXPECT_EQ(devices.at("./null"), std::make_pair(1u, 3u));
  EXPECT_EQ(devices.at("./big"), std::make_pair(259u, 300u));
}

TEST_F(ext4_to_tar, limits_and_foreign_files_are_refused_with_nothing_written)
{
  debugfs("mkdir a\nmkdir a/b\nmkdir a/b/c\n");
  fs::path tar = m_dir / "tree.tar";
  fsimage::TreeReadLimits tight;
  tight.max_depth = 2;
  Error e = test::error_of([&] { fsimage::ext4_to_tar(m_image, tar, tight); });
  EXPECT_NE(e.reason().find("deeper than 2"), std::string::npos) << e.reason();
  EXPECT_FALSE(fs::exists(tar));
  tight = {};
  tight.max_entries = 2;
  EXPECT_NE(test::error_of([&] { fsimage::ext4_to_tar(m_image, tar, tight); }).reason().find("more than 2 entries"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(tar));

  Error foreign = test::error_of([&] { fsimage::ext4_to_tar(m_dir / "passwd", tar); });
  EXPECT_EQ(foreign.subject(), (m_dir / "passwd").string());
  EXPECT_NE(foreign.reason().find("cannot open as ext2/3/4"), std::string::npos);
}

TEST_F(ext4_to_tar, a_journal_left_to_replay_is_refused)
{
  debugfs("feature needs_recovery\n");
  Error e = test::error_of([&] { fsimage::read_ext4_geometry(m_image); });
  EXPECT_NE(e.reason().find("journal to replay"), std::string::npos) << e.reason();
}

} // namespace
} // namespace kiln
