// kiln diff end to end: two disk images that differ in one file's content, one file's mode
// and one file's xattr, read through one read-only appliance launch and named path by
// path; the same image twice, no difference; manifests compared without a launch; bad
// input refused with one line and exit status 2 (1 means "they differ", as for diff(1)).
#include "core/manifest/manifest.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/xattr.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string k_uuid = "6b696c6e-6469-6666-0000-000000000001";

// An ext4 image of a small tree (mkfs.ext4 -d, UUID, hash seed and time fixed: two images
// of the same tree are the same bytes); `variant` changes three things at once.
fs::path
make_image(const fs::path& dir, const std::string& name, bool variant)
{
  fs::path root = dir / (name + ".tree");
  fs::create_directories(root / "etc");
  fs::create_directories(root / "usr/bin");
  test::write_text(root / "etc/motd", variant ? "hullo\n" : "hello\n");
  test::write_text(root / "usr/bin/tool", "#!/bin/sh\n");
  fs::permissions(root / "usr/bin/tool", variant ? fs::perms(0700) : fs::perms(0755));
  test::write_text(root / "etc/labelled", "x\n");
  const std::string value = variant ? "two" : "one";
  EXPECT_EQ(::setxattr((root / "etc/labelled").c_str(), "user.kiln", value.data(), value.size(), 0), 0);
  util::run_checked({"find", root.string(), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"});
  fs::path image = dir / (name + ".img");
  util::RunOptions o;
  o.env["E2FSPROGS_FAKE_TIME"] = "1700000000";
  util::RunResult r = util::run({test::require_program("mkfs.ext4", "e2fsprogs"), "-q", "-F", "-U", k_uuid, "-E",
                                 "hash_seed=" + k_uuid, "-d", root.string(), image.string(), "16M"},
                                o);
  EXPECT_TRUE(r.ok()) << r.err;
  return image;
}

util::RunResult
kiln_diff(const std::vector<std::string>& args)
{
  std::vector<std::string> all{"diff", "--cache", KILN_TEST_CACHE};
  all.insert(all.end(), args.begin(), args.end());
  return test::run_kiln(all);
}

TEST(KilnDiff, ImagesThatDifferInContentModeAndXattrAreNamedPathByPath)
{
  test::ScratchDir dir;
  fs::path a = make_image(dir.path(), "a", false);
  fs::path b = make_image(dir.path(), "b", true);
  util::RunResult r = kiln_diff({a.string(), b.string(), "--json"});
  ASSERT_EQ(r.exit_code, 1) << r.err << r.out;
  json j = json::parse(r.out);
  EXPECT_EQ(j["identical"], false);
  json want = json::parse(R"([
    {"path": "/etc/labelled", "aspect": "xattr user.kiln", "a": "one", "b": "two"},
    {"path": "/etc/motd", "aspect": "content"},
    {"path": "/usr/bin/tool", "aspect": "mode", "a": "0755", "b": "0700"}])");
  ASSERT_EQ(j["files"].size(), want.size()) << j.dump(2);
  for (std::size_t i = 0; i < want.size(); ++i) {
    for (const auto& [k, v] : want[i].items()) {
      EXPECT_EQ(j["files"][i][k], v) << i << " " << k << "\n" << j.dump(2);
    }
  }
  EXPECT_NE(r.err.find("differ: 3 in the file trees (first: /etc/labelled)"), std::string::npos) << r.err;
}

TEST(KilnDiff, TheSameTreeInTwoImagesHasNoDifference)
{
  test::ScratchDir dir;
  fs::path a = make_image(dir.path(), "a", false);
  fs::path a2 = make_image(dir.path(), "a2", false);
  util::RunResult r = kiln_diff({a.string(), a2.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("no difference (manifests and file trees)"), std::string::npos) << r.err;
}

manifest::Manifest
manifest_of(const std::string& stage_key)
{
  manifest::Manifest m;
  m.name = "node";
  m.kiln_version = "0.1.0";
  m.libguestfs_version = "1.48.6";
  m.recipe_name = "node";
  m.recipe_digest = std::string(64, 'a');
  m.stages = {{"prep", stage_key}};
  m.packages = {{"bash", "5.2.15-2", "amd64"}};
  return m;
}

TEST(KilnDiff, ManifestsAreComparedWithoutALaunchAndBadInputIsRefused)
{
  test::ScratchDir dir;
  fs::create_directories(dir / "one");
  fs::create_directories(dir / "two");
  manifest::write_manifest(dir / "one/node.manifest.json", manifest_of(std::string(64, '1')));
  manifest::write_manifest(dir / "two/node.manifest.json", manifest_of(std::string(64, '2')));
  util::RunResult r = kiln_diff({(dir / "one/node.manifest.json").string(), (dir / "two/node.manifest.json").string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "stage prep: " + std::string(64, '1') + " -> " + std::string(64, '2') + "\n");
  EXPECT_NE(r.err.find("file trees not compared"), std::string::npos) << r.err; // no image listed

  util::RunResult mixed = kiln_diff({(dir / "one/node.manifest.json").string(), (dir / "x.img").string()});
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_EQ(mixed.err, "kiln: error: diff: give two manifests (NAME.manifest.json) or two images, not one of each\n");
  util::RunResult missing = kiln_diff({(dir / "a.img").string(), (dir / "b.img").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err, "kiln: error: " + (dir / "a.img").string() + ": no such image file\n") << missing.err;
  EXPECT_EQ(missing.out, "");
}

} // namespace
} // namespace kiln
