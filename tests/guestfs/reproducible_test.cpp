// Reproducible builds (README, "Reproducible builds"): one recipe built twice cold, in
// two caches, with the same SOURCE_DATE_EPOCH, gives the same bytes in every output and
// the same manifest. When they differ, kiln diff names the files that differ.
//
// The base is the A/B fixture's bootstrap tar, given by path: the same input to both
// builds, without a second mmdebstrap (SOURCE_DATE_EPOCH is part of a bootstrapped base's
// key, so the fixture's base disk is not this test's).
#include "core/manifest/manifest.hpp"
#include "support/ab_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The bootstrap tar the fixture's base was made from (KILN_TEST_CACHE/bootstrap/KEY.tar).
fs::path
fixture_bootstrap_tar(const fs::path& dir)
{
  test::write_text(dir / "probe.yaml", "name: probe\n" + test::ab_fixture_base_and_size() +
                                         "stages:\n  - name: none\n    steps: [{file: {path: /x, content: x}}]\n");
  util::RunResult r = test::run_kiln({"plan", "--json", (dir / "probe.yaml").string()});
  EXPECT_TRUE(r.ok()) << r.err;
  return fs::path(KILN_TEST_CACHE) / "bootstrap" / (json::parse(r.out).at("base_key").get<std::string>() + ".tar");
}

TEST(Reproducible, TwoColdBuildsGiveTheSameBytes)
{
  test::ScratchDir dir;
  const test::AbFixture& fixture = test::ab_fixture();
  ASSERT_TRUE(fixture.error.empty()) << fixture.error;
  const fs::path tar = fixture_bootstrap_tar(dir.path());
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
  std::vector<json> builds;
  for (const char* n : {"1", "2"}) {
    util::RunResult r =
      test::run_kiln({"build", "--json", (dir / "recipe.yaml").string(), "--cache",
                      (dir / (std::string("cache") + n)).string(), "-o", (dir / (std::string("out") + n)).string()},
                     {{"SOURCE_DATE_EPOCH", "1700000000"}});
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_NE(r.err.find("file systems: / (/dev/sda1, ext4) re-made from its tree"), std::string::npos) << r.err;
    builds.push_back(json::parse(r.out));
    // Its layers (about 1.5 GiB) are no longer needed: CI machines have little disk.
    fs::remove_all(dir / (std::string("cache") + n));
  }
  ASSERT_EQ(builds[0].at("outputs").size(), builds[1].at("outputs").size());
  bool same = true;
  for (std::size_t i = 0; i < builds[0].at("outputs").size(); ++i) {
    const json& a = builds[0]["outputs"][i];
    const json& b = builds[1]["outputs"][i];
    EXPECT_EQ(a.at("name"), b.at("name"));
    EXPECT_EQ(a.at("sha256"), b.at("sha256")) << a.at("name");
    same = same && a.at("sha256") == b.at("sha256");
  }
  EXPECT_EQ(test::read_text(dir / "out1/twice.manifest.json"), test::read_text(dir / "out2/twice.manifest.json"));
  if (!same) {
    // What differs inside, for whoever reads the failure.
    util::RunResult d = test::run_kiln({"diff", "--cache", (dir / "diff-cache").string(),
                                        (dir / "out1/twice.raw").string(), (dir / "out2/twice.raw").string()});
    ADD_FAILURE() << "kiln diff of the two raw images:\n" << d.out.substr(0, 4000) << d.err.substr(0, 2000);
  }
  // Every format came out: raw, its bmap, qcow2, vmdk, vhd, and pxe's kernel, initrd, script.
  EXPECT_EQ(builds[0].at("outputs").size(), 8u);
}

} // namespace
} // namespace kiln
