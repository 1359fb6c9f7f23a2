// kiln-node fails closed (issue 14): the booted slot is decided from the kernel
// command line so that a disagreement is refused, --booted cannot contradict it without
// --force, and a grubenv that is a symlink, a FIFO or of the wrong size is refused, as is
// a block too small for the final environment, before any byte of the slot moves.
#include "core/util/bytes.hpp"
#include "integration/node_fixture.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

namespace kiln {
namespace {

using nlohmann::json;
using test::ScratchDir;
using util::le64;
using util::put32;
using util::put64;
namespace fs = std::filesystem;
namespace fx = test::node;

int
mounts_named(const std::string& needle)
{
  std::ifstream in("/proc/self/mountinfo");
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    n += line.find(needle) != std::string::npos ? 1 : 0;
  }
  return n;
}

class node_failclosed : public fx::NodeScene {
protected:
  void SetUp() override
  {
    make_scene(both_good());
    // kiln-node makes its mount points in $TMPDIR (node/disk.cpp): this test's own, so
    // "no mount left behind" counts this test's mounts only, not those of the kiln-node
    // tests running beside it.
    m_tmp = m_dir / "tmp";
    fs::create_directories(m_tmp);
    if (const char* t = std::getenv("TMPDIR")) {
      m_saved_tmpdir = t;
    }
    ::setenv("TMPDIR", m_tmp.c_str(), 1);
  }
  void TearDown() override
  {
    if (m_saved_tmpdir) {
      ::setenv("TMPDIR", m_saved_tmpdir->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  // Mounts of kiln-node's beneath this test's $TMPDIR.
  int leftover_mounts() const { return mounts_named(m_tmp.string() + "/"); }

  fs::path m_tmp;
  std::optional<std::string> m_saved_tmpdir;

  static std::vector<std::string> both_good(const std::vector<std::string>& extra_vars = {})
  {
    std::vector<std::string> vars{"kiln_order=A B", "kiln_A_state=good", "kiln_A_tries=0", "kiln_B_state=good",
                                  "kiln_B_tries=0"};
    vars.insert(vars.end(), extra_vars.begin(), extra_vars.end());
    return vars;
  }

  void make_disk(const std::vector<std::string>& extra_vars)
  {
    m_disk = fx::make_ab_disk(m_dir.path(), both_good(extra_vars), m_old);
  }

  util::RunResult node(std::vector<std::string> args, const std::string& cmdline)
  {
    test::write_text(m_dir / "cmdline", cmdline + "\n");
    args.insert(args.begin(), {"--disk", m_disk.path.string()});
    return test::run_kiln_node(args, {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}});
  }

  std::string partuuid(std::string_view label) { return m_disk.gpt.by_label(label).partuuid; }
  std::string hash(std::string_view label) { return fx::slot_hash(m_disk, label); }

  // Runs `script` (sh) with kiln-boot mounted at $B, in a private mount namespace.
  void edit_boot(const std::string& script)
  {
    const auto& boot = m_disk.gpt.by_label(slots::k_part_boot);
    fs::path mnt = m_dir / "boot-edit";
    fs::create_directories(mnt);
    fx::must({"unshare", "-m", "sh", "-c",
              "set -e; mount --make-rprivate /; mount -o loop,offset=" + std::to_string(boot.offset) +
                ",sizelimit=" + std::to_string(boot.size) + " '" + m_disk.path.string() + "' '" + mnt.string() +
                "'; B='" + mnt.string() + "'; " + script + "; umount '" + mnt.string() + "'"});
  }
};

TEST_F(node_failclosed, root_partuuid_alone_names_the_booted_slot_and_a_reimage_spares_it)
{
  // Before: kiln.slot= missing meant "nothing booted", and a reimage wrote slot A.
  std::string cmdline = "ro root=PARTUUID=" + partuuid(slots::k_part_a);
  auto r = node({"--json", "status"}, cmdline);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["booted"], "A");
  std::string a = hash(slots::k_part_a);
  // B is first in the order: the offline rule alone would have picked A.
  r = node({"--json", "rollback"}, cmdline);
  ASSERT_TRUE(r.ok()) << r.err;
  r = node({"--json", "reimage", m_info.path.string(), "--trust", m_trust.string()}, cmdline);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["slot"], "B");
  EXPECT_EQ(hash(slots::k_part_a), a);
}

TEST_F(node_failclosed, a_command_line_that_disagrees_is_refused)
{
  std::string a = hash(slots::k_part_a);
  std::string b = hash(slots::k_part_b);
  for (const std::string& cmdline :
       {"root=PARTUUID=" + partuuid(slots::k_part_a) + " kiln.slot=B", // root= says A
        "kiln.slot=A root=PARTUUID=" + partuuid(slots::k_part_b) + " kiln.slot=A", // the last kiln.slot wins
        std::string("root=/dev/sda4 kiln.slot=B"), // not this disk's partition
        std::string("kiln.slot=A"), // no root= at all
        "root=PARTUUID=" + partuuid(slots::k_part_a) + " kiln.slot=C"}) {
    auto r = node({"--json", "reimage", m_info.path.string(), "--trust", m_trust.string()}, cmdline);
    EXPECT_EQ(r.exit_code, 1) << cmdline << ": " << r.err;
    EXPECT_NE(r.err.find("kiln-node: error: kernel command line: "), std::string::npos) << r.err;
    r = node({"--json", "status"}, cmdline);
    EXPECT_EQ(r.exit_code, 1) << cmdline;
  }
  EXPECT_EQ(hash(slots::k_part_a), a);
  EXPECT_EQ(hash(slots::k_part_b), b);
}

TEST_F(node_failclosed, booted_contradicting_the_command_line_needs_force)
{
  std::string cmdline = "root=PARTUUID=" + partuuid(slots::k_part_a) + " kiln.slot=A";
  std::string a = hash(slots::k_part_a);
  auto r = node({"--booted", "B", "reimage", m_info.path.string(), "--trust", m_trust.string()}, cmdline);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--booted: B contradicts the kernel command line"), std::string::npos) << r.err;
  EXPECT_EQ(hash(slots::k_part_a), a);
  // Agreeing is fine; --force lets an operator override (here: status only).
  EXPECT_TRUE(node({"--booted", "A", "status"}, cmdline).ok());
  r = node({"--booted", "B", "--force", "--json", "status"}, cmdline);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["booted"], "B");
}

