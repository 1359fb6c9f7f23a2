// Every file system kiln creates must be one CentOS 7 (kernel 3.10, GRUB 2.02,
// e2fsprogs 1.42.9, xfsprogs 4.5) can mount, check and boot from, whatever the build
// host's mkfs defaults are. Checked from outside with the real tools on the partitions
// of the suite's A/B fixture and on the plain layout's root made from a bootstrap tar:
//   XFS   crc=1 ftype=1, and no finobt, sparse inodes, reflink, rmapbt, bigtime,
//         inobtcount, nrext64 (xfs_db on the superblock)
//   ext4  no metadata_csum, metadata_csum_seed, orphan_file, 64bit (dumpe2fs -h)
//   FAT   the ESP checks clean and carries its label (fsck.fat, fatlabel)
#include "core/crypto/sha256.hpp"
#include "support/ab_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <regex>

#include <sstream>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Part {
  std::string name;
  std::uint64_t start = 0;
  std::uint64_t size = 0;
};

std::vector<Part>
partitions(const fs::path& raw)
{
  auto r = util::run({test::require_program("sfdisk", "fdisk"), "--json", raw.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<Part> out;
  json t = json::parse(r.out)["partitiontable"];
  for (const auto& p : t["partitions"]) {
    out.push_back({p.value("name", ""), p["start"].get<std::uint64_t>() * 512, p["size"].get<std::uint64_t>() * 512});
  }
  return out;
}

fs::path
extract(const fs::path& raw, const Part& p, const fs::path& out)
{
  auto r = util::run({"qemu-img", "convert", "-q", "-O", "raw", "--image-opts",
                      "driver=raw,offset=" + std::to_string(p.start) + ",size=" + std::to_string(p.size) +
                        ",file.driver=file,file.filename=" + raw.string(),
                      out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

void
expect_centos7_ext4(const fs::path& image, const std::string& what)
{
  auto r = util::run({test::require_program("dumpe2fs", "e2fsprogs"), "-h", image.string()});
  ASSERT_EQ(r.exit_code, 0) << what << r.err;
  std::string features;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Filesystem features:", 0) == 0) {
      features = line.substr(line.find(':') + 1) + " ";
    }
  }
  ASSERT_FALSE(features.empty()) << what << r.out;
  for (const char* bad : {" metadata_csum ", " metadata_csum_seed ", " orphan_file ", " 64bit "}) {
    EXPECT_EQ(features.find(bad), std::string::npos) << what << ": has" << bad << "in" << features;
  }
  for (const char* good : {" has_journal ", " extent ", " filetype "}) {
    EXPECT_NE(features.find(good), std::string::npos) << what << ": lacks" << good << "in" << features;
  }
  // The host's e2fsck agrees it is clean.
  auto fsck = util::run({"e2fsck", "-fn", image.string()});
  EXPECT_EQ(fsck.exit_code, 0) << what << fsck.out << fsck.err;
}

void
expect_centos7_xfs(const fs::path& image, const std::string& what)
{
  const std::string xfs_db = test::require_program("xfs_db", "xfsprogs");
  auto version = util::run({xfs_db, "-r", "-c", "version", image.string()});
  ASSERT_EQ(version.exit_code, 0) << what << version.err;
  std::string v = version.out;
  EXPECT_NE(v.find("V5"), std::string::npos) << what << v;
  EXPECT_NE(v.find("CRC"), std::string::npos) << what << v;
  EXPECT_NE(v.find("FTYPE"), std::string::npos) << what << v;
  for (const char* bad : {"FINOBT", "SPARSE_INODES", "REFLINK", "RMAPBT", "BIGTIME", "INOBTCNT", "NREXT64"}) {
    EXPECT_EQ(v.find(bad), std::string::npos) << what << ": " << bad << " in " << v;
  }
  // The raw superblock: no read-only-compatible feature at all (finobt 1, rmapbt 2,
  // reflink 4, inobtcnt 8), and ftype (1) the only incompatible one (sparse inodes 2,
  // meta_uuid 4, bigtime 8, needsrepair 16, nrext64 32).
  auto sb = util::run({xfs_db, "-r", "-c", "sb 0", "-c", "print features_ro_compat features_incompat", image.string()});
  ASSERT_EQ(sb.exit_code, 0) << what << sb.err;
  EXPECT_NE(sb.out.find("features_ro_compat = 0\n"), std::string::npos) << what << sb.out;
  EXPECT_NE(sb.out.find("features_incompat = 0x1\n"), std::string::npos) << what << sb.out;
  auto check = util::run({test::require_program("xfs_repair", "xfsprogs"), "-n", "-f", image.string()});
  EXPECT_EQ(check.exit_code, 0) << what << check.out << check.err;
}

// Every file system of the shared A/B fixture (tests/support/ab_fixture), and the plain
// layout's root: the fixture's base layer, which kiln made from the bootstrap tar
// (disk_from_tar) and every later stage only wrote into. A/B slots made ext4 (root_fs:
// ext4) go through the same mkfs call as kiln-boot (ab_layout.cpp make_fs), checked here.
TEST(MkfsFeatures, EveryFileSystemKilnMakesSuitsCentOS7)
{
  const test::AbFixture& fx = test::ab_fixture();
  ASSERT_TRUE(fx.error.empty()) << fx.error;
  test::ScratchDir dir;
  const fs::path raw = fx.out / "ab-fixture.raw";
  std::map<std::string, Part> parts;
  for (const auto& p : partitions(raw)) {
    parts[p.name] = p;
  }
  ASSERT_EQ(parts.size(), 6u);
  expect_centos7_ext4(extract(raw, parts["kiln-boot"], dir / "boot.img"), "kiln-boot");
  expect_centos7_xfs(extract(raw, parts["kiln-a"], dir / "a.img"), "kiln-a (xfs)");
  expect_centos7_xfs(extract(raw, parts["kiln-data"], dir / "data.img"), "kiln-data (xfs)");
  fs::path esp = extract(raw, parts["kiln-esp"], dir / "esp.img");
  auto fat = util::run({test::require_program("fsck.fat", "dosfstools"), "-n", esp.string()});
  EXPECT_EQ(fat.exit_code, 0) << fat.out << fat.err;
  EXPECT_EQ(util::run({"fatlabel", esp.string()}).out, "KILN-ESP\n");
  // Its times are the fixture's SOURCE_DATE_EPOCH (2023-11-14 22:13 UTC), in every
  // directory: kiln set them after GRUB wrote the files (image/fsimage/fat_times.hpp).
  auto listing = util::run({test::require_program("mdir", "mtools"), "-/", "-i", esp.string(), "::"});
  EXPECT_EQ(listing.exit_code, 0) << listing.err;
  std::size_t dated = 0;
  const std::regex date(R"(\d{4}-\d\d-\d\d +\d?\d:\d\d)");
  for (auto it = std::sregex_iterator(listing.out.begin(), listing.out.end(), date); it != std::sregex_iterator();
       ++it) {
    ++dated;
    EXPECT_EQ(it->str(), "2023-11-14  22:13");
  }
  EXPECT_GE(dated, 3u) << listing.out; // EFI, EFI/BOOT, the loader at least

  // The plain layout's root: the base layer of the fixture's plan, in the fixture's cache.
  std::vector<std::string> plan_args{"plan", fx.recipe.string(), "--json"};
  for (const auto& set : fx.sets) {
    plan_args.insert(plan_args.end(), {"--set", set});
  }
  auto plan = test::run_kiln(plan_args, test::ab_fixture_env());
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const std::string base_key = json::parse(plan.out).at("base_key").get<std::string>();
  const fs::path layer = test::ab_fixture_cache() / "layers" / (base_key + ".qcow2");
  ASSERT_TRUE(fs::exists(layer)) << layer;
  const fs::path base_raw = dir / "base.raw";
  auto convert = util::run({"qemu-img", "convert", "-q", "-O", "raw", layer.string(), base_raw.string()});
  ASSERT_EQ(convert.exit_code, 0) << convert.err;
  auto plain = partitions(base_raw);
  ASSERT_EQ(plain.size(), 1u);
  expect_centos7_ext4(extract(base_raw, plain[0], dir / "plain.img"), "plain root");
}

} // namespace
} // namespace kiln
