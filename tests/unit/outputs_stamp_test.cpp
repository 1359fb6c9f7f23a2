// The output directory's stamp (image/pipeline/outputs_stamp): a rebuild with the same
// final layer and options leaves the outputs alone only while every file is exactly as
// publish left it, judged by lstat alone; the key follows everything that decides the
// outputs' bytes.
#include "image/pipeline/outputs_stamp.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <fstream>
#include <sys/stat.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using build::OutputsStamp;

manifest::Manifest
base(const std::string& final_key)
{
  manifest::Manifest m;
  m.name = "demo";
  m.recipe_digest = std::string(64, 'a');
  m.stages.push_back({"prep", std::string(64, 'b')});
  m.stages.push_back({"finalize", final_key});
  return m;
}

class outputs_stamp : public ::testing::Test {
protected:
  void SetUp() override
  {
    for (const auto& name : m_names) {
      test::write_text(m_dir / name, "content of " + name + "\n");
    }
    build::write_stamp(m_dir.path(), "demo", m_key, m_names);
  }

  bool fresh()
  {
    std::optional<OutputsStamp> stamp = build::read_stamp(m_dir.path(), "demo");
    return stamp && build::up_to_date(*stamp, m_dir.path(), m_key);
  }

  test::ScratchDir m_dir;
  std::vector<std::string> m_names = {"demo.qcow2", "demo.raw", "demo.raw.bmap", "demo.manifest.json"};
  std::string m_key = build::outputs_key(base(std::string(64, 'c')), {"qcow2", "raw"}, false, "", std::nullopt);
};

TEST_F(outputs_stamp, untouched_outputs_are_up_to_date)
{
  EXPECT_TRUE(fs::is_regular_file(build::stamp_path(m_dir.path(), "demo")));
  EXPECT_TRUE(fresh());
  std::optional<OutputsStamp> stamp = build::read_stamp(m_dir.path(), "demo");
  ASSERT_TRUE(stamp);
  EXPECT_EQ(stamp->files.size(), m_names.size());
  EXPECT_FALSE(build::up_to_date(*stamp, m_dir.path(), std::string(64, '0')));
}

TEST_F(outputs_stamp, a_removed_file_makes_it_stale)
{
  fs::remove(m_dir / "demo.raw.bmap");
  EXPECT_FALSE(fresh());
}

TEST_F(outputs_stamp, a_file_replaced_by_the_same_bytes_makes_it_stale)
{
  // Same content and size, written to a new file and renamed over: a new inode.
  test::write_text(m_dir / "new", "content of demo.raw\n");
  fs::rename(m_dir / "new", m_dir / "demo.raw");
  EXPECT_FALSE(fresh());
}

TEST_F(outputs_stamp, a_file_touched_or_changed_in_place_makes_it_stale)
{
  struct timespec times[2] = {{1, 0}, {1, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (m_dir / "demo.qcow2").c_str(), times, 0), 0);
  EXPECT_FALSE(fresh());
  SetUp();
  EXPECT_TRUE(fresh());
  std::ofstream(m_dir / "demo.qcow2", std::ios::app) << "x";
  EXPECT_FALSE(fresh());
}

TEST_F(outputs_stamp, a_directory_or_symlink_in_a_file_s_place_makes_it_stale)
{
  fs::remove(m_dir / "demo.raw");
  fs::create_symlink(m_dir / "demo.qcow2", m_dir / "demo.raw");
  EXPECT_FALSE(fresh());
}

TEST_F(outputs_stamp, a_damaged_or_oversized_stamp_is_ignored)
{
  test::write_text(build::stamp_path(m_dir.path(), "demo"), "{\"version\": 1, \"key\": ");
  EXPECT_FALSE(build::read_stamp(m_dir.path(), "demo"));
  test::write_text(build::stamp_path(m_dir.path(), "demo"), std::string((1u << 20) + 1, ' '));
  EXPECT_FALSE(build::read_stamp(m_dir.path(), "demo"));
  test::write_text(build::stamp_path(m_dir.path(), "demo"), R"({"version": 99, "key": "k", "files": []})");
  EXPECT_FALSE(build::read_stamp(m_dir.path(), "demo"));
}

TEST_F(outputs_stamp, a_stamp_naming_a_path_outside_the_directory_is_stale)
{
  test::write_text(build::stamp_path(m_dir.path(), "demo"),
                   "{\"version\": 1, \"key\": \"" + m_key +
                     R"(", "files": [{"name": "../etc/passwd", "size": 1, "mtime_ns": 1, "inode": 1}]})");
  EXPECT_FALSE(fresh());
}

TEST(outputs_key, follows_the_final_layer_the_formats_compression_and_the_signing_key)
{
  const std::string final_key(64, 'c');
  const std::string k = build::outputs_key(base(final_key), {"qcow2", "raw"}, false, "", std::nullopt);
  EXPECT_EQ(build::outputs_key(base(final_key), {"qcow2", "raw"}, false, "", std::nullopt), k);
  EXPECT_NE(build::outputs_key(base(std::string(64, 'd')), {"qcow2", "raw"}, false, "", std::nullopt), k);
  EXPECT_NE(build::outputs_key(base(final_key), {"qcow2"}, false, "", std::nullopt), k);
  EXPECT_NE(build::outputs_key(base(final_key), {"raw", "qcow2"}, false, "", std::nullopt), k);
  EXPECT_NE(build::outputs_key(base(final_key), {"qcow2", "raw"}, true, "", std::nullopt), k);
  EXPECT_NE(build::outputs_key(base(final_key), {"qcow2", "raw"}, false, std::string(64, 'e'), std::nullopt), k);
  EXPECT_NE(build::outputs_key(base(final_key), {"qcow2", "raw"}, false, "", 1700000000), k);
  manifest::Manifest packages = base(final_key);
  packages.packages.push_back({"systemd", "252", "amd64"});
  EXPECT_NE(build::outputs_key(packages, {"qcow2", "raw"}, false, "", std::nullopt), k);
}

} // namespace
} // namespace kiln
