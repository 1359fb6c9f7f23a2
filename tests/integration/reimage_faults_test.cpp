// kiln-node reimage under faults: a process that dies at each phase (the test-only
// KILN_NODE_FAULT hook, _exit as a power cut would) and corrupt or untrusted bundles.
// Every time: the booted slot's bytes are untouched, the next boot is unchanged or a
// verified slot, the block stays readable by grub-editenv, errors are one line.
#include "integration/node_fixture.hpp"

#include "core/manifest/manifest.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace kiln {
namespace {

using nlohmann::json;
using test::ScratchDir;
namespace fs = std::filesystem;
namespace fx = test::node;

class reimage_faults : public fx::NodeScene {
protected:
  void SetUp() override
  {
    make_scene();
    m_a = fx::slot_hash(m_disk, slots::k_part_a);
    m_b = fx::slot_hash(m_disk, slots::k_part_b);
  }

  util::RunResult reimage(const std::string& bundle, const std::map<std::string, std::string>& env = {},
                          const fs::path& trust = {})
  {
    return test::run_kiln_node({"--disk", m_disk.path.string(), "--booted", "A", "--json", "reimage", bundle, "--trust",
                                (trust.empty() ? m_trust : trust).string()},
                               env);
  }

  json status()
  {
    auto r = test::run_kiln_node({"--disk", m_disk.path.string(), "--booted", "A", "--json", "status"});
    EXPECT_TRUE(r.ok()) << r.err;
    return r.ok() ? json::parse(r.out) : json::object();
  }

  // A crashed kiln-node leaves kiln-boot mounted through a loop device over the disk
  // (a power cut would clear it): unmount it as a reboot would.
  void unmount_leftovers()
  {
    auto l = util::run({"losetup", "-j", m_disk.path.string(), "-O", "NAME", "-n"});
    std::istringstream devices(l.out);
    for (std::string dev; std::getline(devices, dev);) {
      std::ifstream mounts("/proc/mounts");
      for (std::string line; std::getline(mounts, line);) {
        std::istringstream words(line);
        std::string source, target;
        words >> source >> target;
        if (source == dev) {
          util::run({"umount", target});
          std::error_code ec;
          fs::remove(target, ec); // the crashed run's private mount point
        }
      }
      util::run({"losetup", "-d", dev});
    }
  }

  // The booted slot untouched, A still boots, B empty (never bootable half-written).
  void expect_safe(const std::string& what, bool b_untouched)
  {
    SCOPED_TRACE(what);
    EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_a), m_a);
    if (b_untouched) {
      EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b), m_b);
    }
    json s = status();
    EXPECT_EQ(s["next_boot"]["slot"], "A");
    EXPECT_EQ(s["next_boot"]["reason"], "good");
    EXPECT_EQ(s["slots"]["B"]["state"], "empty");
    std::string env = fx::grubenv_list(m_disk, m_dir.path());
    EXPECT_NE(env.find("kiln_A_state=good\n"), std::string::npos) << env;
  }

  void expect_refused(const util::RunResult& r, const std::string& reason, bool b_untouched)
  {
    SCOPED_TRACE(reason);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("kiln-node: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
    expect_safe(reason, b_untouched);
  }

  // The bundle's members in a directory, and a bundle packed back from them (GNU tar,
  // pax format, members in the order given).
  fs::path unpack(const fs::path& bundle)
  {
    fs::path dir = m_dir / ("x-" + std::to_string(m_counter++));
    fs::create_directories(dir);
    fx::must({"tar", "-xf", bundle.string(), "-C", dir.string()});
    return dir;
  }
  // One byte of the unpacked rootfs.data flipped (the bmap and manifest left as they are).
  static void flip_data_byte(const fs::path& dir)
  {
    util::Fd fd = util::open_file(dir / "rootfs.data", O_RDWR);
    char c = 0;
    ASSERT_EQ(::pread(fd.get(), &c, 1, 100000), 1);
    c = static_cast<char>(c ^ 0x40);
    ASSERT_EQ(::pwrite(fd.get(), &c, 1, 100000), 1);
  }
  fs::path pack(const fs::path& dir, const std::vector<std::string>& members)
  {
    fs::path out = m_dir / ("repacked-" + std::to_string(m_counter++) + ".kbundle");
    std::vector<std::string> argv = {"tar", "--format=pax", "-cf", out.string(), "-C", dir.string()};
    argv.insert(argv.end(), members.begin(), members.end());
    fx::must(argv);
    return out;
  }
  std::vector<std::string> all_members()
  {
    return {"manifest.json", "manifest.json.sig", "rootfs.bmap", "rootfs.data"};
  }

  // Signs `text` as the bundle's manifest into dir (manifest.json + manifest.json.sig).
  void sign_into(const fs::path& dir, const std::string& text)
  {
    test::write_text(dir / "manifest.json", text);
    manifest::sign_manifest(dir / "manifest.json", crypto::load_private_key(m_key.key));
    fs::remove(dir / "manifest.json.sig.bin");
  }

  std::string m_a, m_b;
  int m_counter = 0;
};

