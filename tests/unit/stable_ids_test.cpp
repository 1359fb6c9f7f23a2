// The ids and times qemu-img stamps into vmdk and vhd files, pinned from the build's
// identity (stable_ids.hpp): real qemu-img conversions of one raw disk, made at different
// moments, come out byte-identical once pinned, still read back as the same disk, and
// differ only where the identity or SOURCE_DATE_EPOCH differ.
#include "core/crypto/sha256.hpp"
#include "core/util/bytes.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/runner.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/formats/stable_ids.hpp"
#include "core/util/source_date_epoch.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fcntl.h>
#include <thread>

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t k_mib = 1 << 20;

class stable_ids : public ::testing::Test {
protected:
  void SetUp() override
  {
    test::require_program("qemu-img", "qemu-utils");
    m_raw = m_dir / "disk.raw";
    formats::qemu_img(util::system_runner(), "test", {"create", "-q", "-f", "raw", m_raw.string(), "8M"});
    util::Fd fd(::open(m_raw.c_str(), O_WRONLY | O_CLOEXEC));
    const std::string data = "kiln stable ids";
    util::pwrite_full(fd.get(), data.data(), data.size(), k_mib, m_raw.string());
    fd.close(m_raw.string());
  }

  // Converts the raw disk into `name` of `format` (qemu-img's option string).
  fs::path convert(const std::string& name, const std::string& format, const std::string& options)
  {
    fs::path out = m_dir / name;
    formats::qemu_img(util::system_runner(), "test",
                      {"convert", "-q", "-O", format, "-o", options, m_raw.string(), out.string()});
    return out;
  }

  // Byte offsets at which two files of equal size differ.
  static std::vector<std::size_t> differing(const fs::path& a, const fs::path& b)
  {
    std::string x = test::read_text(a), y = test::read_text(b);
    EXPECT_EQ(x.size(), y.size());
    std::vector<std::size_t> at;
    for (std::size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      if (x[i] != y[i]) {
        at.push_back(i);
      }
    }
    return at;
  }

  // True when qemu-img reads `image` (of qemu's `format`: a fixed VHD is not probed) as
  // the same disk content as the raw one.
  bool same_disk(const fs::path& image, const std::string& format)
  {
    util::RunResult r = util::system_runner().run(
      {"qemu-img", "compare", "-q", "-f", "raw", "-F", format, m_raw.string(), image.string()});
    return r.ok();
  }

  test::ScratchDir m_dir;
  fs::path m_raw;
};

TEST_F(stable_ids, vmdk_conversions_differ_in_their_cid_until_pinned)
{
  fs::path a = convert("a.vmdk", "vmdk", "subformat=streamOptimized");
  // The descriptor names its extent file: give both the same name to compare.
  fs::path b_same = m_dir / "same" / "a.vmdk";
  fs::create_directories(b_same.parent_path());
  formats::qemu_img(
    util::system_runner(), "test",
    {"convert", "-q", "-O", "vmdk", "-o", "subformat=streamOptimized", m_raw.string(), b_same.string()});
  ASSERT_FALSE(differing(a, b_same).empty()) << "qemu-img no longer randomises the CID: this test needs a new reason";

  formats::pin_vmdk(a, "final-key-1");
  formats::pin_vmdk(b_same, "final-key-1");
  EXPECT_EQ(crypto::sha256_file(a), crypto::sha256_file(b_same));
  EXPECT_NE(test::read_text(a).find("\nCID=" + formats::vmdk_cid("final-key-1") + "\nparentCID=ffffffff\n"),
            std::string::npos);
  EXPECT_TRUE(same_disk(a, "vmdk"));

  formats::pin_vmdk(b_same, "final-key-2");
  std::vector<std::size_t> at = differing(a, b_same);
  EXPECT_FALSE(at.empty());
  EXPECT_LE(at.size(), 8u); // the CID's hex digits and nothing else
}

// What qemu 7.2 leaves in a streamOptimized VMDK's descriptor sectors, made here for each
// pair of CID lengths instead of hoping qemu draws them: vmdk_co_do_create prints a first
// CID ("CID=%x"), and the first write re-prints another through vmdk_write_cid
// (block/vmdk.c), which reads the whole area, prints the new CID and the rest of the text
// from "parentCID" on over it, and writes the whole area back, stale bytes of the longer
// old text past the new NUL included.
class vmdk_descriptor : public stable_ids {
protected:
  void SetUp() override
  {
    stable_ids::SetUp();
    m_vmdk = convert("a.vmdk", "vmdk", "subformat=streamOptimized");
    std::string bytes = test::read_text(m_vmdk);
    ASSERT_GE(bytes.size(), 512u);
    const auto* header = reinterpret_cast<const unsigned char*>(bytes.data());
    m_offset = util::le64(header + 28) * 512;
    m_size = util::le64(header + 36) * 512;
    ASSERT_LE(m_offset + m_size, bytes.size());
    m_area = bytes.substr(m_offset, m_size);
  }