TEST_F(node_failclosed, a_grubenv_that_is_a_symlink_a_fifo_or_the_wrong_size_is_refused)
{
  fs::path host = m_dir / "host-file";
  test::write_text(host, "host content\n");
  int before = leftover_mounts();
  struct Case {
    std::string script;
    std::string reason;
  };
  for (const Case& c : {Case{"rm $B/grub/grubenv; ln -s '" + host.string() + "' $B/grub/grubenv", "is a symlink"},
                        Case{"rm $B/grub/grubenv; mkfifo $B/grub/grubenv", "not a regular file"},
                        Case{"head -c 2048 /dev/zero | tr '\\0' '#' > $B/grub/grubenv", "is 2048 bytes"},
                        Case{"mv $B/grub $B/real; ln -s real $B/grub", "cannot resolve inside kiln-boot"}}) {
    edit_boot(c.script);
    for (std::vector<std::string> cmd :
         {std::vector<std::string>{"--booted", "A", "status"}, std::vector<std::string>{"--booted", "A", "mark-good"},
          std::vector<std::string>{"--booted", "A", "rollback"}}) {
      auto r = util::run({"timeout", "20", KILN_NODE_BIN, "--disk", m_disk.path.string(), cmd[0], cmd[1], cmd[2]});
      EXPECT_EQ(r.exit_code, 1) << c.script << ": " << r.err; // 124 would be a hang
      EXPECT_NE(r.err.find(c.reason), std::string::npos) << r.err;
    }
    EXPECT_EQ(test::read_text(host), "host content\n");
    EXPECT_EQ(leftover_mounts(), before) << "a mount was left behind";
    edit_boot("rm -rf $B/grub $B/real; mkdir $B/grub; grub-editenv $B/grub/grubenv create; "
              "grub-editenv $B/grub/grubenv set kiln_order='A B' kiln_A_state=good kiln_A_tries=0 "
              "kiln_B_state=good kiln_B_tries=0");
  }
}