TEST_F(reimage_faults, a_crash_at_any_phase_leaves_the_booted_slot_booting_and_a_rerun_finishes)
{
  fs::path old = m_dir / "old.img";
  for (const char* phase : {"after-invalidate", "mid-write", "before-verify", "before-switch", "during-switch"}) {
    SCOPED_TRACE(phase);
    fs::path where = m_dir / phase;
    fs::create_directories(where);
    m_disk = fx::make_ab_disk(
      where, {"kiln_order=A B", "kiln_A_state=good", "kiln_A_tries=0", "kiln_B_state=empty", "kiln_B_tries=0"}, old);
    m_a = fx::slot_hash(m_disk, slots::k_part_a);
    auto r = reimage(m_info.path.string(), {{"KILN_NODE_FAULT", phase}});
    EXPECT_EQ(r.exit_code, 99) << r.err;
    unmount_leftovers();
    expect_safe(phase, false);
    EXPECT_TRUE(fx::boot_file(m_disk, where, "/grub/kiln-write-B", where / "journal-out"));
    // Run again: it completes; the bytes a crashed run wrote are not written twice.
    r = reimage(m_info.path.string());
    ASSERT_TRUE(r.ok()) << r.err;
    json j = json::parse(r.out);
    // The crashed run's journal on kiln-boot: the rerun resumes without reading the slot.
    EXPECT_EQ(j["write_mode"], "resume") << j.dump();
    if (std::string_view(phase) != "after-invalidate") {
      EXPECT_GT(j["skipped_bytes"].get<std::uint64_t>(), 0u) << j.dump();
    }
    if (std::string_view(phase) == "mid-write") {
      EXPECT_GT(j["written_bytes"].get<std::uint64_t>(), 0u) << j.dump(); // the second half
    } else if (std::string_view(phase) != "after-invalidate") {
      EXPECT_EQ(j["written_bytes"], 0u) << j.dump(); // all of it was on the slot
    }
    // Switched to: nothing is left to resume.
    EXPECT_FALSE(fx::boot_file(m_disk, where, "/grub/kiln-write-B", where / "journal-out"));
    json s = status();
    EXPECT_EQ(s["next_boot"]["slot"], "B");
    EXPECT_EQ(s["slots"]["B"]["state"], "trial");
    EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, fs::file_size(m_new)), crypto::sha256_file(m_new));
    EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_a), m_a);
  }
}