  // The area as vmdk_co_do_create writes it with a CID of `digits` hex digits: the text
  // then zeros.
  std::string created(std::size_t digits) const
  {
    std::string text = m_area.substr(0, m_area.find('\0'));
    const std::size_t at = text.find("\nCID=") + 5;
    text.replace(at, text.find('\n', at) - at, cid_of(digits, 'c'));
    text.resize(m_area.size(), '\0');
    return text;
  }

  // vmdk_write_cid(bs, CID of `digits` digits) on `area`.
  static std::string rewrite_cid(std::string area, std::size_t digits)
  {
    const std::string tail = area.substr(area.find("parentCID"));
    const std::string rest = tail.substr(0, tail.find('\0'));
    const std::size_t at = area.find("CID") + 4;
    const std::string printed = cid_of(digits, 'e') + "\n" + rest;
    area.replace(at, printed.size() + 1, printed + '\0');
    return area;
  }

  // A CID of `digits` digits, none a leading zero.
  static std::string cid_of(std::size_t digits, char fill) { return "1" + std::string(digits - 1, fill); }

  // The test's VMDK with its descriptor area replaced by `area`.
  fs::path with_area(const std::string& area, const std::string& name)
  {
    std::string bytes = test::read_text(m_vmdk);
    bytes.replace(m_offset, m_size, area);
    fs::path out = m_dir / name / "a.vmdk";
    fs::create_directories(out.parent_path());
    test::write_text(out, bytes);
    return out;
  }

  fs::path m_vmdk;
  std::uint64_t m_offset = 0, m_size = 0;
  std::string m_area;
};

TEST_F(vmdk_descriptor, every_pair_of_cid_lengths_pins_to_the_same_bytes)
{
  std::string reference;
  int stale = 0;
  for (std::size_t first = 1; first <= 8; ++first) {
    for (std::size_t second = 1; second <= 8; ++second) {
      const std::string area = rewrite_cid(created(first), second);
      ASSERT_EQ(area.size(), m_size);
      const std::string text = area.substr(0, area.find('\0'));
      // Past the text: zeros unless the second CID is shorter by 2 or more (by 1, the old
      // text's NUL is the only byte past the new one).
      const bool clean = area.find_first_not_of('\0', text.size()) == std::string::npos;
      EXPECT_EQ(clean, first < second + 2) << first << " then " << second << " digits";
      stale += clean ? 0 : 1;
      const fs::path vmdk = with_area(area, std::to_string(first) + "-" + std::to_string(second));
      if (first == 1 || second == 1) { // qemu reads what it would have written
        EXPECT_TRUE(same_disk(vmdk, "vmdk")) << first << " then " << second << " digits";
      }
      formats::pin_vmdk(vmdk, "final-key-1");
      const std::string digest = crypto::sha256_file(vmdk);
      if (reference.empty()) {
        reference = digest;
        EXPECT_TRUE(same_disk(vmdk, "vmdk"));
      }
      EXPECT_EQ(digest, reference) << first << " then " << second << " digits";
    }
  }
  EXPECT_EQ(stale, 21); // the pairs that leave a stale tail: the case once missed
}

TEST_F(vmdk_descriptor, a_pinned_area_is_its_text_then_zeros)
{
  const std::string pinned = formats::canonical_vmdk_descriptor(rewrite_cid(created(8), 3), "final-key-1");
  ASSERT_EQ(pinned.size(), m_size);
  const std::size_t end = pinned.find('\0');
  EXPECT_EQ(pinned.find_first_not_of('\0', end), std::string::npos);
  EXPECT_NE(pinned.find("\nCID=" + formats::vmdk_cid("final-key-1") + "\nparentCID=ffffffff\n"), std::string::npos);
  EXPECT_EQ(formats::canonical_vmdk_descriptor(pinned, "final-key-1"), pinned); // pinning twice changes nothing
}

