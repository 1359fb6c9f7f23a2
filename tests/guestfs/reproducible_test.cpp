// Reproducible builds (README, "Reproducible builds"): one plain-layout recipe built twice
// cold, in two caches, with the same SOURCE_DATE_EPOCH, gives the same bytes in every
// output and the same manifest (support/reproducible.hpp). When they differ, kiln diff
// names the files that differ.
//
// The base is the A/B fixture's bootstrap tar, given by path: the same input to both
// builds, without a second mmdebstrap (SOURCE_DATE_EPOCH is part of a bootstrapped base's
// key, so the fixture's base disk is not this test's).
#include "support/ab_fixture.hpp"
#include "support/reproducible.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

TEST(Reproducible, TwoColdBuildsGiveTheSameBytes)
{
  test::ScratchDir dir;
  const test::AbFixture& fixture = test::ab_fixture();
  ASSERT_TRUE(fixture.error.empty()) << fixture.error;
  const fs::path tar = test::ab_fixture_bootstrap_tar(dir.path());
  ASSERT_TRUE(fs::is_regular_file(tar)) << tar;
  test::write_text(dir / "files/motd", "reproducible\n");
  test::write_text(dir / "recipe.yaml", "name: twice\n"
                                        "base: {path: " +
                                          tar.string() +
                                          "}\n"
                                          "size: 1G\n"
                                          "outputs: {formats: [qcow2, raw, vmdk, vhd, pxe]}\n"
                                          "stages:\n"
                                          "  - name: node\n"
                                          "    steps:\n"
                                          "      - file: {path: /etc/motd, src: files/motd}\n"
                                          "      - group: {name: dcos, gid: 4242}\n"
                                          "      - user: {name: core, uid: 1500, groups: [dcos]}\n"
                                          "      - systemd: {mask: [dnsmasq.service]}\n");
  test::TwiceResult r = test::build_twice_and_compare(dir / "recipe.yaml", dir.path(), "twice");
  EXPECT_NE(r.build_log.find("file systems: / (/dev/sda1, ext4) re-made from its tree"), std::string::npos)
    << r.build_log;
  // Every format came out: raw, its bmap, qcow2, vmdk, vhd, and pxe's kernel, initrd, script.
  EXPECT_EQ(r.outputs, 8u);
}

} // namespace
} // namespace kiln
