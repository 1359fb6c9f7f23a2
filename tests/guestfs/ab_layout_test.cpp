// `layout: ab` end to end on the suite's shared A/B fixture (tests/support/ab_fixture: a
// small signed Debian A/B image with a kernel and GRUB, built once per build tree by the
// ctest fixture fixture.ab_image): the disk checked from outside with real tools (sfdisk,
// sgdisk, debugfs, grub-editenv, grub-script-check, mtools) and slot A and kiln-data
// through one read-only libguestfs handle.
#include "core/bundle/bundle.hpp"
#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/manifest/manifest.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/grubcfg.hpp"
#include "core/util/fs.hpp"
#include "image/ab/slot_root.hpp"
#include "image/pipeline/ab_layout.hpp"
#include "image/guestfs/guestfs.hpp"
#include "support/ab_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The fixture's kiln.test= kernel argument: a digest of this kiln, so a new kiln builds
// the A/B stage afresh.
std::string
kiln_tag()
{
  return crypto::sha256_file(KILN_BIN).substr(0, 16);
}

fs::path
fixture_keys()
{
  return test::source_dir() / "tests/fixtures/ab-keys";
}

struct Part {
  std::string name;
  std::string type;
  std::string uuid;
  std::uint64_t start = 0; // bytes
  std::uint64_t size = 0;
};