TEST_F(vmdk_descriptor, a_descriptor_not_as_qemu_writes_it_is_refused)
{
  const std::string good = created(8);
  auto refused = [&](std::string area, const std::string& why) {
    try {
      formats::canonical_vmdk_descriptor(area, "k");
      ADD_FAILURE() << "accepted: " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  refused(std::string(m_size, 'x'), "no NUL");
  std::string no_cid = good;
  no_cid.replace(no_cid.find("\nCID="), 5, "\nXID=");
  refused(no_cid, "exactly one CID");
  std::string bad_hex = good;
  bad_hex.replace(bad_hex.find("\nCID=") + 5, 1, "g");
  refused(bad_hex, "CID is not 1 to 8 hex digits");
  std::string parent = good;
  parent.insert(parent.find("\nparentCID="), "\nparentFileNameHint=\"base.vmdk\"");
  parent.resize(m_size);
  refused(parent, "names a parent");
  std::string full = good;
  full.replace(0, 4, "#Disk");
  refused(full, "Disk DescriptorFile");
}

TEST_F(stable_ids, vhd_conversions_differ_in_time_and_id_until_pinned)
{
  fs::path a = convert("a.vhd", "vpc", "subformat=fixed,force_size=on");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // a different time stamp
  fs::path b = convert("b.vhd", "vpc", "subformat=fixed,force_size=on");
  ASSERT_FALSE(differing(a, b).empty());

  formats::pin_vhd(a, "final-key-1", 1700000000);
  formats::pin_vhd(b, "final-key-1", 1700000000);
  EXPECT_EQ(crypto::sha256_file(a), crypto::sha256_file(b));
  EXPECT_TRUE(same_disk(a, "vpc")); // qemu reads the footer back: its checksum holds

  // The time stamp is SOURCE_DATE_EPOCH in the VHD's epoch (2000-01-01), big-endian.
  std::string bytes = test::read_text(a);
  std::string footer = bytes.substr(bytes.size() - 512);
  const std::uint32_t stamp = (std::uint32_t(std::uint8_t(footer[24])) << 24) |
                              (std::uint32_t(std::uint8_t(footer[25])) << 16) |
                              (std::uint32_t(std::uint8_t(footer[26])) << 8) | std::uint8_t(footer[27]);
  EXPECT_EQ(stamp, 1700000000u - 946684800u);

  // Another epoch or identity changes the footer only.
  formats::pin_vhd(b, "final-key-1", 1700000001);
  for (std::size_t i : differing(a, b)) {
    EXPECT_GE(i, bytes.size() - 512);
  }
  formats::pin_vhd(b, "final-key-2", 1700000000);
  std::vector<std::size_t> at = differing(a, b);
  EXPECT_FALSE(at.empty());
  for (std::size_t i : at) {
    EXPECT_GE(i, bytes.size() - 512);
  }
  EXPECT_TRUE(same_disk(b, "vpc"));
}

TEST_F(stable_ids, a_dynamic_vhd_has_both_footers_pinned)
{
  fs::path a = convert("a.vhd", "vpc", "subformat=dynamic");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  fs::path b = convert("b.vhd", "vpc", "subformat=dynamic");
  formats::pin_vhd(a, "k", std::nullopt);
  formats::pin_vhd(b, "k", std::nullopt);
  EXPECT_EQ(crypto::sha256_file(a), crypto::sha256_file(b));
  std::string bytes = test::read_text(a);
  EXPECT_EQ(bytes.substr(0, 512), bytes.substr(bytes.size() - 512));
  EXPECT_TRUE(same_disk(a, "vpc"));
}

TEST_F(stable_ids, other_formats_are_left_alone_and_foreign_files_refused)
{
  fs::path q = convert("a.qcow2", "qcow2", "compat=1.1");
  const std::string before = crypto::sha256_file(q);
  formats::pin_output(q, "qcow2", "k", 1);
  formats::pin_output(m_raw, "raw", "k", 1); // raw: nothing to pin either
  EXPECT_EQ(test::read_text(m_raw).substr(k_mib, 15), "kiln stable ids");
  EXPECT_EQ(crypto::sha256_file(q), before);

  EXPECT_NE(test::error_of([&] { formats::pin_vmdk(m_raw, "k"); }).reason().find("not a VMDK"), std::string::npos);
  EXPECT_NE(test::error_of([&] { formats::pin_vhd(q, "k", 1); }).reason().find("no valid VHD footer"),
            std::string::npos);
  fs::path vhd = convert("x.vhd", "vpc", "subformat=fixed,force_size=on");
  EXPECT_NE(test::error_of([&] { formats::pin_vhd(vhd, "k", 253402300799); }).reason().find("past what a VHD"),
            std::string::npos);
}

TEST(source_date_epoch, whole_seconds_or_a_clear_error)
{
  EXPECT_EQ(util::parse_source_date_epoch(nullptr), std::nullopt);
  EXPECT_EQ(util::parse_source_date_epoch("0"), 0);
  EXPECT_EQ(util::parse_source_date_epoch("1700000000"), 1700000000);
  EXPECT_EQ(util::parse_source_date_epoch("253402300799"), 253402300799);
  for (const char* bad : {"", "-1", "1.5", "17e8", " 1", "253402300800", "99999999999999999999", "now"}) {
    Error e = test::error_of([&] { util::parse_source_date_epoch(bad); });
    EXPECT_EQ(e.subject(), "SOURCE_DATE_EPOCH") << bad;
    EXPECT_NE(e.reason().find("whole number of seconds"), std::string::npos) << bad;
  }
}

} // namespace
} // namespace kiln