// A misspelt point would make a crash test pass without crashing: main refuses it.
TEST_F(reimage_faults, an_unknown_fault_point_is_refused_before_anything_is_touched)
{
  auto r = reimage(m_info.path.string(), {{"KILN_NODE_FAULT", "mid-wrte"}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(
    r.err.rfind("kiln-node: error: KILN_NODE_FAULT: unknown fault point 'mid-wrte'; one of after-invalidate, ", 0), 0u)
    << r.err;
  expect_safe("unknown fault point", true);
}

TEST_F(reimage_faults, untrusted_bundles_are_refused_before_a_byte_is_written)
{
  // Unsigned.
  fs::create_directories(m_dir / "u");
  auto unsigned_bundle = bundle::write_bundle(m_new, m_dir / "u", fx::base_manifest("node-v2"), nullptr);
  expect_refused(reimage(unsigned_bundle.path.string()), "not signed", true);
  // --no-verify-signature accepts it (the bmap and data are still checked).
  // (Checked last, below, because it writes slot B.)

  // Unknown key.
  fx::Keys stranger = fx::make_key(m_dir / "keys", "stranger");
  auto skey = crypto::load_private_key(stranger.key);
  fs::create_directories(m_dir / "s");
  auto by_stranger = bundle::write_bundle(m_new, m_dir / "s", fx::base_manifest("node-v2"), &skey);
  expect_refused(reimage(by_stranger.path.string()), "unknown key", true);

  // Revoked key (its .pem still in the directory).
  fs::path revoked = fx::trust_dir(m_dir / "trust-revoked", {m_key}, {m_key.id});
  expect_refused(reimage(m_info.path.string(), {}, revoked), "revoked", true);

  // Manifest tampered with one line after signing.
  fs::path dir = unpack(m_info.path);
  std::string text = test::read_text(dir / "manifest.json");
  auto at = text.find("\"node-v2\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 9, "\"node-v3\"");
  test::write_text(dir / "manifest.json", text);
  expect_refused(reimage(pack(dir, all_members()).string()), "signature", true);

  // Signature bytes tampered.
  dir = unpack(m_info.path);
  json sig = json::parse(test::read_text(dir / "manifest.json.sig"));
  std::string raw = *crypto::base64_decode(sig["signature"].get<std::string>());
  raw[5] = static_cast<char>(raw[5] ^ 1);
  sig["signature"] = crypto::base64_encode(raw);
  test::write_text(dir / "manifest.json.sig", sig.dump());
  expect_refused(reimage(pack(dir, all_members()).string()), "signature", true);

  // A bmap that does not match the signed manifest.
  dir = unpack(m_info.path);
  fs::path other = fx::make_rootfs(m_dir.path(), "other", 16, fx::sample_files("3"));
  test::write_text(dir / "rootfs.bmap", bmap::render(bmap::generate(other)));
  expect_refused(reimage(pack(dir, all_members()).string()), "rootfs.bmap", true);

  // Not a bundle: members out of order, and a compressed bundle.
  dir = unpack(m_info.path);
  expect_refused(reimage(pack(dir, {"rootfs.bmap", "manifest.json", "manifest.json.sig", "rootfs.data"}).string()),
                 "not a slot bundle", true);
  fx::must({"sh", "-c", "gzip -c '" + m_info.path.string() + "' > '" + (m_dir / "z.kbundle").string() + "'"});
  expect_refused(reimage((m_dir / "z.kbundle").string()), "not a slot bundle", true);

  // An image larger than the slot (24 MiB).
  fs::path big = fx::make_rootfs(m_dir.path(), "big", 32, fx::sample_files("4"));
  auto key = crypto::load_private_key(m_key.key);
  fs::create_directories(m_dir / "big");
  auto big_bundle = bundle::write_bundle(big, m_dir / "big", fx::base_manifest("node-big"), &key);
  expect_refused(reimage(big_bundle.path.string()), "larger than slot B", true);

  // Finally, --no-verify-signature takes the unsigned bundle.
  auto r = test::run_kiln_node({"--disk", m_disk.path.string(), "--booted", "A", "--json", "reimage",
                                unsigned_bundle.path.string(), "--no-verify-signature"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(json::parse(r.out)["key_id"].is_null());
}

TEST_F(reimage_faults, corrupt_data_never_becomes_bootable)
{
  // One flipped byte in rootfs.data: the range checksum fails while streaming.
  fs::path dir = unpack(m_info.path);
  flip_data_byte(dir);
  expect_refused(reimage(pack(dir, all_members()).string()), "checksum mismatch", false);

  // Truncated bundle.
  std::string bytes = test::read_text(m_info.path);
  test::write_text(m_dir / "trunc.kbundle", bytes.substr(0, bytes.size() * 6 / 10));
  expect_refused(reimage((m_dir / "trunc.kbundle").string()), "runcated", false);

  // A signed manifest whose rootfs.data digest is wrong (ranges all right): refused at
  // the end of the data, before the switch.
  dir = unpack(m_info.path);
  std::string text = test::read_text(dir / "manifest.json");
  std::string data_digest = m_info.manifest.files[1].sha256;
  auto at = text.find(data_digest);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 64, std::string(64, 'e'));
  sign_into(dir, text);
  expect_refused(reimage(pack(dir, all_members()).string()), "rootfs.data", false);
}

// A rewrite of the image the grubenv says slot B holds reads the slot back first: when
// it matches, nothing of the bundle's data is read (a flipped byte in rootfs.data goes
// unnoticed because it is never used); when the slot changed since, only the chunks
// that differ are written.
TEST_F(reimage_faults, a_rewrite_reads_the_slot_back_first_and_writes_only_what_changed)
{
  auto r = reimage(m_info.path.string());
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["write_mode"], "straight");
  const std::string image_hash = crypto::sha256_file(m_new);

  fs::path dir = unpack(m_info.path);
  flip_data_byte(dir);
  r = reimage(pack(dir, all_members()).string());
  ASSERT_TRUE(r.ok()) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["write_mode"], "compare");
  EXPECT_EQ(j["written_bytes"], 0u);
  EXPECT_EQ(j["skipped_bytes"], j["mapped_bytes"]);

  // The slot changed since (one mapped 4 KiB block): the good bundle is read and only
  // the chunk holding that block written.
  const auto& b = m_disk.gpt.by_label(slots::k_part_b);
  {
    util::Fd fd = util::open_file(m_disk.path, O_RDWR);
    ASSERT_EQ(::pwrite(fd.get(), std::string(4096, 'z').data(), 4096, static_cast<off_t>(b.offset)), 4096);
  }
  r = reimage(m_info.path.string());
  ASSERT_TRUE(r.ok()) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["write_mode"], "compare");
  EXPECT_GT(j["written_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_LE(j["written_bytes"].get<std::uint64_t>(), 1u << 20);
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, fs::file_size(m_new)), image_hash);
}

} // namespace
} // namespace kiln
