// kiln-node's partition I/O reading back what it wrote: O_DIRECT where the file system
// allows it (the page cache bypassed), the ordinary way where it does not (tmpfs before
// Linux 6.6) and for whatever O_DIRECT cannot read (an unaligned buffer, offset or length;
// a disk image file shorter than its partition table says). The bytes are the same in
// every case.
#include "core/node/partition_io.hpp"
#include "core/util/fs.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace kiln {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t k_offset = 1 << 20; // the partition starts 1 MiB into the disk
constexpr std::uint64_t k_part = 4 << 20;
// The disk file ends 1000 bytes into the partition's last MiB (a sparse image's tail).
constexpr std::uint64_t k_file = k_offset + (3 << 20) + 1000;

std::string
disk_bytes()
{
  std::string data(k_file, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>(i * 7 % 251);
  }
  return data;
}

void
read_back_everything(const fs::path& dir, bool expect_direct)
{
  const fs::path disk = dir / "disk.raw";
  const std::string data = disk_bytes();
  test::write_text(disk, data);
  slots::Gpt gpt;
  gpt.disk = disk;
  gpt.disk_size = k_offset + k_part;
  slots::Partition part;
  part.label = "kiln-b";
  part.offset = k_offset;
  part.size = k_part;
  node::PartitionIo io(gpt, part, true);
  EXPECT_FALSE(io.reads_directly());
  EXPECT_EQ(io.begin_read_back(), expect_direct);
  EXPECT_EQ(io.reads_directly(), expect_direct);

  // Aligned, whole MiBs (what the read-back asks), up to and past the file's end: the
  // missing tail reads as zeros.
  util::AlignedBuffer buffer(1 << 20);
  for (std::uint64_t at = 0; at < k_part; at += buffer.size()) {
    io.pread_exact(buffer.data(), buffer.size(), at);
    for (std::size_t i = 0; i < buffer.size(); ++i) {
      const std::uint64_t on_disk = k_offset + at + i;
      const char want = on_disk < data.size() ? data[on_disk] : '\0';
      ASSERT_EQ(buffer.data()[i], want) << "at " << at + i;
    }
  }
  // Unaligned buffer, offset and length.
  std::vector<char> odd(5000);
  io.pread_exact(odd.data() + 1, 3001, 12345);
  EXPECT_EQ(std::memcmp(odd.data() + 1, data.data() + k_offset + 12345, 3001), 0);
  // Past the partition: refused, whatever the mode.
  EXPECT_THROW(io.pread_exact(buffer.data(), 4096, k_part), Error);
}

TEST(partition_io, reads_back_directly_where_the_file_system_allows_it)
{
  // The build tree: a disk's file system, where O_DIRECT is the rule.
  const fs::path dir = fs::path(KILN_TEST_CACHE).parent_path() / ("partition-io-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  read_back_everything(dir, test::o_direct_allowed(dir));
  fs::remove_all(dir);
}

TEST(partition_io, reads_back_the_ordinary_way_on_tmpfs_without_o_direct)
{
  const fs::path dir = fs::path("/dev/shm") / ("kiln-partition-io-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  read_back_everything(dir, test::o_direct_allowed(dir));
  fs::remove_all(dir);
}

} // namespace
} // namespace kiln
