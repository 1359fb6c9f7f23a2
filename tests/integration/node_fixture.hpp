// Fixtures for kiln-node's tests, made without libguestfs: an A/B disk image file laid
// out as abi.hpp says (sfdisk), a kiln-boot ext4 with a real grubenv (mkfs.ext4 -d,
// grub-editenv), root file system images (mkfs.ext4 -d), signed bundles and trust
// directories.
#pragma once

#include "core/bundle/bundle.hpp"
#include "core/crypto/sha256.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/slots/grubcfg.hpp"
#include "core/util/fs.hpp"
#include "support/ab_table.hpp"
#include "support/test_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>

namespace kiln::test::node {

namespace fs = std::filesystem;

inline util::RunResult
must(const std::vector<std::string>& argv)
{
  util::RunResult r = util::run(argv);
  EXPECT_TRUE(r.ok()) << argv[0] << ": " << r.err << r.out;
  return r;
}

// A root file system image of `mib` MiB holding `files` (path -> content).
inline fs::path
make_rootfs(const fs::path& dir, const std::string& name, unsigned mib, const std::map<std::string, std::string>& files)
{
  require_program("mkfs.ext4", "e2fsprogs");
  fs::path tree = dir / (name + ".tree");
  fs::create_directories(tree);
  for (const auto& [path, content] : files) {
    write_text(tree / path, content);
  }
  fs::path image = dir / (name + ".img");
  must({"mkfs.ext4", "-q", "-F", "-O", "^metadata_csum", "-E", "root_owner=0:0", "-L", "root", "-d", tree.string(),
        image.string(), std::to_string(mib) + "M"});
  return image;
}

// Some files with enough content to make several mapped ranges.
inline std::map<std::string, std::string>
sample_files(const std::string& version)
{
  std::map<std::string, std::string> files;
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(version)));
  for (int i = 0; i < 6; ++i) {
    std::string data(200000 + i * 50000, '\0');
    for (auto& c : data) {
      c = static_cast<char>(rng());
    }
    files["usr/lib/data" + std::to_string(i) + ".bin"] = data;
  }
  files["etc/kiln-release"] = "version " + version + "\n";
  return files;
}

inline void
write_random(int fd, std::uint64_t offset, std::uint64_t size, unsigned seed)
{
  std::mt19937 rng(seed);
  std::string data(static_cast<std::size_t>(size), '\0');
  for (auto& c : data) {
    c = static_cast<char>(rng());
  }
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(size));
}

inline void
copy_into(const fs::path& from, const fs::path& disk, std::uint64_t offset)
{
  std::string data = util::read_file(from);
  util::Fd fd = util::open_file(disk, O_WRONLY);
  ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(data.size()));
}

struct AbDisk {
  fs::path path;
  slots::Gpt gpt;
  std::uint64_t slot_size = 0;
};

// A 96 MiB A/B disk image file: kiln-boot holds a grubenv with `vars` (grub-editenv
// set), slot A the image `slot_a` (when given), slot B random bytes.
inline AbDisk
make_ab_disk(const fs::path& dir, const std::vector<std::string>& vars, const fs::path& slot_a = {},
             const std::map<std::string, std::string>& boot_files = {})
{
  require_program("sfdisk", "fdisk");
  require_program("grub-editenv", "grub-common");
  AbDisk disk;
  disk.path = dir / "disk.img";
  partitioned_disk(disk.path, "96M", ab_sfdisk_script(24));
  disk.gpt = slots::read_gpt(disk.path);
  fs::path boot_tree = dir / "boot.tree";
  fs::create_directories(boot_tree / "grub");
  fs::path env = boot_tree / "grub" / "grubenv";
  must({"grub-editenv", env.string(), "create"});
  if (!vars.empty()) {
    std::vector<std::string> argv = {"grub-editenv", env.string(), "set"};
    argv.insert(argv.end(), vars.begin(), vars.end());
    must(argv);
  }
  // kiln's own grub.cfg, naming the slots by this disk's PARTUUIDs (install rewrites it).
  slots::GrubConfig cfg;
  cfg.partuuid_a = disk.gpt.by_label(slots::k_part_a).partuuid;
  cfg.partuuid_b = disk.gpt.by_label(slots::k_part_b).partuuid;
  write_text(boot_tree / "grub" / "grub.cfg", slots::make_grub_cfg(cfg));
  for (const auto& [path, content] : boot_files) {
    write_text(boot_tree / path, content);
  }
  fs::path boot_img = dir / "boot.fs";
  must({"mkfs.ext4", "-q", "-F", "-O", "^metadata_csum", "-L", "kiln-boot", "-d", boot_tree.string(), boot_img.string(),
        "8M"});
  const auto& boot = disk.gpt.by_label(slots::k_part_boot);
  copy_into(boot_img, disk.path, boot.offset);
  const auto& b = disk.gpt.by_label(slots::k_part_b);
  util::Fd fd = util::open_file(disk.path, O_WRONLY);
  write_random(fd.get(), b.offset, b.size, 7);
  if (!slot_a.empty()) {
    copy_into(slot_a, disk.path, disk.gpt.by_label(slots::k_part_a).offset);
  }
  disk.slot_size = b.size;
  return disk;
}

