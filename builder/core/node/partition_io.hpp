// Raw, bounds-checked I/O on one slot partition: the block sink kiln-node's write engine
// (core/bmap/copy) writes and verifies through.
#pragma once

#include "core/bmap/copy.hpp"
#include "core/slots/gpt.hpp"
#include "core/util/fs.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::node {

namespace fs = std::filesystem;

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
  // From now on reads come from the device: through a second descriptor opened O_DIRECT
  // where the file system or device allows it (aligned reads; the rest, e.g. a sparse
  // image's short tail, are read the ordinary way), and with the cached pages dropped in
  // any case. Returns whether O_DIRECT is in use.
  bool begin_read_back() override;
  bool reads_directly() const noexcept { return static_cast<bool>(m_direct); }

private:
  void check(std::uint64_t offset, std::uint64_t size) const;
  std::uint64_t write_zeros_where_needed(std::uint64_t offset, std::uint64_t size);

  util::Fd m_fd;
  util::Fd m_direct; // O_DIRECT, read-only: opened by begin_read_back()
  fs::path m_path; // what m_fd opened (the partition's node or the disk)
  std::string m_name;
  std::uint64_t m_base = 0;
  std::uint64_t m_size = 0;
  bool m_regular = false;
  bool m_block = false;
};

} // namespace kiln::node
