#include "core/node/partition_io.hpp"

#include "core/node/partition.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kiln::node {

namespace {

bool
all_zero(const char* data, std::size_t size)
{
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] != 0) {
      return false;
    }
  }
  return true;
}

} // namespace

PartitionIo::PartitionIo(const slots::Gpt& gpt, const slots::Partition& part, bool writable)
{
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  fs::path node = partition_node(gpt.disk, part.number);
  if (!node.empty()) {
    m_name = node.string();
    m_path = node;
    // O_EXCL on a block device: the kernel refuses it while the partition is mounted.
    int fd = ::open(node.c_str(), flags | (writable ? O_EXCL : 0));
    if (fd < 0) {
      int err = errno;
      throw Error(m_name, (err == EBUSY ? std::string("in use (mounted?); kiln-node never writes a partition in use")
                                        : errno_text(err)));
    }
    m_fd = util::Fd(fd);
    m_base = 0;
    m_block = true;
  } else {
    m_name = gpt.disk.string() + " (" + part.label + ")";
    m_path = gpt.disk;
    m_fd = util::open_file(gpt.disk, flags);
    m_base = part.offset;
    struct stat st {};
    ::fstat(m_fd.get(), &st);
    m_regular = S_ISREG(st.st_mode);
    m_block = S_ISBLK(st.st_mode);
  }
  m_size = part.size;
}

void
PartitionIo::check(std::uint64_t offset, std::uint64_t size) const
{
  if (offset > m_size || size > m_size - offset) {
    throw Error(m_name, "access at byte " + std::to_string(offset) + " (+" + std::to_string(size) +
                          ") is outside the partition (" + std::to_string(m_size) + " bytes)");
  }
}

void
PartitionIo::pread_exact(char* buffer, std::size_t size, std::uint64_t offset) const
{
  check(offset, size);
  std::size_t got = 0;
  const std::uint64_t at = m_base + offset;
  const std::size_t align = util::AlignedBuffer::k_alignment;
  if (m_direct && reinterpret_cast<std::uintptr_t>(buffer) % align == 0 && at % align == 0 && size % align == 0) {
    ssize_t n = -1;
    do {
      n = ::pread(m_direct.get(), buffer, size, static_cast<off_t>(at));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EINVAL) {
      throw Error(m_name, "read failed at byte " + std::to_string(offset) + ": " + errno_text(errno));
    }
    // EINVAL (an alignment the device refuses) or a short read (the end of an image
    // file): the rest the ordinary way.
    got = n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  if (got < size) {
    got += util::pread_full(m_fd.get(), buffer + got, size - got, at + got, m_name);
  }
  // A disk image file may be shorter than its partition table says (sparse tail).
  std::fill(buffer + got, buffer + size, '\0');
}

void
PartitionIo::pwrite_all(const char* buffer, std::size_t size, std::uint64_t offset)
{
  check(offset, size);
  util::pwrite_full(m_fd.get(), buffer, size, m_base + offset, m_name);
}

std::uint64_t
PartitionIo::ensure_zero(std::uint64_t offset, std::uint64_t size)
{
  check(offset, size);
  if (size == 0) {
    return 0;
  }
  if (m_regular) {
    // Holes read as zeros: punch only the data segments inside the range.
    std::uint64_t zeroed = 0;
    std::uint64_t pos = offset;
    const std::uint64_t end = offset + size;
    while (pos < end) {
      off_t data = ::lseek(m_fd.get(), static_cast<off_t>(m_base + pos), SEEK_DATA);
      if (data < 0 || static_cast<std::uint64_t>(data) - m_base >= end) {
        break; // the rest is a hole (or past the file's end)
      }
      std::uint64_t from = static_cast<std::uint64_t>(data) - m_base;
      off_t hole = ::lseek(m_fd.get(), data, SEEK_HOLE);
      std::uint64_t to = hole < 0 ? end : std::min<std::uint64_t>(end, static_cast<std::uint64_t>(hole) - m_base);
      if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(m_base + from),
                      static_cast<off_t>(to - from)) != 0) {
        zeroed += write_zeros_where_needed(from, to - from);
      } else {
        zeroed += to - from;
      }
      pos = to;
    }
    return zeroed;
  }
  if (m_block && (m_base + offset) % 512 == 0 && size % 512 == 0) {
    // BLKZEROOUT (Linux 3.7) zeroes in the kernel, with the device's write-zeroes when it
    // has one; it fails on sectors it cannot address (a 4K-sector device, for one).
    std::uint64_t range[2] = {m_base + offset, size};
    if (::ioctl(m_fd.get(), BLKZEROOUT, range) == 0) {
      return size;
    }
    // On a block device PUNCH_HOLE (Linux 4.9) means "zero without falling back to writing":
    // it succeeds only where the device zeroes cheaply (loop, NVMe/SCSI write-zeroes).
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(m_base + offset),
                    static_cast<off_t>(size)) == 0) {
      return size;
    }
  }
  return write_zeros_where_needed(offset, size);
}

std::uint64_t
PartitionIo::write_zeros_where_needed(std::uint64_t offset, std::uint64_t size)
{
  constexpr std::size_t chunk = 1 << 20;
  std::vector<char> buffer(chunk);
  std::uint64_t zeroed = 0;
  for (std::uint64_t pos = offset; pos < offset + size;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, offset + size - pos));
    pread_exact(buffer.data(), n, pos);
    if (!all_zero(buffer.data(), n)) {
      std::fill(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n), '\0');
      pwrite_all(buffer.data(), n, pos);
      zeroed += n;
    }
    pos += n;
  }
  return zeroed;
}

void
PartitionIo::sync()
{
  if (::fsync(m_fd.get()) != 0) {
    throw Error(m_name, "fsync failed: " + errno_text(errno));
  }
}

void
PartitionIo::prefetch(std::uint64_t offset, std::uint64_t size)
{
  ::posix_fadvise(m_fd.get(), static_cast<off_t>(m_base + offset), static_cast<off_t>(size), POSIX_FADV_WILLNEED);
}

bool
PartitionIo::begin_read_back()
{
  ::posix_fadvise(m_fd.get(), static_cast<off_t>(m_base), static_cast<off_t>(m_size), POSIX_FADV_DONTNEED);
  if (!m_direct) {
    // Refused (EINVAL) by file systems without O_DIRECT (tmpfs before Linux 6.6): the
    // dropped pages are then what keeps the read-back honest.
    int fd = ::open(m_path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd >= 0) {
      m_direct = util::Fd(fd);
    }
  }
  return static_cast<bool>(m_direct);
}

} // namespace kiln::node