std::vector<Part>
partitions(const fs::path& raw)
{
  auto r = util::run({test::require_program("sfdisk", "fdisk"), "--json", raw.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<Part> out;
  json t = json::parse(r.out)["partitiontable"];
  std::uint64_t sector = t.value("sectorsize", 512);
  for (const auto& p : t["partitions"]) {
    out.push_back({p.value("name", ""), p["type"], p["uuid"], p["start"].get<std::uint64_t>() * sector,
                   p["size"].get<std::uint64_t>() * sector});
  }
  return out;
}

// Copies [offset, offset+size) of `raw` into a sparse file.
fs::path
extract(const fs::path& raw, std::uint64_t offset, std::uint64_t size, const fs::path& out)
{
  auto r = util::run({"qemu-img", "convert", "-q", "-O", "raw", "--image-opts",
                      "driver=raw,offset=" + std::to_string(offset) + ",size=" + std::to_string(size) +
                        ",file.driver=file,file.filename=" + raw.string(),
                      out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

std::string
debugfs(const fs::path& image, const std::string& request)
{
  auto r = util::run({test::require_program("debugfs", "e2fsprogs"), "-R", request, image.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// True when the file holds a non-zero byte in [offset, offset+size).
bool
any_nonzero(const fs::path& file, std::uint64_t offset, std::uint64_t size)
{
  std::ifstream in(file, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string buf(size, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(size));
  return buf.find_first_not_of('\0') != std::string::npos;
}

util::RunOptions
mtools()
{
  util::RunOptions o;
  o.env["MTOOLS_SKIP_CHECK"] = "1";
  return o;
}

class AbLayout : public ::testing::Test {
protected:
  static void SetUpTestSuite() { s_dir = std::make_unique<test::ScratchDir>(); }
  static void TearDownTestSuite() { s_dir.reset(); }

  void SetUp() override { ASSERT_TRUE(test::ab_fixture().error.empty()) << test::ab_fixture().error; }

  static fs::path out() { return test::ab_fixture().out; }
  static fs::path raw() { return out() / "ab-fixture.raw"; }
  const Part& part(const std::string& name)
  {
    static std::vector<Part> parts = partitions(raw());
    for (const auto& p : parts) {
      if (p.name == name) {
        return p;
      }
    }
    throw Error(name, "no such partition");
  }
  fs::path extracted(const std::string& name)
  {
    fs::path file = s_dir->path() / (name + ".img");
    if (!fs::exists(file)) {
      extract(raw(), part(name).start, part(name).size, file);
    }
    return file;
  }

  static std::unique_ptr<test::ScratchDir> s_dir;
};

std::unique_ptr<test::ScratchDir> AbLayout::s_dir;

TEST_F(AbLayout, BuildReportsTheAbStageAndTheBundle)
{
  json r = json::parse(test::read_text(out() / "build.json"));
  json stages = r["built"];
  stages.insert(stages.end(), r["reused"].begin(), r["reused"].end());
  EXPECT_NE(std::find(stages.begin(), stages.end(), "ab"), stages.end()) << r;
  EXPECT_NE(std::find(stages.begin(), stages.end(), "finalize"), stages.end()) << r;
  if (!r["built"].empty()) {
    EXPECT_EQ(r["built"].back(), "ab");
  }
  // Built with finalize: the A/B stage shares the stages' launch (its disk is their second
  // drive), so the build launches for the base (made from a tar) and once more at most.
  const bool with_finalize = std::find(r["built"].begin(), r["built"].end(), "finalize") != r["built"].end();
  if (with_finalize) {
    EXPECT_LE(r["launches"].get<int>(), 2) << r;
    std::string log = test::read_text(out() / "build.log");
    EXPECT_EQ(log.find("launching for the A/B disk"), std::string::npos) << log;
  } else {
    EXPECT_LE(r["launches"].get<int>(), 1) << r;
  }
  manifest::Manifest m = manifest::read_manifest(out() / "ab-fixture.manifest.json");
  std::map<std::string, std::string> roles;
  for (const auto& f : m.files) {
    roles[f.name] = f.role;
    EXPECT_EQ(crypto::sha256_file(out() / f.name), f.sha256) << f.name;
  }
  EXPECT_EQ(roles["ab-fixture.kbundle"], "bundle");
  EXPECT_EQ(roles["ab-fixture.raw"], "image");
  EXPECT_EQ(roles["ab-fixture.raw.bmap"], "bmap");
  EXPECT_EQ(roles["ab-fixture.qcow2"], "image");
  EXPECT_EQ(m.stages.back().name, "ab");
  // kiln's own kiln-node artifact, by its VERSION line and tree digest.
  const fs::path artifact = recipe::own_node_artifact(KILN_BIN);
  auto node = std::find_if(m.inputs.begin(), m.inputs.end(), [](const auto& in) { return in.kind == "kiln-node"; });
  ASSERT_NE(node, m.inputs.end());
  EXPECT_EQ(node->sha256, crypto::sha256_tree(artifact));
  EXPECT_EQ(node->source, recipe::describe_node_artifact(artifact).version);
}

// With finalize cached (a variant that changes only the kernel arguments, so only the ab
// key), the A/B stage launches on its own: one launch, and a signed bundle that verifies.
TEST_F(AbLayout, WithFinalizeCachedTheAbStageLaunchesAlone)
{
  const test::AbFixture& fx = test::ab_fixture();
  const fs::path variant = s_dir->path() / "alone";
  std::vector<std::string> args{"build",    fx.recipe.string(),
                                "--cache",  test::ab_fixture_cache().string(),
                                "--sign",   fx.key.string(),
                                "-o",       variant.string(),
                                "--format", "qcow2",
                                "--json",   "-v"};
  for (const auto& s : fx.sets) {
    args.insert(args.end(), {"--set", s.rfind("kiln_tag=", 0) == 0 ? s + "-alone" : s});
  }
  util::RunResult built = test::run_kiln(args, test::ab_fixture_env());
  ASSERT_TRUE(built.ok()) << built.err << built.out;
  json r = json::parse(built.out);
  EXPECT_EQ(r["built"], json::array({"ab"})) << r;
  EXPECT_NE(std::find(r["reused"].begin(), r["reused"].end(), "finalize"), r["reused"].end()) << r;
  EXPECT_EQ(r["launches"], 1) << r;
  EXPECT_NE(built.err.find("launching for the A/B disk"), std::string::npos) << built.err;
  fs::create_directories(s_dir->path() / "trust.d");
  fs::copy_file(fixture_keys() / "release.pub", s_dir->path() / "trust.d/release.pem",
                fs::copy_options::overwrite_existing);
  crypto::TrustStore trust = crypto::TrustStore::load(s_dir->path() / "trust.d");
  bundle::Reader reader((variant / "ab-fixture.kbundle").string());
  bundle::Verified v = reader.verify(&trust);
  EXPECT_EQ(v.manifest.name, "ab-fixture");
  EXPECT_EQ(v.bmap.image_size, part("kiln-a").size);
}

TEST_F(AbLayout, GptPartitionsByNameAndType)
{
  auto parts = partitions(raw());
  ASSERT_EQ(parts.size(), 6u);
  const std::vector<std::pair<std::string, std::string>> want = {
    {"kiln-bios", "21686148-6449-6E6F-744E-656564454649"}, {"kiln-esp", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"},
    {"kiln-boot", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}, {"kiln-a", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
    {"kiln-b", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},    {"kiln-data", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(parts[i].name, want[i].first);
    EXPECT_EQ(parts[i].type, want[i].second) << parts[i].name;
    EXPECT_EQ(parts[i].start % (1 << 20), 0u) << parts[i].name;
  }
  EXPECT_EQ(parts[0].size, 1u << 20);
  EXPECT_EQ(parts[1].size, 32u << 20);
  EXPECT_EQ(parts[2].size, 64u << 20);
  EXPECT_EQ(parts[3].size, 768ull << 20);
  EXPECT_EQ(parts[4].size, parts[3].size);
  EXPECT_EQ(parts[5].size, 512ull << 20);
  // sgdisk agrees and finds the table sound.
  auto v = util::run({test::require_program("sgdisk", "gdisk"), "-v", raw().string()});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("No problems found"), std::string::npos) << v.out;
  auto p = util::run({"sgdisk", "-p", raw().string()});
  EXPECT_NE(p.out.find("kiln-data"), std::string::npos) << p.out;
}

TEST_F(AbLayout, BiosBootCodeAndEfiLoader)
{
  // GRUB's boot.img in the MBR's code area, core.img in the BIOS boot partition.
  EXPECT_TRUE(any_nonzero(raw(), 0, 440));
  EXPECT_TRUE(any_nonzero(raw(), part("kiln-bios").start, 512));
  // The removable-media path on the ESP, a PE image.
  fs::path esp = extracted("kiln-esp");
  auto dir = util::run({test::require_program("mdir", "mtools"), "-b", "-i", esp.string(), "::/EFI/BOOT"}, mtools());
  EXPECT_EQ(dir.exit_code, 0) << dir.err;
  EXPECT_NE(dir.out.find("BOOTX64.EFI"), std::string::npos) << dir.out;
  fs::path efi = s_dir->path() / "BOOTX64.EFI";
  auto copy = util::run({"mcopy", "-n", "-i", esp.string(), "::/EFI/BOOT/BOOTX64.EFI", efi.string()}, mtools());
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  EXPECT_EQ(test::read_text(efi).substr(0, 2), "MZ");
  // Its embedded prefix is EL7's /grub2 (the fixture's grub2-install stand-in).
  EXPECT_NE(test::read_text(efi).find("/grub2"), std::string::npos);
  auto label = util::run({test::require_program("fatlabel", "dosfstools"), esp.string()});
  EXPECT_EQ(label.out, "KILN-ESP\n");
}

TEST_F(AbLayout, KilnBootHoldsGrubCfgAndTheInitialGrubenv)
{
  fs::path boot = extracted("kiln-boot");
  std::string listing = debugfs(boot, "ls -p /grub");
  for (const char* name : {"/grub.cfg/", "/grubenv/", "/kiln-ab.conf/"}) {
    EXPECT_NE(listing.find(name), std::string::npos) << name << listing;
  }
  // The fixture's GRUB follows EL7's layout (files/grub2-install): its modules and its
  // $prefix are /grub2, and /grub2/grub.cfg is kiln's stub that loads /grub/grub.cfg.
  EXPECT_EQ(listing.find("/i386-pc/"), std::string::npos) << listing;
  std::string grub2 = debugfs(boot, "ls -p /grub2");
  for (const char* name : {"/grub.cfg/", "/i386-pc/", "/x86_64-efi/"}) {
    EXPECT_NE(grub2.find(name), std::string::npos) << name << grub2;
  }
  test::write_text(s_dir->path() / "stub.cfg", debugfs(boot, "cat /grub2/grub.cfg"));
  EXPECT_EQ(test::read_text(s_dir->path() / "stub.cfg"), slots::make_prefix_stub_cfg());
  EXPECT_NE(slots::make_prefix_stub_cfg().find("configfile \"(${kiln_prefix_dev})/grub/grub.cfg\""), std::string::npos);
  auto stub_check =
    util::run({test::require_program("grub-script-check", "grub-common"), (s_dir->path() / "stub.cfg").string()});
  EXPECT_EQ(stub_check.exit_code, 0) << stub_check.out << stub_check.err;
  // grub.cfg: kiln's, GRUB's parser accepts it, the slots' PARTUUIDs are on the command lines.
  test::write_text(s_dir->path() / "grub.cfg", debugfs(boot, "cat /grub/grub.cfg"));
  auto check =
    util::run({test::require_program("grub-script-check", "grub-common"), (s_dir->path() / "grub.cfg").string()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  std::string cfg = test::read_text(s_dir->path() / "grub.cfg");
  std::string uuid_a = part("kiln-a").uuid, uuid_b = part("kiln-b").uuid;
  std::transform(uuid_a.begin(), uuid_a.end(), uuid_a.begin(), ::tolower);
  std::transform(uuid_b.begin(), uuid_b.end(), uuid_b.begin(), ::tolower);
  EXPECT_NE(cfg.find("linux (${kiln_disk},gpt4)/boot/vmlinuz root=PARTUUID=" + uuid_a +
                     " ro kiln.slot=A panic=5 console=tty0 console=ttyS0,115200 quiet fsck.mode=skip "
                     "kiln.dcos_role=slave_public kiln.test=" +
                     kiln_tag() + "\n"),
            std::string::npos)
    << cfg;
  EXPECT_NE(cfg.find("root=PARTUUID=" + uuid_b + " ro kiln.slot=B"), std::string::npos);
  EXPECT_EQ(debugfs(boot, "cat /grub/kiln-ab.conf"), "tries=2\npanic=5\n");

  // grubenv: 1024 bytes, every block allocated (GRUB's save_env refuses sparse files).
  fs::path env = s_dir->path() / "grubenv";
  test::write_text(env, debugfs(boot, "cat /grub/grubenv"));
  EXPECT_EQ(fs::file_size(env), 1024u);
  std::string stat = debugfs(boot, "stat /grub/grubenv");
  EXPECT_NE(stat.find("Size: 1024"), std::string::npos) << stat;
  EXPECT_EQ(stat.find("Blockcount: 0\n"), std::string::npos) << stat;
  auto list = util::run({test::require_program("grub-editenv", "grub-common"), env.string(), "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  bundle::Reader reader((out() / "ab-fixture.kbundle").string());
  EXPECT_EQ(list.out, "kiln_order=A B\nkiln_A_state=good\nkiln_A_tries=0\nkiln_A_digest=" +
                        crypto::sha256_hex(reader.manifest_text()) +
                        "\nkiln_A_name=ab-fixture\nkiln_B_state=empty\nkiln_B_tries=0\n");
  // ext4 without the features GRUB 2.02 and CentOS 7 cannot handle.
  std::string features = debugfs(boot, "features");
  for (const char* f : {"metadata_csum", "orphan_file", "64bit"}) {
    EXPECT_EQ(features.find(std::string(" ") + f), std::string::npos) << features;
  }
}

TEST_F(AbLayout, XfsSlotSuitsCentOS7)
{
  auto sb = util::run({test::require_program("xfs_db", "xfsprogs"), "-r", "-c", "sb 0", "-c",
                       "print features_ro_compat features_incompat", extracted("kiln-a").string()});
  ASSERT_EQ(sb.exit_code, 0) << sb.err;
  EXPECT_EQ(sb.out, "features_ro_compat = 0\nfeatures_incompat = 0x1\n");
}

TEST_F(AbLayout, SlotBIsEmptyAndTheBundleVerifies)
{
  fs::path b = extracted("kiln-b");
  // Never written: every byte is zero.
  std::ifstream in(b, std::ios::binary);
  std::vector<char> chunk(4 << 20);
  std::uint64_t total = 0;
  bool zero = true;
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    auto n = static_cast<size_t>(in.gcount());
    zero =
      zero && std::all_of(chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n), [](char c) { return c == 0; });
    total += n;
  }
  EXPECT_TRUE(zero);
  EXPECT_EQ(total, part("kiln-b").size);
  auto blkid = util::run({"blkid", "-p", b.string()});
  EXPECT_NE(blkid.exit_code, 0) << blkid.out;
  auto data_label = util::run({"blkid", "-o", "value", "-s", "LABEL", extracted("kiln-data").string()});
  EXPECT_EQ(data_label.out, "kiln-data\n");

  fs::create_directories(s_dir->path() / "trust.d");
  fs::copy_file(fixture_keys() / "release.pub", s_dir->path() / "trust.d/release.pem",
                fs::copy_options::overwrite_existing);
  crypto::TrustStore trust = crypto::TrustStore::load(s_dir->path() / "trust.d");
  bundle::Reader reader((out() / "ab-fixture.kbundle").string());
  bundle::Verified v = reader.verify(&trust);
  EXPECT_EQ(v.manifest.name, "ab-fixture");
  EXPECT_FALSE(v.key_id.empty());
  EXPECT_EQ(v.bmap.image_size, part("kiln-a").size);
  // rootfs.data is exactly slot A's mapped bytes: compare them with the disk.
  fs::path a = extracted("kiln-a");
  std::ifstream disk(a, std::ios::binary);
  std::vector<char> buf(1 << 20), want(1 << 20);
  std::uint64_t checked = 0;
  for (const auto& range : v.bmap.ranges) {
    std::uint64_t from = range.first * v.bmap.block_size;
    std::uint64_t to = std::min<std::uint64_t>((range.last + 1) * v.bmap.block_size, v.bmap.image_size);
    for (std::uint64_t at = from; at < to;) {
      size_t n = static_cast<size_t>(std::min<std::uint64_t>(to - at, buf.size()));
      size_t got = 0;
      while (got < n) {
        size_t r = reader.read_data(buf.data() + got, n - got);
        ASSERT_GT(r, 0u);
        got += r;
      }
      disk.seekg(static_cast<std::streamoff>(at));
      disk.read(want.data(), static_cast<std::streamsize>(n));
      ASSERT_EQ(std::memcmp(buf.data(), want.data(), n), 0) << "at " << at;
      at += n;
      checked += n;
    }
  }
  char extra = 0;
  EXPECT_EQ(reader.read_data(&extra, 1), 0u);
  EXPECT_GT(checked, 100u << 20);
}

TEST_F(AbLayout, SlotAAndKilnDataFromInside)
{
  gfs::Handle g;
  g.add_drive(raw().string(), "raw", true);
  g.launch();
  // Slot A: its own root, labels and ownership kept through the copy.
  g.mount_ro("/dev/sda4", "/");
  EXPECT_EQ(g.vfs_type("/dev/sda4"), "xfs");
  std::string fstab = g.read_file("/etc/fstab");
  EXPECT_NE(fstab.find("\n/dev/root / xfs defaults 0 0\n"), std::string::npos) << fstab;
  EXPECT_NE(fstab.find("\nLABEL=kiln-boot /boot/kiln ext4 defaults 0 2\n"), std::string::npos) << fstab;
  EXPECT_NE(fstab.find("\nLABEL=KILN-ESP /boot/efi vfat "), std::string::npos) << fstab;
  EXPECT_NE(fstab.find("\nLABEL=kiln-data /var/lib/kiln-data xfs defaults 0 2\n"), std::string::npos) << fstab;
  for (const char* dir : {"/var/lib/docker", "/var/lib/mesos", "/var/lib/dcos", "/var/log"}) {
    std::string line =
      std::string("/var/lib/kiln-data/") + fs::path(dir).filename().string() + " " + dir + " none bind 0 0\n";
    EXPECT_NE(fstab.find(line), std::string::npos) << line << fstab;
    EXPECT_TRUE(g.is_dir(dir)) << dir;
    EXPECT_TRUE(g.ls(dir).empty()) << dir; // the content moved to kiln-data
  }
  EXPECT_EQ(fstab.find("LABEL=root"), std::string::npos) << fstab;
  std::string entries; // fstab without its comments: nothing there names a slot
  std::istringstream lines(fstab);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') {
      entries += line + "\n";
    }
  }
  EXPECT_EQ(entries.find("PARTUUID"), std::string::npos) << fstab;
  EXPECT_EQ(entries.find("kiln-a"), std::string::npos) << fstab;
  EXPECT_TRUE(g.is_symlink("/boot/vmlinuz"));
  EXPECT_EQ(g.readlink("/boot/vmlinuz").rfind("vmlinuz-", 0), 0u);
  EXPECT_TRUE(g.is_file("/boot/" + g.readlink("/boot/vmlinuz")));
  EXPECT_TRUE(g.is_file("/boot/" + g.readlink("/boot/initrd.img")));
  // Copied inside the appliance: the directory the source was mounted on is gone, and the
  // root directory itself kept its label.
  EXPECT_FALSE(g.exists("/.kiln-ab-source"));
  EXPECT_NE(g.getxattr("/", "security.selinux").find(":object_r:"), std::string::npos);
  gfs::Stat owned = g.lstat("/etc/kiln/owned");
  EXPECT_EQ(owned.uid, 1500u);
  EXPECT_EQ(owned.mode & 0777, 0640u);
  EXPECT_NE(g.getxattr("/etc/kiln/owned", "security.selinux").find(":object_r:etc_t:"), std::string::npos);
  // Files the A/B stage wrote are labelled too.
  EXPECT_NE(g.getxattr("/etc/fstab", "security.selinux").find(":object_r:etc_t:"), std::string::npos);
  // kiln-node: kiln's own artifact, owned by root.
  const fs::path artifact = recipe::own_node_artifact(KILN_BIN);
  test::ScratchDir scratch;
  g.download("/usr/bin/kiln-node", (scratch / "kiln-node").string());
  EXPECT_EQ(crypto::sha256_file(scratch / "kiln-node"), crypto::sha256_file(artifact / "usr/bin/kiln-node"));
  gfs::Stat node = g.lstat("/usr/bin/kiln-node");
  EXPECT_EQ(node.uid, 0u);
  EXPECT_EQ(node.mode & 0777, 0755u);
  EXPECT_EQ(g.read_file("/usr/lib/kiln/node/VERSION"), test::read_text(artifact / "usr/lib/kiln/node/VERSION"));
  std::string unit = g.read_file("/usr/lib/systemd/system/kiln-mark-good.service");
  EXPECT_EQ(unit, ab::mark_good_unit_text()); // its content: tests/unit/ab_mark_good_unit_test.cpp
  EXPECT_EQ(g.readlink("/etc/systemd/system/multi-user.target.wants/kiln-mark-good.service"),
            "/usr/lib/systemd/system/kiln-mark-good.service");
  // ab.grow_data (default true): kiln-data grows to the disk's end at boot.
  EXPECT_EQ(g.read_file("/usr/lib/systemd/system/kiln-grow-data.service"), ab::grow_data_unit_text());
  EXPECT_EQ(g.readlink("/etc/systemd/system/multi-user.target.wants/kiln-grow-data.service"),
            "/usr/lib/systemd/system/kiln-grow-data.service");
  // trust: the key and the revocation list.
  EXPECT_EQ(g.read_file("/etc/kiln/trust.d/release.pem"), test::read_text(fixture_keys() / "release.pub"));
  EXPECT_EQ(g.read_file("/etc/kiln/trust.d/revoked.list"), "# none\n");
  EXPECT_NE(g.getxattr("/etc/kiln/trust.d/release.pem", "security.selinux").find(":object_r:"), std::string::npos);
  g.umount_all();

  // kiln-data: the state directories with what the image had in them, labels kept.
  g.mount_ro("/dev/sda6", "/");
  EXPECT_EQ(g.vfs_type("/dev/sda6"), "xfs");
  EXPECT_EQ(g.read_file("/docker/volumes/marker"), "d\n");
  EXPECT_TRUE(g.is_dir("/log/kiln-dir"));
  EXPECT_TRUE(g.is_dir("/mesos"));
  // DC/OS's node state (agent attributes) lives on kiln-data and survives a reimage.
  EXPECT_EQ(g.read_file("/dcos/mesos-slave-common"), "MESOS_ATTRIBUTES=kiln_fixture:true\n");
  EXPECT_NE(g.getxattr("/log", "security.selinux").find("var_log_t"), std::string::npos)
    << g.getxattr("/log", "security.selinux");
  g.umount_all();
  g.shutdown();
}

} // namespace
} // namespace kiln
