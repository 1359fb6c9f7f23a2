// Every file system kiln creates must be one CentOS 7 (kernel 3.10, GRUB 2.02,
// e2fsprogs 1.42.9, xfsprogs 4.5) can mount, check and boot from, whatever the build
// host's mkfs defaults are. Checked from outside with the real tools on the partitions
// of one A/B build (slots ext4, kiln-data XFS; the A/B test covers XFS slots) and of the
// plain layout's root made from a bootstrap tar:
//   XFS   crc=1 ftype=1, and no finobt, sparse inodes, reflink, rmapbt, bigtime,
//         inobtcount, nrext64 (xfs_db on the superblock)
//   ext4  no metadata_csum, metadata_csum_seed, orphan_file, 64bit (dumpe2fs -h)
//   FAT   the ESP checks clean and carries its label (fsck.fat, fatlabel)
#include "core/crypto/sha256.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path k_cache = KILN_TEST_CACHE;

std::string
base_yaml()
{
  // The same base as ab_layout_test: bootstrapped once per build tree.
  return "base:\n"
         "  bootstrap:\n"
         "    suite: bookworm\n"
         "    variant: minbase\n"
         "    packages: [systemd, systemd-sysv, passwd, policycoreutils, selinux-policy-default, linux-image-amd64,\n"
         "               grub-pc-bin, grub-efi-amd64-bin, grub2-common]\n"
         "size: 2G\n";
}

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

// The stages of ab_layout_test (a constant tag, the fixture key): built once per build
// tree. `layout` is appended; a kernel argument derived from the kiln binary makes every
// new kiln build the A/B stage afresh.
std::string
recipe_yaml(const fs::path& dir, const std::string& name, const std::string& layout)
{
  test::write_text(dir / "revoked.list", "# none\n");
  return "name: " + name + "\n" + base_yaml() + layout +
         "trust: {keys: [" + (test::source_dir() / "tests/fixtures/ab-keys/release.pub").string() +
         "], revoked: revoked.list}\n"
         "stages:\n"
         "  - name: prep\n"
         "    steps:\n"
         "      - file: {path: /etc/kiln/nonce, content: 'manual1'}\n"
         "      - user: {name: core, uid: 1500}\n"
         "      - file: {path: /etc/kiln/owned, content: \"x\\n\", mode: '0640', owner: core}\n"
         "      - run: 'mkdir -p /var/lib/docker/volumes /var/log/kiln-dir && echo d > "
         "/var/lib/docker/volumes/marker'\n"
         "      - selinux: {mode: permissive}\n";
}

TEST(MkfsFeatures, EveryFileSystemKilnMakesSuitsCentOS7)
{
  test::ScratchDir dir;
  test::write_text(dir / "ab.yaml",
                   recipe_yaml(dir.path(), "mkfsab",
                               "layout: ab\n"
                               "ab: {slot_size: 1536M, data_size: 512M, esp_size: 64M, boot_size: 64M,\n"
                               "     root_fs: ext4, data_fs: xfs, kernel_args: [kiln.test=" +
                                 crypto::sha256_file(KILN_BIN).substr(0, 16) + "]}\n"
                               "outputs: {formats: [raw]}\n"));
  auto r = test::run_kiln({"build", (dir / "ab.yaml").string(), "-o", (dir / "out").string(), "--cache",
                           k_cache.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path raw = dir / "out/mkfsab.raw";
  std::map<std::string, Part> parts;
  for (const auto& p : partitions(raw)) {
    parts[p.name] = p;
  }
  ASSERT_EQ(parts.size(), 6u);
  expect_centos7_ext4(extract(raw, parts["kiln-boot"], dir / "boot.img"), "kiln-boot");
  expect_centos7_ext4(extract(raw, parts["kiln-a"], dir / "a.img"), "kiln-a (ext4)");
  expect_centos7_xfs(extract(raw, parts["kiln-data"], dir / "data.img"), "kiln-data (xfs)");
  fs::path esp = extract(raw, parts["kiln-esp"], dir / "esp.img");
  auto fat = util::run({test::require_program("fsck.fat", "dosfstools"), "-n", esp.string()});
  EXPECT_EQ(fat.exit_code, 0) << fat.out << fat.err;
  EXPECT_EQ(util::run({"fatlabel", esp.string()}).out, "KILN-ESP\n");

  // The plain layout's root: made by kiln from the bootstrap tar (the same stages, so
  // no appliance launch: the layers come from the cache).
  test::write_text(dir / "plain.yaml", recipe_yaml(dir.path(), "mkfsplain", "outputs: {formats: [raw]}\n"));
  r = test::run_kiln({"build", (dir / "plain.yaml").string(), "-o", (dir / "out").string(), "--cache",
                      k_cache.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["launches"], 0);
  auto plain = partitions(dir / "out/mkfsplain.raw");
  ASSERT_EQ(plain.size(), 1u);
  expect_centos7_ext4(extract(dir / "out/mkfsplain.raw", plain[0], dir / "plain.img"), "plain root");
}

} // namespace
} // namespace kiln
