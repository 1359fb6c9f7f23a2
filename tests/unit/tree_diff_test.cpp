// kiln diff's two halves without an appliance: file trees read from tars that GNU tar
// writes the way libguestfs' tar_out does (numeric owners, xattrs), compared entry by
// entry; and manifests compared section by section.
#include "core/archive/tree.hpp"
#include "core/manifest/diff.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/xattr.h>
#include <unistd.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using archive::TreeDifference;

// A tree of a few files, all stamped with one time; `variant` changes one thing each.
fs::path
make_tree(const fs::path& dir, const std::string& name, const std::string& variant)
{
  fs::path root = dir / name;
  fs::create_directories(root / "etc");
  fs::create_directories(root / "usr/bin");
  test::write_text(root / "etc/motd", variant == "content" ? "hullo\n" : "hello\n");
  test::write_text(root / "usr/bin/tool", "#!/bin/sh\n");
  fs::permissions(root / "usr/bin/tool", variant == "mode" ? fs::perms(0700) : fs::perms(0755));
  test::write_text(root / "etc/labelled", "x\n");
  const std::string value = variant == "xattr" ? "two" : "one";
  EXPECT_EQ(::setxattr((root / "etc/labelled").c_str(), "user.kiln", value.data(), value.size(), 0), 0);
  fs::create_symlink(variant == "link" ? "tool2" : "tool", root / "usr/bin/alias");
  if (variant == "owner") {
    EXPECT_EQ(::lchown((root / "etc/motd").c_str(), 1500, 1500), 0);
  }
  if (variant == "extra") {
    fs::create_directories(root / "var/cache/deep/er");
    test::write_text(root / "var/cache/deep/er/file", "y\n");
  }
  util::RunResult t =
    util::run({"touch", "-h", "-d", variant == "mtime" ? "@1700000001" : "@1700000000", (root / "etc/motd").string()});
  EXPECT_TRUE(t.ok()) << t.err;
  fs::path tar = dir / (name + ".tar");
  util::RunResult r = util::run(
    {"tar", "-C", root.string(), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", tar.string(), "."});
  EXPECT_TRUE(r.ok()) << r.err;
  return tar;
}

std::vector<TreeDifference>
diff_with(const std::string& variant)
{
  test::ScratchDir dir;
  archive::Tree a = archive::read_tree(make_tree(dir.path(), "a", ""), "a");
  archive::Tree b = archive::read_tree(make_tree(dir.path(), "b", variant), "b");
  std::vector<TreeDifference> d = archive::diff_trees(a, b);
  // The directories' own times differ between two trees made one after the other: only
  // the entries under test are looked at.
  std::erase_if(d, [](const TreeDifference& x) { return x.aspect == "mtime" && x.path != "/etc/motd"; });
  return d;
}

std::string
text(const std::vector<TreeDifference>& d)
{
  std::string out;
  for (const auto& x : d) {
    out += x.path + " | " + x.aspect + " | " + x.a + " | " + x.b + "\n";
  }
  return out;
}

TEST(TreeDiff, TheSameTreeTwiceHasNoDifference)
{
  EXPECT_EQ(text(diff_with("")), "");
}

TEST(TreeDiff, ContentModeXattrOwnerLinkAndTimeEachNamed)
{
  auto content = diff_with("content");
  ASSERT_EQ(content.size(), 1u) << text(content);
  EXPECT_EQ(content[0].path, "/etc/motd");
  EXPECT_EQ(content[0].aspect, "content");
  EXPECT_NE(content[0].a, content[0].b);
  EXPECT_EQ(text(diff_with("mode")), "/usr/bin/tool | mode | 0755 | 0700\n");
  EXPECT_EQ(text(diff_with("xattr")), "/etc/labelled | xattr user.kiln | one | two\n");
  EXPECT_EQ(text(diff_with("owner")), "/etc/motd | owner | 0:0 | 1500:1500\n");
  EXPECT_EQ(text(diff_with("link")), "/usr/bin/alias | link | tool | tool2\n");
  EXPECT_EQ(text(diff_with("mtime")), "/etc/motd | mtime | 1700000000 | 1700000001\n");
}

TEST(TreeDiff, ADirectoryOnlyInOneTreeStandsForEverythingBeneathIt)
{
  auto d = diff_with("extra");
  EXPECT_EQ(text(d), "/var | only in B |  | d\n");
}

TEST(TreeDiff, ADamagedTarOrOnePastTheLimitsIsRefusedByName)
{
  test::ScratchDir dir;
  fs::path tar = make_tree(dir.path(), "a", "");
  archive::TreeLimits few;
  few.max_entries = 3;
  EXPECT_NE(std::string(test::error_of([&] { archive::read_tree(tar, "image a", few); }).what())
              .find("image a: more than 3 entries"),
            std::string::npos);
  std::string bytes = test::read_text(tar);
  test::write_text(dir.path() / "cut.tar", bytes.substr(0, 700) + std::string(300, '\x7f'));
  EXPECT_NE(std::string(test::error_of([&] { archive::read_tree(dir.path() / "cut.tar", "image a"); }).what())
              .find("image a: "),
            std::string::npos);
}

TEST(TreeDiff, BinaryXattrValuesArePrintedInHex)
{
  EXPECT_EQ(archive::printable(std::string("system_u:object_r:etc_t:s0\0", 27)), "system_u:object_r:etc_t:s0");
  EXPECT_EQ(archive::printable(std::string("\x01\x00\xff", 3)), "0x0100ff");
}

manifest::Manifest
manifest_of(const std::string& bash, const std::string& stage_key)
{
  manifest::Manifest m;
  m.name = "node";
  m.kiln_version = "0.1.0";
  m.recipe_name = "node";
  m.recipe_digest = std::string(64, 'a');
  m.inputs = {{"base", "bootstrap bookworm", std::string(64, 'b')}};
  m.stages = {{"prep", stage_key}, {"finalize", std::string(64, 'f')}};
  m.packages = {{"bash", bash, "amd64"}, {"coreutils", "9.1-1", "amd64"}};
  m.files = {{"node.qcow2", "image", "qcow2", std::string(64, bash == "5.2.15-2" ? 'c' : 'd'), 100}};
  return m;
}

TEST(ManifestDiff, StageKeysPackagesAndFilesThatDifferAreListedBySection)
{
  EXPECT_TRUE(manifest::diff_manifests(manifest_of("5.2.15-2", std::string(64, '1')),
                                       manifest_of("5.2.15-2", std::string(64, '1')))
                .empty());
  manifest::Manifest b = manifest_of("5.2.15-3", std::string(64, '2'));
  b.packages.push_back({"vim", "9.0", "amd64"});
  auto d = manifest::diff_manifests(manifest_of("5.2.15-2", std::string(64, '1')), b);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].section, "stage");
  EXPECT_EQ(d[0].name, "prep");
  EXPECT_EQ(d[1].section, "package");
  EXPECT_EQ(d[1].name, "bash.amd64");
  EXPECT_EQ(d[1].a, "5.2.15-2");
  EXPECT_EQ(d[1].b, "5.2.15-3");
  EXPECT_EQ(d[2].name, "vim.amd64");
  EXPECT_EQ(d[2].a, "");
  EXPECT_EQ(d[3].section, "file");
  EXPECT_EQ(manifest::to_json(d[2])["a"], nullptr);
}

} // namespace
} // namespace kiln
