// Anti-rollback (issue 14): a bundle's manifest carries a monotonic version (signed with
// the rest); kiln-node records the highest it switched to in the grubenv
// (kiln_highest_version) and refuses an older one unless --allow-downgrade, before any
// byte of the slot or the grubenv changes; --expect-name pins the image family.
#include "integration/node_fixture.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kiln {
namespace {

using nlohmann::json;
using test::ScratchDir;
namespace fs = std::filesystem;
namespace fx = test::node;

class node_antirollback : public fx::NodeScene {
protected:
  void SetUp() override { make_scene(); }

  // A signed bundle of `name` at `version`, in a directory of its own.
  fs::path bundle(const std::string& name, std::uint64_t version, const fs::path& rootfs)
  {
    fs::path dir = m_dir / "bundles" / (name + "-" + std::to_string(version));
    fs::create_directories(dir);
    manifest::Manifest m = fx::base_manifest(name);
    m.version = version;
    auto key = crypto::load_private_key(m_key.key);
    return bundle::write_bundle(rootfs, dir, m, &key).path;
  }

  util::RunResult reimage(const fs::path& bundle, const std::vector<std::string>& extra = {})
  {
    std::vector<std::string> args{
      "--disk",  m_disk.path.string(), "--booted", "A", "--json", "reimage", bundle.string(),
      "--trust", m_trust.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_kiln_node(args);
  }
};

TEST_F(node_antirollback, an_older_version_is_refused_unless_allowed_and_the_highest_is_kept)
{
  fs::path v5 = bundle("node", 5, m_new);
  fs::path v3 = bundle("node", 3, m_old);
  auto r = reimage(v5);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["version"], 5);
  EXPECT_EQ(json::parse(r.out)["highest_version"], 5);
  std::string env = fx::grubenv_list(m_disk, m_dir.path());
  EXPECT_NE(env.find("kiln_highest_version=5\n"), std::string::npos) << env;

  // Older: refused before anything changes (slot B and the grubenv as they were).
  std::string b_hash = fx::slot_hash(m_disk, slots::k_part_b);
  r = reimage(v3);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("version 3 is older than 5, the highest this node installed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--allow-downgrade"), std::string::npos) << r.err;
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b), b_hash);
  EXPECT_EQ(fx::grubenv_list(m_disk, m_dir.path()), env);

  // Allowed: written, and the highest stays 5 (a later v4 is still refused).
  r = reimage(v3, {"--allow-downgrade"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["highest_version"], 5);
  r = test::run_kiln_node({"--disk", m_disk.path.string(), "--booted", "A", "--json", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["highest_version"], 5);
  EXPECT_EQ(reimage(bundle("node", 4, m_new)).exit_code, 1);
  // The same or a newer version goes through.
  EXPECT_EQ(reimage(v5).exit_code, 0);
  r = reimage(bundle("node", 6, m_new));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["highest_version"], 6);
}

TEST_F(node_antirollback, a_malformed_highest_version_is_refused_not_read_as_none)
{
  fs::path where = m_dir / "bad";
  fs::create_directories(where);
  m_disk = fx::make_ab_disk(where, {"kiln_order=A B", "kiln_A_state=good", "kiln_highest_version=5x"}, m_old);
  std::string b_hash = fx::slot_hash(m_disk, slots::k_part_b);
  auto r = reimage(bundle("node", 1, m_new));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("kiln_highest_version: is not a version number"), std::string::npos) << r.err;
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b), b_hash);
}

TEST_F(node_antirollback, expect_name_pins_the_image_family)
{
  fs::path other = bundle("other-family", 9, m_new);
  std::string b_hash = fx::slot_hash(m_disk, slots::k_part_b);
  auto r = reimage(other, {"--expect-name", "node"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("the image is 'other-family', not 'node' (--expect-name)"), std::string::npos) << r.err;
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b), b_hash);
  r = reimage(bundle("node", 9, m_new), {"--expect-name", "node"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

} // namespace
} // namespace kiln
