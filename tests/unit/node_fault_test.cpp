// kiln-node's fault points as the reimage and install options carry them: names parsed
// (and unknown ones refused), and a fault set in the options (not the environment) ends
// the process at its point of the write engine. The reimage's other points sit between
// disk and grubenv steps that need an A/B disk: the integration test reimage_faults
// crashes the test build at each of them through KILN_NODE_FAULT.
#include "core/bmap/bmap.hpp"
#include "core/bmap/copy.hpp"
#include "core/node/command_common.hpp"
#include "core/node/disk.hpp"
#include "core/node/fault.hpp"
#include "core/util/fs.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

namespace kiln {
namespace {

using node::Fault;
using test::ScratchDir;
namespace fs = std::filesystem;

// Four of the engine's 1 MiB chunks: half the data is a chunk boundary.
constexpr std::uint64_t k_size = 4u << 20;
constexpr std::uint64_t k_half = k_size / 2;

class node_fault : public ::testing::Test {
protected:
  void SetUp() override
  {
    m_image = m_dir / "image.raw";
    std::string data(k_size, '\0');
    for (std::size_t i = 0; i < data.size(); i += 4096) {
      data[i] = static_cast<char>('a' + i / 4096 % 26); // every block mapped
    }
    test::write_text(m_image, data);
    m_disk = m_dir / "disk.raw";
    test::write_text(m_disk, std::string(k_size, '\x55'));
  }

  // The image written onto the disk file through the engine with the options a reimage
  // or install gives it.
  void write(Fault fault)
  {
    bmap::Bmap map = bmap::generate(m_image);
    slots::Gpt gpt;
    gpt.disk = m_disk;
    gpt.disk_size = k_size;
    slots::Partition all;
    all.label = "disk";
    all.size = k_size;
    node::PartitionIo io(gpt, all, true);
    util::Fd in = util::open_file(m_image, O_RDONLY);
    bmap::write_mapped(map, io, bmap::image_reader(map, {in.get(), m_image.string()}),
                       node::detail::write_options(io, {}, m_image.string(), fault));
    io.sync();
  }

  ScratchDir m_dir;
  fs::path m_image;
  fs::path m_disk;
};

TEST(node_fault_names, every_point_parses_and_an_unknown_name_does_not)
{
  EXPECT_EQ(node::parse_fault("after-invalidate"), Fault::after_invalidate);
  EXPECT_EQ(node::parse_fault("mid-write"), Fault::mid_write);
  EXPECT_EQ(node::parse_fault("before-verify"), Fault::before_verify);
  EXPECT_EQ(node::parse_fault("before-switch"), Fault::before_switch);
  EXPECT_EQ(node::parse_fault("during-switch"), Fault::during_switch);
  EXPECT_EQ(node::parse_fault("midwrite"), std::nullopt);
  EXPECT_EQ(node::parse_fault(""), std::nullopt);
  EXPECT_EQ(node::fault_names(), "after-invalidate, mid-write, before-verify, before-switch, during-switch");
}

TEST(node_fault_names, a_point_ends_the_process_only_when_armed_for_it)
{
  node::fault_point(Fault::none, Fault::mid_write);
  node::fault_point(Fault::before_verify, Fault::mid_write);
  EXPECT_EXIT(node::fault_point(Fault::before_switch, Fault::before_switch), ::testing::ExitedWithCode(99), "");
}

TEST_F(node_fault, mid_write_in_the_options_ends_the_write_at_half_the_data)
{
  // The death test forks: the child writes this fixture's disk file.
  EXPECT_EXIT(write(Fault::mid_write), ::testing::ExitedWithCode(99), "");
  // The first half written (and synced), the second still the old content.
  std::string disk = util::read_file(m_disk);
  std::string image = util::read_file(m_image);
  EXPECT_TRUE(disk.substr(0, k_half) == image.substr(0, k_half));
  EXPECT_TRUE(disk.substr(k_half) == std::string(k_size - k_half, '\x55'));
}

TEST_F(node_fault, another_point_in_the_options_lets_the_write_finish)
{
  write(Fault::before_verify);
  EXPECT_TRUE(util::read_file(m_disk) == util::read_file(m_image));
}

} // namespace
} // namespace kiln