// A loop device over `file` (losetup, as root), with partition nodes when `partscan` and
// the kernel makes them; detached when the object dies. No loop device fails the test.
class LoopDevice {
public:
  LoopDevice(const fs::path& file, bool partscan)
  {
    std::vector<std::string> argv = {"losetup", "--show", "-f"};
    if (partscan) {
      argv.push_back("-P");
    }
    argv.push_back(file.string());
    if (require_program("losetup", "mount").empty()) {
      throw std::runtime_error("no losetup: the loop device tests need it (and root)");
    }
    util::RunResult r = util::run(argv);
    if (!r.ok()) {
      throw std::runtime_error("cannot attach a loop device to " + file.string() + " (root needed): " + r.tail(2));
    }
    m_path = r.out.substr(0, r.out.find('\n'));
  }
  ~LoopDevice()
  {
    try {
      util::RunResult r = util::run({"losetup", "-d", m_path});
      EXPECT_TRUE(r.ok()) << "losetup -d " << m_path << ": " << r.err;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "losetup -d " << m_path << ": " << e.what();
    }
  }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  const std::string& path() const { return m_path; }

private:
  std::string m_path;
};

// `size` bytes of `file` (a file or a block device) at `offset`.
inline std::string
read_range(const fs::path& file, std::uint64_t offset, std::uint64_t size)
{
  util::Fd fd = util::open_file(file, O_RDONLY);
  std::string out(static_cast<std::size_t>(size), '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t got = ::pread(fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (got <= 0) {
      ADD_FAILURE() << "short read of " << file;
      break;
    }
    done += static_cast<std::size_t>(got);
  }
  return out;
}

// sha256 of `size` bytes of `file` at `offset`.
inline std::string
hash_range(const fs::path& file, std::uint64_t offset, std::uint64_t size)
{
  util::Fd fd = util::open_file(file, O_RDONLY);
  crypto::Sha256 h;
  std::vector<char> buffer(1 << 20);
  while (size > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, buffer.size()));
    ssize_t got = ::pread(fd.get(), buffer.data(), n, static_cast<off_t>(offset));
    if (got <= 0) {
      ADD_FAILURE() << "short read of " << file;
      break;
    }
    h.update(buffer.data(), static_cast<std::size_t>(got));
    offset += static_cast<std::uint64_t>(got);
    size -= static_cast<std::uint64_t>(got);
  }
  return h.hex_digest();
}

inline std::string
slot_hash(const AbDisk& disk, std::string_view label, std::uint64_t size = 0)
{
  const auto& p = disk.gpt.by_label(label);
  return hash_range(disk.path, p.offset, size == 0 ? p.size : size);
}

// A file of the disk's kiln-boot copied out with debugfs; false when it is not there.
inline bool
boot_file(const AbDisk& disk, const fs::path& scratch, const std::string& path, const fs::path& out)
{
  const auto& boot = disk.gpt.by_label(slots::k_part_boot);
  fs::path boot_img = scratch / "boot-out.fs";
  {
    std::string all = util::read_file(disk.path);
    write_text(boot_img, all.substr(static_cast<std::size_t>(boot.offset), static_cast<std::size_t>(boot.size)));
  }
  fs::remove(out);
  must({"debugfs", "-R", "dump " + path + " " + out.string(), boot_img.string()});
  return fs::exists(out);
}

// The grubenv of the disk's kiln-boot (copied out with debugfs, read by grub-editenv).
inline std::string
grubenv_list(const AbDisk& disk, const fs::path& scratch)
{
  fs::path env = scratch / "grubenv-out";
  boot_file(disk, scratch, "/grub/grubenv", env);
  util::RunResult r = must({"grub-editenv", env.string(), "list"});
  return r.out;
}

inline manifest::Manifest
base_manifest(const std::string& name)
{
  manifest::Manifest m;
  m.name = name;
  m.recipe_name = "node";
  m.recipe_digest = std::string(64, 'a');
  m.inputs.push_back({"base", "https://example.org/base.qcow2", std::string(64, 'b')});
  return m;
}

struct Keys {
  fs::path key;
  fs::path pub;
  std::string id;
};

inline Keys
make_key(const fs::path& dir, const std::string& name)
{
  fs::create_directories(dir);
  auto files = crypto::generate_keypair(dir, name);
  return {files.private_key, files.public_key, files.key_id};
}

inline fs::path
trust_dir(const fs::path& dir, const std::vector<Keys>& keys, const std::vector<std::string>& revoked = {})
{
  fs::create_directories(dir);
  for (const auto& k : keys) {
    fs::copy_file(k.pub, dir / (k.pub.stem().string() + ".pem"), fs::copy_options::overwrite_existing);
  }
  std::string list;
  for (const auto& id : revoked) {
    list += id + "\n";
  }
  if (!revoked.empty()) {
    write_text(dir / crypto::k_revocation_list_name, list);
  }
  return dir;
}

// The usual scene of a kiln-node test: root file systems "old" (in slot A) and "new", an
// A/B disk whose grubenv holds `vars` (default: A good, B empty), a trusted release key
// and the bundle node-v2 of "new" signed with it (m_dir/bundles).
class NodeScene : public ::testing::Test {
protected:
  static std::vector<std::string> fresh_vars()
  {
    return {"kiln_order=A B", "kiln_A_state=good", "kiln_A_tries=0", "kiln_B_state=empty", "kiln_B_tries=0"};
  }

  void make_scene(const std::vector<std::string>& vars = fresh_vars())
  {
    m_old = make_rootfs(m_dir.path(), "old", 16, sample_files("1"));
    m_new = make_rootfs(m_dir.path(), "new", 16, sample_files("2"));
    m_disk = make_ab_disk(m_dir.path(), vars, m_old);
    m_key = make_key(m_dir / "keys", "release");
    m_trust = trust_dir(m_dir / "trust", {m_key});
    fs::create_directories(m_dir / "bundles");
    auto key = crypto::load_private_key(m_key.key);
    m_info = bundle::write_bundle(m_new, m_dir / "bundles", base_manifest("node-v2"), &key);
  }

  ScratchDir m_dir;
  fs::path m_old, m_new;
  AbDisk m_disk;
  Keys m_key;
  fs::path m_trust;
  bundle::BundleInfo m_info;
};

} // namespace kiln::test::node
