#include "core/node/boot_fs.hpp"

#include "core/grubenv/grubenv.hpp"
#include "core/node/mountinfo.hpp"
#include "core/node/partition.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <cctype>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace kiln::node {

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

} // namespace kiln::node
