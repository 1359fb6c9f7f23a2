// Reproducible A/B disks (README, "Reproducible builds"): a `layout: ab` recipe with ext4
// slots built twice cold, in two caches, with the same SOURCE_DATE_EPOCH, gives the same
// bytes in the disk (raw, qcow2, vmdk, vhd), the slot bundle and the manifest
// (support/reproducible.hpp). That takes every part of the A/B stage: slot A, /boot and
// kiln-data re-made from their trees, the ESP's times set to the epoch, GRUB's images
// (BIOS core.img in the BIOS boot partition, the EFI loader), the GPT's GUIDs from the
// stage key. XFS slots (the EL7 default) are not reproducible: README says why.
#include "support/ab_fixture.hpp"
#include "support/reproducible.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

TEST(ReproducibleAb, TwoColdBuildsOfAnExt4AbDiskGiveTheSameBytes)
{
  test::ScratchDir dir;
  const test::AbFixture& fixture = test::ab_fixture();
  ASSERT_TRUE(fixture.error.empty()) << fixture.error;
  const fs::path tar = test::ab_fixture_bootstrap_tar(dir.path());
  ASSERT_TRUE(fs::is_regular_file(tar)) << tar;
  test::write_text(dir / "recipe.yaml",
                   "name: twice-ab\n"
                   "base: {path: " +
                     tar.string() +
                     "}\n"
                     "size: 2G\n"
                     "layout: ab\n"
                     "ab: {root_fs: ext4, data_fs: ext4, esp_size: 32M, boot_size: 64M,\n"
                     "     slot_size: 768M, data_size: 512M}\n"
                     "outputs: {formats: [raw, qcow2, vmdk, vhd]}\n"
                     "stages:\n"
                     "  - name: node\n"
                     "    steps:\n"
                     "      - file: {path: /etc/motd, content: \"reproducible A/B\\n\"}\n"
                     "      - run: mkdir -p /var/lib/docker && echo d > /var/lib/docker/marker\n"
                     "      - run: rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/locale/*\n");
  test::TwiceResult r = test::build_twice_and_compare(dir / "recipe.yaml", dir.path(), "twice-ab");
  // Every file system of the disk (partitions as core/slots/abi.hpp numbers them): three
  // re-made, the ESP's times set, none kept.
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = r.build_log.find(what); at != std::string::npos; at = r.build_log.find(what, at + 1)) {
      ++n;
    }
    return n;
  };
  for (const char* said :
       {"kiln-esp (/dev/sdb2, vfat) times set to the epoch", "kiln-boot (/dev/sdb3, ext4) re-made from its tree",
        "kiln-a (/dev/sdb4, ext4) re-made from its tree", "kiln-data (/dev/sdb6, ext4) re-made from its tree"}) {
    EXPECT_EQ(count(said), 1u) << said << "\n" << r.build_log;
  }
  EXPECT_EQ(count("not reproducible"), 0u) << r.build_log;
  // raw, its bmap, qcow2, vmdk, vhd and the slot bundle.
  EXPECT_EQ(r.outputs, 6u);
  EXPECT_TRUE(fs::is_regular_file(dir / "out1/twice-ab.kbundle"));
}

} // namespace
} // namespace kiln