TEST_F(node_failclosed, a_block_too_small_for_the_final_environment_is_refused_before_the_slot_is_touched)
{
  // A long saved_entry leaves no room for the slot's digest and name.
  make_disk({"saved_entry=" + std::string(760, 'x')});
  std::string b = hash(slots::k_part_b);
  std::string env_before = fx::grubenv_list(m_disk, m_dir.path());
  auto r = node({"--booted", "A", "reimage", m_info.path.string(), "--trust", m_trust.string()}, "");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("GRUB environment blocks never grow"), std::string::npos) << r.err;
  EXPECT_EQ(hash(slots::k_part_b), b);
  EXPECT_EQ(fx::grubenv_list(m_disk, m_dir.path()), env_before); // slot B was never marked empty
}

// Patches partition `label`'s entry in both GPT copies as an attacker would (CRCs fixed).
void
patch_gpt(const fx::AbDisk& disk, std::string_view label, std::uint64_t first_lba, std::uint64_t last_lba)
{
  util::Fd fd = util::open_file(disk.path, O_RDWR);
  const std::uint64_t sector = 512;
  const std::uint64_t lbas = fs::file_size(disk.path) / sector;
  unsigned number = disk.gpt.by_label(label).number;
  for (std::uint64_t header_lba : {std::uint64_t{1}, lbas - 1}) {
    std::vector<unsigned char> h(sector);
    ASSERT_EQ(::pread(fd.get(), h.data(), sector, static_cast<off_t>(header_lba * sector)),
              static_cast<ssize_t>(sector));
    std::uint64_t entries_lba = le64(&h[72]);
    std::uint32_t count = h[80] | h[81] << 8 | h[82] << 16 | static_cast<std::uint32_t>(h[83]) << 24;
    std::uint32_t size = h[84] | h[85] << 8;
    std::vector<unsigned char> e(static_cast<std::size_t>(count) * size);
    ASSERT_EQ(::pread(fd.get(), e.data(), e.size(), static_cast<off_t>(entries_lba * sector)),
              static_cast<ssize_t>(e.size()));
    unsigned char* entry = &e[(number - 1) * size];
    put64(entry + 32, first_lba);
    put64(entry + 40, last_lba);
    put32(&h[88], slots::crc32(e.data(), e.size()));
    std::uint32_t header_size = h[12] | h[13] << 8;
    put32(&h[16], 0);
    put32(&h[16], slots::crc32(h.data(), header_size));
    ASSERT_EQ(::pwrite(fd.get(), e.data(), e.size(), static_cast<off_t>(entries_lba * sector)),
              static_cast<ssize_t>(e.size()));
    ASSERT_EQ(::pwrite(fd.get(), h.data(), sector, static_cast<off_t>(header_lba * sector)),
              static_cast<ssize_t>(sector));
  }
}

TEST_F(node_failclosed, a_patched_gpt_with_overlapping_outside_or_unequal_slots_is_refused)
{
  const auto a = m_disk.gpt.by_label(slots::k_part_a);
  const auto b = m_disk.gpt.by_label(slots::k_part_b);
  const auto data = m_disk.gpt.by_label(slots::k_part_data);
  const std::uint64_t slot_lbas = b.last_lba - b.first_lba;
  const std::uint64_t lbas = fs::file_size(m_disk.path) / 512;
  struct Case {
    std::string_view label;
    std::uint64_t first, last;
    std::string reason;
  };
  std::string a_hash = hash(slots::k_part_a);
  for (const Case& c : {Case{slots::k_part_b, a.first_lba + 8, a.first_lba + 8 + slot_lbas, "overlap"},
                        Case{slots::k_part_data, data.first_lba, lbas - 2, "outside the usable LBAs"},
                        Case{slots::k_part_b, b.first_lba, b.last_lba - 2048, "slots of different sizes"}}) {
    ScratchDir copy;
    fx::AbDisk disk = m_disk;
    disk.path = copy / "disk.img";
    fs::copy_file(m_disk.path, disk.path);
    patch_gpt(disk, c.label, c.first, c.last);
    auto r = test::run_kiln_node(
      {"--disk", disk.path.string(), "--booted", "A", "reimage", m_info.path.string(), "--trust", m_trust.string()});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(c.reason), std::string::npos) << r.err;
    EXPECT_EQ(fx::slot_hash(disk, slots::k_part_a), a_hash);
  }
}

