// The ids and times qemu-img stamps into vmdk and vhd files, pinned from the build's
// identity (stable_ids.hpp): real qemu-img conversions of one raw disk, made at different
// moments, come out byte-identical once pinned, still read back as the same disk, and
// differ only where the identity or SOURCE_DATE_EPOCH differ.
#include "core/crypto/sha256.hpp"
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
  fs::path b = convert("b.vmdk", "vmdk", "subformat=streamOptimized");
  // The descriptor names its extent file: give both the same name to compare.
  fs::path b_same = m_dir / "same" / "a.vmdk";
  fs::create_directories(b_same.parent_path());
  fs::remove(b);
  formats::qemu_img(
    util::system_runner(), "test",
    {"convert", "-q", "-O", "vmdk", "-o", "subformat=streamOptimized", m_raw.string(), b_same.string()});
  ASSERT_FALSE(differing(a, b_same).empty()) << "qemu-img no longer randomises the CID: this test needs a new reason";

  formats::pin_vmdk(a, "final-key-1");
  formats::pin_vmdk(b_same, "final-key-1");
  EXPECT_EQ(crypto::sha256_file(a), crypto::sha256_file(b_same));
  EXPECT_NE(test::read_text(a).find("CID=" + formats::vmdk_cid("final-key-1") + "\n"), std::string::npos);
  EXPECT_TRUE(same_disk(a, "vmdk"));

  formats::pin_vmdk(b_same, "final-key-2");
  std::vector<std::size_t> at = differing(a, b_same);
  EXPECT_FALSE(at.empty());
  EXPECT_LE(at.size(), 8u); // the CID's hex digits and nothing else
}

// qemu prints the CID unpadded: one with a leading zero has 7 digits, and the pinned
// line is longer than the one it replaces.
TEST_F(stable_ids, a_short_cid_is_replaced_in_the_descriptors_padding)
{
  fs::path a = convert("a.vmdk", "vmdk", "subformat=streamOptimized");
  std::string bytes = test::read_text(a);
  const std::size_t at = bytes.find("\nCID=");
  ASSERT_NE(at, std::string::npos);
  const std::size_t end = bytes.find('\n', at + 1);
  // The descriptor's text moves up by what the CID lost; its zero padding grows by as much.
  const std::string old_line = bytes.substr(at, end - at);
  const std::string new_line = "\nCID=1234567";
  const std::size_t text_end = bytes.find('\0', end);
  ASSERT_NE(text_end, std::string::npos);
  const std::string shorter = bytes.substr(0, at) + new_line + bytes.substr(end, text_end - end) +
                              std::string(old_line.size() - new_line.size(), '\0') + bytes.substr(text_end);
  ASSERT_EQ(shorter.size(), bytes.size());
  test::write_text(a, shorter);
  ASSERT_TRUE(same_disk(a, "vmdk"));

  formats::pin_vmdk(a, "final-key-1");
  const std::string pinned = test::read_text(a);
  EXPECT_NE(pinned.find("\nCID=" + formats::vmdk_cid("final-key-1") + "\nparentCID="), std::string::npos);
  EXPECT_EQ(pinned.size(), bytes.size());
  EXPECT_TRUE(same_disk(a, "vmdk"));
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
