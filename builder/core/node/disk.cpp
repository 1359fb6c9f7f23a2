#include "core/node/disk.hpp"

#include "core/grubenv/grubenv.hpp"
#include "core/node/mountinfo.hpp"
#include "core/node/test_hooks.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <vector>

namespace kiln::node {

namespace {

std::string
lower(std::string s)
{
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

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

std::string
read_cmdline()
{
  const fs::path& test = test_hooks().cmdline;
  fs::path path = !test.empty() ? test : fs::path("/proc/cmdline");
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return {};
  }
  return util::read_file(path);
}

std::optional<std::string>
cmdline_value(const std::string& cmdline, std::string_view key)
{
  std::istringstream words(cmdline);
  std::optional<std::string> value;
  for (std::string w; words >> w;) {
    if (w.size() > key.size() && w.compare(0, key.size(), key) == 0 && w[key.size()] == '=') {
      value = w.substr(key.size() + 1); // the last one wins, as for the kernel's own parameters
    }
  }
  return value;
}

namespace {

// The device number of the block device a root= value names (/dev/..., UUID=, LABEL=,
// PARTLABEL=); nullopt when it cannot be resolved.
std::optional<dev_t>
root_device(const std::string& root)
{
  fs::path path;
  for (auto [prefix, dir] : {std::pair{"UUID=", "/dev/disk/by-uuid/"}, std::pair{"LABEL=", "/dev/disk/by-label/"},
                             std::pair{"PARTLABEL=", "/dev/disk/by-partlabel/"}}) {
    if (root.rfind(prefix, 0) == 0) {
      path = fs::path(dir) / root.substr(std::string_view(prefix).size());
    }
  }
  if (path.empty() && root.rfind("/dev/", 0) == 0) {
    path = root;
  }
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_rdev;
}

// The device number of slot `slot`'s partition node on `gpt`'s disk, if it has one.
std::optional<dev_t>
slot_device(const slots::Gpt& gpt, char slot)
{
  const slots::Partition* part = gpt.find_label(slot == 'A' ? slots::k_part_a : slots::k_part_b);
  if (part == nullptr) {
    return std::nullopt;
  }
  fs::path node = partition_node(gpt.disk, part->number);
  struct stat st {};
  if (node.empty() || ::stat(node.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_rdev;
}

} // namespace

std::optional<char>
cmdline_booted_slot(const slots::Gpt& gpt, const std::string& cmdline)
{
  auto slot_text = cmdline_value(cmdline, slots::k_cmdline_slot);
  auto root = cmdline_value(cmdline, "root");
  std::optional<char> named;
  if (slot_text) {
    named = slots::parse_slot(*slot_text);
    if (!named) {
      throw Error("kernel command line", std::string(slots::k_cmdline_slot) + "=" + *slot_text +
                                           " is neither A nor B; cannot tell which slot runs");
    }
  }
  if (!root) {
    if (named) {
      throw Error("kernel command line",
                  std::string(slots::k_cmdline_slot) + "= without root=; cannot prove which slot runs");
    }
    return std::nullopt;
  }
  // Which slot of this disk root= names, when it names one.
  std::optional<char> by_root;
  if (root->rfind("PARTUUID=", 0) == 0) {
    std::string uuid = lower(root->substr(9));
    for (char s : {'A', 'B'}) {
      const slots::Partition* part = gpt.find_label(s == 'A' ? slots::k_part_a : slots::k_part_b);
      if (part != nullptr && part->partuuid == uuid) {
        by_root = s;
      }
    }
    if (!by_root) {
      return std::nullopt; // another disk booted this system
    }
  } else {
    auto dev = root_device(*root);
    for (char s : {'A', 'B'}) {
      auto part = slot_device(gpt, s);
      if (dev && part && *dev == *part) {
        by_root = s;
      }
    }
    if (!by_root) {
      if (named) {
        throw Error("kernel command line", "kiln.slot=" + std::string(1, *named) + " but root=" + *root +
                                             " is not that slot's partition on " + gpt.disk.string() +
                                             "; cannot prove which slot runs");
      }
      return std::nullopt;
    }
  }
  if (named && *named != *by_root) {
    throw Error("kernel command line", "kiln.slot=" + std::string(1, *named) + " but root=" + *root + " is slot " +
                                         std::string(1, *by_root) + "'s partition; refusing to guess");
  }
  return by_root;
}

std::optional<char>
booted_slot(const slots::Gpt& gpt, std::optional<char> override_slot, bool force)
{
  if (override_slot && force) {
    return override_slot;
  }
  std::optional<char> running = cmdline_booted_slot(gpt, read_cmdline());
  if (override_slot && running && *running != *override_slot) {
    throw UsageError("--booted", std::string(1, *override_slot) +
                                   " contradicts the kernel command line, which "
                                   "booted slot " +
                                   std::string(1, *running) + " of this disk; add --force to override");
  }
  return override_slot ? override_slot : running;
}

fs::path
running_disk()
{
  auto root = cmdline_value(read_cmdline(), "root");
  if (!root || root->rfind("PARTUUID=", 0) != 0) {
    throw UsageError("--disk", "not given, and the kernel command line names no root=PARTUUID= to find it by");
  }
  std::error_code ec;
  fs::path part = fs::canonical(fs::path("/dev/disk/by-partuuid") / lower(root->substr(9)), ec);
  if (ec) {
    throw UsageError("--disk", "not given, and no device has PARTUUID " + root->substr(9));
  }
  // /sys/class/block/sda4 links into .../block/sda/sda4: the parent is the disk.
  fs::path sys = fs::canonical(fs::path("/sys/class/block") / part.filename(), ec);
  if (ec || !fs::exists(sys / "partition", ec)) {
    throw UsageError("--disk", "not given, and " + part.string() + " is not a partition");
  }
  return fs::path("/dev") / sys.parent_path().filename();
}

fs::path
partition_node(const fs::path& disk, unsigned number)
{
  std::error_code ec;
  struct stat st {};
  if (::stat(disk.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return {};
  }
  fs::path sys =
    fs::path("/sys/dev/block") / (std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)));
  for (fs::directory_iterator it(sys, ec), end; !ec && it != end; it.increment(ec)) {
    fs::path partition_file = it->path() / "partition";
    if (!fs::exists(partition_file, ec)) {
      continue;
    }
    std::string text;
    try {
      text = util::read_file(partition_file);
    } catch (const Error&) {
      continue;
    }
    if (std::strtoul(text.c_str(), nullptr, 10) == number) {
      fs::path node = fs::path("/dev") / it->path().filename();
      if (fs::exists(node, ec)) {
        return node;
      }
    }
  }
  return {};
}

PartitionMount::PartitionMount(const slots::Gpt& gpt, const slots::Partition& part, const std::string& options)
  : m_dir(fs::temp_directory_path(), "kiln-node-" + part.label)
{
  std::string all = options;
  fs::path source = partition_node(gpt.disk, part.number);
  if (source.empty()) {
    source = gpt.disk;
    all += ",loop,offset=" + std::to_string(part.offset) + ",sizelimit=" + std::to_string(part.size);
  }
  util::RunResult r = util::run({"mount", "-o", all, source.string(), m_dir.path().string()});
  if (!r.ok()) {
    throw Error(gpt.disk.string(), "cannot mount the " + part.label + " partition: " + r.tail(2));
  }
}

PartitionMount::~PartitionMount()
{
  bool unmounted = false;
  try {
    unmounted = util::run({"umount", m_dir.path().string()}).ok();
  } catch (...) {
    // Nothing may escape a destructor.
  }
  if (!unmounted) {
    m_dir.keep(); // a mount left under /tmp; never remove what is still mounted there
  }
}

namespace {

std::string
sys_text(const fs::path& path)
{
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return {};
  }
  std::string text = util::read_file(path);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
    text.pop_back();
  }
  return text;
}

// The device numbers of a loop device whose backing file is `disk` (same inode) at
// `offset`, read from sysfs; nullopt when there is none.
std::optional<dev_t>
loop_over(const fs::path& disk, std::uint64_t offset)
{
  struct stat target {};
  if (::stat(disk.c_str(), &target) != 0 || !S_ISREG(target.st_mode)) {
    return std::nullopt;
  }
  std::error_code ec;
  for (fs::directory_iterator it("/sys/block", ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind("loop", 0) != 0) {
      continue;
    }
    std::string backing = sys_text(it->path() / "loop" / "backing_file");
    struct stat st {};
    if (backing.empty() || ::stat(backing.c_str(), &st) != 0 || st.st_dev != target.st_dev ||
        st.st_ino != target.st_ino || sys_text(it->path() / "loop" / "offset") != std::to_string(offset)) {
      continue;
    }
    unsigned maj = 0;
    unsigned min = 0;
    if (std::sscanf(sys_text(it->path() / "dev").c_str(), "%u:%u", &maj, &min) == 2) {
      return makedev(maj, min);
    }
  }
  return std::nullopt;
}

} // namespace

fs::path
mounted_boot_fs(const slots::Gpt& gpt)
{
  const slots::Partition& boot = gpt.by_label(slots::k_part_boot);
  std::optional<dev_t> device;
  fs::path node = partition_node(gpt.disk, boot.number);
  struct stat st {};
  if (!node.empty() && ::stat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    device = st.st_rdev;
  } else {
    device = loop_over(gpt.disk, boot.offset);
  }
  if (!device) {
    return {};
  }
  for (const MountEntry& e : parse_mountinfo(read_mountinfo())) {
    struct stat mounted {};
    if (e.device == *device && e.root == "/" && ::stat(e.point.c_str(), &mounted) == 0 && mounted.st_dev == *device) {
      return e.point;
    }
  }
  return {};
}

BootFs::BootFs(const slots::Gpt& gpt, bool running_system, bool writable)
{
  std::error_code ec;
  fs::path live = slots::k_boot_mount;
  const slots::Partition& boot = gpt.by_label(slots::k_part_boot);
  if (running_system && fs::exists(live / std::string(slots::k_grubenv_path).substr(1), ec)) {
    // Only when it is this disk's own kiln-boot (device numbers), never another disk's.
    fs::path node = partition_node(gpt.disk, boot.number);
    struct stat mounted {};
    struct stat part {};
    if (node.empty() || ::stat(live.c_str(), &mounted) != 0 || ::stat(node.c_str(), &part) != 0 ||
        mounted.st_dev != part.st_rdev) {
      throw Error(live.string(), "is not the " + std::string(slots::k_part_boot) + " partition of " +
                                   gpt.disk.string() + " (device numbers differ); refusing to use it");
    }
    m_root = live;
    return;
  }
  m_mount.emplace(gpt, boot, writable ? "rw" : "ro");
  m_root = m_mount->path();
}

fs::path
BootFs::grubenv() const
{
  fs::path path = m_root / std::string(slots::k_grubenv_path).substr(1);
  // Resolved inside the mount without following a symlink; a regular file of exactly
  // one block (O_NONBLOCK: a FIFO can never hang kiln-node).
  util::Fd dir(::open(m_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat root_st {};
  if (!dir || ::fstat(dir.get(), &root_st) != 0) {
    throw Error(m_root.string(), "cannot open: " + errno_text(errno));
  }
  fs::path rel = fs::path(std::string(slots::k_grubenv_path).substr(1));
  std::vector<std::string> parts;
  for (const auto& p : rel) {
    parts.push_back(p.string());
  }
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    util::Fd next(::openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      if (errno == ENOENT) {
        return path; // missing: the caller says so
      }
      throw Error(path.string(), "cannot resolve inside kiln-boot without following a symlink: " + errno_text(errno));
    }
    dir = std::move(next);
  }
  util::Fd fd(::openat(dir.get(), parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      return path;
    }
    throw Error(path.string(), errno == ELOOP
                                 ? std::string("is a symlink; kiln-node never follows one out of kiln-boot")
                                 : "cannot open: " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw Error(path.string(), "stat failed: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(path.string(), "not a regular file");
  }
  if (st.st_dev != root_st.st_dev) {
    throw Error(path.string(), "not on the kiln-boot file system");
  }
  if (static_cast<std::uint64_t>(st.st_size) != grubenv::k_default_size) {
    throw Error(path.string(), "is " + std::to_string(st.st_size) + " bytes; a kiln grubenv is exactly " +
                                 std::to_string(grubenv::k_default_size));
  }
  return path;
}

PartitionIo::PartitionIo(const slots::Gpt& gpt, const slots::Partition& part, bool writable)
{
  int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  fs::path node = partition_node(gpt.disk, part.number);
  if (!node.empty()) {
    m_name = node.string();
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
  std::size_t got = util::pread_full(m_fd.get(), buffer, size, m_base + offset, m_name);
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

void
PartitionIo::drop_cache()
{
  ::posix_fadvise(m_fd.get(), static_cast<off_t>(m_base), static_cast<off_t>(m_size), POSIX_FADV_DONTNEED);
}

} // namespace kiln::node
