// kiln-node's access to an A/B disk (a block device, a loop device or a disk image
// file): the booted slot, the kiln-boot partition's grubenv (mounted by kiln-node
// when it is not the running system's /boot/kiln), and raw slot I/O.
#pragma once

#include "core/bmap/copy.hpp"
#include "core/slots/gpt.hpp"
#include "core/util/fs.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kiln::node {

namespace fs = std::filesystem;

// The kernel command line kiln-node reads: /proc/cmdline, or (test build only)
// test_hooks().cmdline, a file holding a command line.
std::string read_cmdline();
// The value of `key=` on a command line; nullopt when absent.
std::optional<std::string> cmdline_value(const std::string& cmdline, std::string_view key);

// The slot of `gpt`'s disk that the command line booted, decided fail-closed: a
// root=PARTUUID= naming either slot's partition makes that slot booted; a root= naming
// a device (/dev/sda4, UUID=, LABEL=) counts when it is one slot's partition node; a
// kiln.slot= that disagrees with root=, is not A/B, or comes without root= (or with a
// root= device that is not that slot's partition) is an Error. nullopt when root= names
// something outside this disk and no kiln.slot= says otherwise.
std::optional<char> cmdline_booted_slot(const slots::Gpt& gpt, const std::string& cmdline);

// The booted slot: `override_slot` (--booted) when given and not contradicted by the
// command line (a contradiction is a UsageError unless `force`), else the above.
std::optional<char> booted_slot(const slots::Gpt& gpt, std::optional<char> override_slot, bool force = false);

// The disk the running system booted from: the parent device of the partition that
// root=PARTUUID= names on the command line. Throws Error when there is none.
fs::path running_disk();

// The device node of partition `number` of block device `disk` (via sysfs), or empty
// when there is none (an image file, a loop device without partition scanning).
fs::path partition_node(const fs::path& disk, unsigned number);

// One partition of the disk mounted on a private temporary directory (its partition
// node when the disk is a block device with one, else a loop device with
// offset/sizelimit over the disk), unmounted when the object dies. `options` are mount's
// -o options ("ro", "rw", "ro,norecovery", ...).
class PartitionMount {
public:
  PartitionMount(const slots::Gpt& gpt, const slots::Partition& part, const std::string& options);
  ~PartitionMount();
  PartitionMount(const PartitionMount&) = delete;
  PartitionMount& operator=(const PartitionMount&) = delete;

  const fs::path& path() const noexcept { return m_dir.path(); }

private:
  util::TempDir m_dir;
};

// The kiln-boot file system, for reading and updating grub/grubenv. On the running
// system it is /boot/kiln (when that holds grub/grubenv); otherwise the partition is
// mounted (PartitionMount) for as long as the object lives.
class BootFs {
public:
  BootFs(const slots::Gpt& gpt, bool running_system, bool writable);
  // kiln-boot where another process mounted it (see mounted_boot_fs); never unmounted here.
  explicit BootFs(fs::path mounted) : m_root(std::move(mounted)) {}

  fs::path grubenv() const;
  const fs::path& root() const noexcept { return m_root; }

private:
  fs::path m_root;
  std::optional<PartitionMount> m_mount;
};

// Where this disk's kiln-boot is mounted already (by a reimage in progress, say), found
// in /proc/self/mountinfo by device numbers: its partition node's, else those of a loop
// device over the disk at kiln-boot's offset. Empty when it is not mounted here.
fs::path mounted_boot_fs(const slots::Gpt& gpt);

// Raw access to one partition of the disk: through its own device node when there is
// one (opened O_EXCL, so a mounted partition, e.g. the running root, is refused by the
// kernel), else through the disk at the partition's offset. Every access is checked
// against the partition's bounds.
class PartitionIo final : public bmap::BlockSink {
public:
  PartitionIo(const slots::Gpt& gpt, const slots::Partition& part, bool writable);

  std::uint64_t size() const noexcept { return m_size; }
  const std::string& name() const noexcept override { return m_name; }
  bool regular_file() const noexcept { return m_regular; }
  int fd() const noexcept { return m_fd.get(); }
  std::uint64_t base() const noexcept { return m_base; }

  void pread_exact(char* buffer, std::size_t size, std::uint64_t offset) const override;
  void pwrite_all(const char* buffer, std::size_t size, std::uint64_t offset) override;
  // Makes [offset, offset+size) read as zeros: holes punched in an image file (only
  // where it holds data), a cheap device zeroing (fallocate PUNCH_HOLE, which never
  // falls back to writing) on a block device, else zeros written where the bytes read
  // are not zero. Returns the bytes zeroed (for a device zeroed cheaply: all of them).
  std::uint64_t ensure_zero(std::uint64_t offset, std::uint64_t size) override;
  void sync() override;
  // Asks the kernel to start reading [offset, offset+size) now (read-ahead).
  void prefetch(std::uint64_t offset, std::uint64_t size) override;
  // Drops cached pages so a read-back comes from the device, not the page cache.
  void drop_cache() override;

private:
  void check(std::uint64_t offset, std::uint64_t size) const;
  std::uint64_t write_zeros_where_needed(std::uint64_t offset, std::uint64_t size);

  util::Fd m_fd;
  std::string m_name;
  std::uint64_t m_base = 0;
  std::uint64_t m_size = 0;
  bool m_regular = false;
  bool m_block = false;
};

} // namespace kiln::node
