#include "core/node/grow.hpp"

#include "core/node/disk.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/slots/gpt_grow.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"

#include <cerrno>
#include <fcntl.h>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace kiln::node {

namespace {

constexpr long k_xfs_magic = 0x58465342;
constexpr long k_ext4_magic = 0xEF53; // ext2/3/4 share it

std::uint64_t
block_size_of(const fs::path& node)
{
  util::Fd fd = util::open_file(node, O_RDONLY | O_CLOEXEC);
  return slots::device_size(fd.get(), node.string());
}

// Tells the kernel partition `number` now spans [start, start+length) bytes:
// BLKPG_RESIZE_PARTITION (Linux 3.6+), else a re-read of the whole table, which the
// kernel allows only while no partition of the disk is in use. Returns how.
std::string
tell_kernel(int disk_fd, const fs::path& disk, unsigned number, std::uint64_t start, std::uint64_t length)
{
  struct blkpg_partition part {};
  part.start = static_cast<long long>(start);
  part.length = static_cast<long long>(length);
  part.pno = static_cast<int>(number);
  struct blkpg_ioctl_arg arg {};
  arg.op = BLKPG_RESIZE_PARTITION;
  arg.datalen = sizeof part;
  arg.data = &part;
  if (::ioctl(disk_fd, BLKPG, &arg) == 0) {
    return "BLKPG_RESIZE_PARTITION";
  }
  int blkpg_err = errno;
  if (::ioctl(disk_fd, BLKRRPART) == 0) {
    return "BLKRRPART";
  }
  int rr_err = errno;
  throw Error(disk.string(), "the kernel cannot resize partition " + std::to_string(number) +
                               " (BLKPG_RESIZE_PARTITION: " + errno_text(blkpg_err) + "; BLKRRPART: " +
                               errno_text(rr_err) + "); the table on disk is grown, a reboot makes the kernel see it");
}

std::uint64_t
fs_bytes(const fs::path& mount)
{
  struct statfs s {};
  if (::statfs(mount.c_str(), &s) != 0) {
    throw Error(mount.string(), "statfs failed: " + errno_text(errno));
  }
  return static_cast<std::uint64_t>(s.f_blocks) * static_cast<std::uint64_t>(s.f_bsize);
}

} // namespace

PartitionGrowth
grow_data_partition(int fd, const fs::path& disk, std::uint32_t sector_size, std::uint64_t disk_size)
{
  const std::string subject = disk.string();
  slots::GptTable table = slots::read_primary_table(fd, sector_size, subject);
  slots::GrowPlan plan = slots::plan_gpt_growth(table, disk_size / sector_size, slots::k_part_data, subject);
  slots::write_gpt_growth(fd, plan, subject);
  return PartitionGrowth{plan.changed,
                         plan.partition,
                         plan.old_last_lba,
                         plan.new_last_lba,
                         (plan.new_last_lba - plan.old_last_lba) * sector_size,
                         plan.table.alternate_lba};
}

GrowDataReport
grow_data(const GrowDataOptions& options)
{
  const fs::path& disk = options.disk.disk;
  if (options.disk.booted) {
    throw UsageError("--booted", "not accepted by grow-data: the disk must be proven by the kernel command line");
  }
  slots::Gpt gpt = slots::read_gpt(disk);
  if (!booted_slot(gpt, std::nullopt)) {
    throw Error(disk.string(), "holds no booted slot (kiln.slot= and root=PARTUUID= on the kernel command line "
                               "name none of its partitions); refusing to grow kiln-data on a disk not proven to "
                               "be this system's");
  }
  if (gpt.from_backup) {
    throw Error(disk.string(), "the primary GPT is damaged (only the backup is valid); refusing to rewrite it");
  }
  if (!gpt.block_device) {
    throw Error(disk.string(), "not a block device");
  }
  const slots::Partition& data = gpt.by_label(slots::k_part_data);
  fs::path node = partition_node(disk, data.number);
  if (node.empty()) {
    throw Error(disk.string(),
                "the kernel has no device node for kiln-data (partition " + std::to_string(data.number) + ")");
  }
  // The file system to grow must be kiln-data's, mounted where we were told.
  struct stat mount_st {};
  struct stat node_st {};
  if (::stat(options.mount.c_str(), &mount_st) != 0 || ::stat(node.c_str(), &node_st) != 0 ||
      mount_st.st_dev != node_st.st_rdev) {
    throw Error(options.mount.string(), "is not where kiln-data (" + node.string() + ") is mounted");
  }
  struct statfs sfs {};
  if (::statfs(options.mount.c_str(), &sfs) != 0) {
    throw Error(options.mount.string(), "statfs failed: " + errno_text(errno));
  }
  std::string type;
  if (static_cast<long>(sfs.f_type) == k_xfs_magic) {
    type = "xfs";
  } else if (static_cast<long>(sfs.f_type) == k_ext4_magic) {
    type = "ext4";
  } else {
    throw Error(options.mount.string(), "kiln-data holds neither XFS nor ext4; kiln-node grows only those");
  }

  util::Fd fd = util::open_file(disk, O_RDWR | O_CLOEXEC);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    throw Error(disk.string(), "another kiln-node is working on this disk");
  }
  GrowDataReport r;
  r.disk = disk.string();
  r.device = node.string();
  r.mount = options.mount.string();
  r.partition = grow_data_partition(fd.get(), disk, gpt.sector_size, gpt.disk_size);

  // The kernel's view of the partition (also after a run cut short before this step).
  const std::uint64_t want = (r.partition.new_end_lba - data.first_lba + 1) * gpt.sector_size;
  r.kernel.size_before = block_size_of(node);
  r.kernel.changed = r.kernel.size_before != want;
  if (r.kernel.changed) {
    r.kernel.how = tell_kernel(fd.get(), disk, data.number, data.offset, want);
    std::uint64_t now = block_size_of(node);
    if (now != want) {
      throw Error(node.string(),
                  "the kernel reports " + std::to_string(now) + " bytes after the resize, not " + std::to_string(want));
    }
  }
  r.kernel.size = want;

  // The file system, online.
  const std::uint64_t before = fs_bytes(options.mount);
  std::vector<std::string> argv = type == "xfs" ? std::vector<std::string>{"xfs_growfs", options.mount.string()}
                                                : std::vector<std::string>{"resize2fs", node.string()};
  util::RunOptions ro;
  ro.timeout = std::chrono::seconds(1800);
  util::RunResult run = util::run(argv, ro);
  if (!run.ok()) {
    throw Error(argv[0], "growing kiln-data (" + node.string() + ") failed, exit " + std::to_string(run.exit_code) +
                           ": " + run.tail(2));
  }
  const std::uint64_t after = fs_bytes(options.mount);
  r.filesystem = FilesystemGrowth{type, before, after, after != before};
  r.changed = r.partition.changed || r.kernel.changed || r.filesystem.changed;
  return r;
}

} // namespace kiln::node