// status while a reimage runs: the reimage holds the disk lock and has kiln-boot mounted
// (a second mount of it is refused as busy); status reads that mount's grubenv and says
// a reimage is in progress (slot B already marked empty), instead of failing.
TEST_F(node_failclosed, status_during_a_reimage_reads_the_grubenv_and_says_it_is_in_progress)
{
  int mounts_before = leftover_mounts();
  test::HttpServer server(m_dir / "bundles");
  test::write_text(m_dir / "cmdline", "ro quiet\n");
  util::RunOptions o;
  o.env = {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}};
  util::Child reimage({KILN_NODE_TEST_BIN, "--disk", m_disk.path.string(), "--booted", "A", "--json", "reimage",
                       server.url("/slow/60/" + m_info.path.filename().string()), "--trust", m_trust.string()},
                      o);
  // Until status has seen the reimage at work with slot B already invalidated (a run
  // between the lock and the invalidation sees B still good, which is as true).
  bool seen = false;
  bool said = false;
  for (int i = 0; i < 400 && !seen; ++i) {
    auto r = node({"--booted", "A", "--json", "status"}, "ro quiet");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json s = json::parse(r.out);
    if (s["in_progress"].get<bool>()) {
      EXPECT_EQ(s["slots"]["A"]["state"], "good");
      seen = s["slots"]["B"]["state"] == "empty"; // what the running reimage wrote first
      if (!said) {
        auto text = node({"--booted", "A", "status"}, "ro quiet");
        ASSERT_EQ(text.exit_code, 0) << text.err;
        said = text.out.find("in progress: another kiln-node holds the disk") != std::string::npos;
        EXPECT_TRUE(said) << text.out;
      }
    }
    if (!seen) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_TRUE(seen) << "status never saw the reimage in progress with slot B invalidated";
  EXPECT_EQ(reimage.wait(), 0);
  auto r = node({"--booted", "A", "--json", "status"}, "ro quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json s = json::parse(r.out);
  EXPECT_FALSE(s["in_progress"].get<bool>());
  EXPECT_EQ(s["slots"]["B"]["state"], "trial");
  EXPECT_EQ(leftover_mounts(), mounts_before) << "a mount was left behind";
}

// The running system's /boot/kiln is used only when it is this --disk's own kiln-boot
// (device numbers): here another file system (a tmpfs with a decoy grubenv, in a mount
// namespace of the test's own) sits there while the command line names this disk's slot A.
TEST_F(node_failclosed, a_boot_kiln_that_is_not_the_disks_own_kiln_boot_is_refused)
{
  test::write_text(m_dir / "cmdline", "ro root=PARTUUID=" + partuuid(slots::k_part_a) + " kiln.slot=A\n");
  std::string env_before = fx::grubenv_list(m_disk, m_dir.path());
  for (const char* command : {"status", "mark-good", "rollback"}) {
    std::string script = "set -e; mount --make-rprivate /; mount -t tmpfs decoy /boot; mkdir -p /boot/kiln/grub; "
                         "grub-editenv /boot/kiln/grub/grubenv create; "
                         "grub-editenv /boot/kiln/grub/grubenv set kiln_order='B A' kiln_A_state=good "
                         "kiln_B_state=good kiln_A_name=decoy; "
                         "'" +
                         std::string(KILN_NODE_TEST_BIN) + "' --disk '" + m_disk.path.string() + "' " + command +
                         "; echo decoy-env:; grub-editenv /boot/kiln/grub/grubenv list";
    util::RunOptions o;
    o.env = {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}};
    auto r = util::run({"unshare", "-m", "sh", "-c", script}, o);
    EXPECT_NE(r.exit_code, 0) << command << ": " << r.out;
    EXPECT_NE(
      r.err.find("/boot/kiln: is not the kiln-boot partition of " + m_disk.path.string() + " (device numbers differ)"),
      std::string::npos)
      << command << ": " << r.err;
    EXPECT_EQ(r.out.find("decoy"), std::string::npos) << command << ": the decoy grubenv was read: " << r.out;
  }
  EXPECT_EQ(fx::grubenv_list(m_disk, m_dir.path()), env_before);
}

} // namespace
} // namespace kiln
