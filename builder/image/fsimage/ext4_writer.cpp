#include "image/fsimage/ext4_writer.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <ext2fs/ext2_err.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace kiln::fsimage {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_chunk = 1 << 20; // spool bytes read at once
constexpr unsigned k_max_links = 65000; // ext4's EXT4_LINK_MAX

bool
out_of_space(errcode_t code)
{
  return code == EXT2_ET_BLOCK_ALLOC_FAIL || code == EXT2_ET_INODE_ALLOC_FAIL || code == EXT2_ET_DIR_NO_SPACE ||
         code == ENOSPC;
}

int
dirent_type(unsigned mode)
{
  switch (mode & LINUX_S_IFMT) {
    case LINUX_S_IFDIR:
      return EXT2_FT_DIR;
    case LINUX_S_IFLNK:
      return EXT2_FT_SYMLINK;
    case LINUX_S_IFCHR:
      return EXT2_FT_CHRDEV;
    case LINUX_S_IFBLK:
      return EXT2_FT_BLKDEV;
    case LINUX_S_IFIFO:
      return EXT2_FT_FIFO;
    case LINUX_S_IFSOCK:
      return EXT2_FT_SOCK;
    default:
      return EXT2_FT_REG_FILE;
  }
}

// A time as ext4's 32-bit field holds it with no epoch bits: -2^31 .. 2^31-1 seconds.
__u32
inode_time(std::int64_t seconds)
{
  seconds = std::clamp<std::int64_t>(seconds, INT32_MIN, INT32_MAX);
  return static_cast<__u32>(static_cast<std::int32_t>(seconds));
}

std::pair<std::string, std::string>
split(const std::string& path)
{
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    return {"", path};
  }
  return {path.substr(0, slash), path.substr(slash + 1)};
}

} // namespace

Ext4Writer::Ext4Writer(const fs::path& image, std::int64_t epoch, std::string subject)
  : m_epoch(epoch), m_subject(std::move(subject))
{
  ext2_filsys raw = nullptr;
  errcode_t code = ext2fs_open(image.c_str(), EXT2_FLAG_RW | EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &raw);
  m_fs.reset(raw);
  if (code != 0) {
    throw Error(m_subject, "libext2fs cannot open the new file system: " + ext2fs_message(code));
  }
  // Every time libext2fs stamps (the superblock's write time, new inodes' times) is `now`.
  m_fs->now = static_cast<time_t>(epoch);
  // Write the backup superblocks and group descriptors too, so they agree with the primary.
  m_fs->flags &= ~EXT2_FLAG_MASTER_SB_ONLY;
  if (ext2fs_has_feature_inline_data(m_fs->super)) {
    throw Error(m_subject, "the inline_data feature is not supported");
  }
  code = ext2fs_read_bitmaps(m_fs.get());
  if (code != 0) {
    throw Error(m_subject, "cannot read the bitmaps: " + ext2fs_message(code));
  }
  m_bytes = ext2fs_blocks_count(m_fs->super) * m_fs->blocksize;
  m_inodes.emplace("", EXT2_ROOT_INO);
}

void
Ext4Writer::add(const Member& m, int spool)
{
  util::check_interrupted();
  if (m.path.empty()) {
    set_xattrs(m, EXT2_ROOT_INO);
    set_attributes(m, EXT2_ROOT_INO);
    return;
  }
  auto [parent_path, name] = split(m.path);
  auto parent = m_inodes.find(parent_path);
  if (parent == m_inodes.end()) {
    throw Error(m_subject, "member " + m.path + ": written before its parent"); // read_tar's order prevents it
  }
  ext2_ino_t ino = 0;
  switch (m.type) {
    case MemberType::directory:
      ino = make_directory(m, parent->second, name);
      break;
    case MemberType::regular:
      ino = make_regular(m, parent->second, name, spool);
      break;
    case MemberType::symlink:
      ino = make_symlink(m, parent->second, name);
      break;
    case MemberType::hardlink:
      make_hard_link(m, parent->second, name);
      return;
    default:
      ino = make_special(m, parent->second, name);
      break;
  }
  m_inodes.emplace(m.path, ino);
  set_xattrs(m, ino);
  set_attributes(m, ino);
}

void
Ext4Writer::finish()
{
  errcode_t code = close_filsys(m_fs);
  if (code != 0) {
    throw Error(m_subject, "cannot write the file system back: " + ext2fs_message(code));
  }
}

ext2_ino_t
Ext4Writer::make_directory(const Member& m, ext2_ino_t parent, const std::string& name)
{
  ext2_ino_t ino = 0;
  if (parent == EXT2_ROOT_INO && name == "lost+found" &&
      ext2fs_lookup(m_fs.get(), parent, name.c_str(), static_cast<int>(name.size()), nullptr, &ino) == 0) {
    return ino; // mke2fs's, with its blocks kept for e2fsck
  }
  ino = new_inode(m, parent, LINUX_S_IFDIR | 0755);
  // Made unlinked (no name), then linked like every other member.
  check(ext2fs_mkdir(m_fs.get(), parent, ino, nullptr), m, "making the directory");
  link(m, parent, name, ino, EXT2_FT_DIR);
  return ino;
}

ext2_ino_t
Ext4Writer::make_regular(const Member& m, ext2_ino_t parent, const std::string& name, int spool)
{
  ext2_ino_t ino = new_inode(m, parent, LINUX_S_IFREG | 0644);
  struct ext2_inode inode {};
  inode.i_mode = static_cast<__u16>(LINUX_S_IFREG | m.mode);
  inode.i_links_count = 1;
  check(ext2fs_inode_size_set(m_fs.get(), &inode, m.size), m, "setting the size");
  if (ext2fs_has_feature_extents(m_fs->super)) {
    // Opening an extent handle on the in-memory inode writes the extent header into
    // i_block and sets EXT4_EXTENTS_FL.
    ext2_extent_handle_t extents = nullptr;
    check(ext2fs_extent_open2(m_fs.get(), ino, &inode, &extents), m, "starting the extent tree");
    ext2fs_extent_free(extents);
  }
  check(ext2fs_write_new_inode(m_fs.get(), ino, &inode), m, "writing the inode");
  ext2fs_inode_alloc_stats2(m_fs.get(), ino, +1, 0);
  link(m, parent, name, ino, EXT2_FT_REG_FILE);
  write_content(m, ino, spool);
  return ino;
}

ext2_ino_t
Ext4Writer::make_symlink(const Member& m, ext2_ino_t parent, const std::string& name)
{
  ext2_ino_t ino = new_inode(m, parent, LINUX_S_IFLNK | 0777);
  // Fast (in the inode) below 60 bytes, else one block; no name: linked below.
  check(ext2fs_symlink(m_fs.get(), parent, ino, nullptr, m.target.c_str()), m, "making the symlink");
  link(m, parent, name, ino, EXT2_FT_SYMLINK);
  return ino;
}

ext2_ino_t
Ext4Writer::make_special(const Member& m, ext2_ino_t parent, const std::string& name)
{
  unsigned type = m.type == MemberType::chardev    ? LINUX_S_IFCHR
                  : m.type == MemberType::blockdev ? LINUX_S_IFBLK
                  : m.type == MemberType::fifo     ? LINUX_S_IFIFO
                                                   : LINUX_S_IFSOCK;
  ext2_ino_t ino = new_inode(m, parent, type | 0644);
  struct ext2_inode inode {};
  inode.i_mode = static_cast<__u16>(type | m.mode);
  inode.i_links_count = 1;
  if (type == LINUX_S_IFCHR || type == LINUX_S_IFBLK) {
    if (m.dev_major > 0xfff || m.dev_minor > 0xfffff) {
      throw Error(m_subject, "member " + m.path + ": device number " + std::to_string(m.dev_major) + ":" +
                               std::to_string(m.dev_minor) + " is past Linux's 12:20 bits");
    }
    // Linux's encodings: the old 8:8 one when it is enough, else the 12:20 one in i_block[1].
    if (m.dev_major < 256 && m.dev_minor < 256) {
      inode.i_block[0] = m.dev_major * 256 + m.dev_minor;
    } else {
      inode.i_block[1] = (m.dev_minor & 0xff) | (m.dev_major << 8) | ((m.dev_minor & ~0xffu) << 12);
    }
  }
  check(ext2fs_write_new_inode(m_fs.get(), ino, &inode), m, "writing the inode");
  ext2fs_inode_alloc_stats2(m_fs.get(), ino, +1, 0);
  link(m, parent, name, ino, dirent_type(type));
  return ino;
}

void
Ext4Writer::make_hard_link(const Member& m, ext2_ino_t parent, const std::string& name)
{
  auto target = m_inodes.find(m.target);
  if (target == m_inodes.end()) {
    throw Error(m_subject, "member " + m.path + ": its hard link target " + m.target + " was not written");
  }
  struct ext2_inode inode {};
  check(ext2fs_read_inode(m_fs.get(), target->second, &inode), m, "reading the link target's inode");
  if (inode.i_links_count >= k_max_links) {
    throw Error(m_subject, "member " + m.path + ": more than " + std::to_string(k_max_links) + " hard links");
  }
  link(m, parent, name, target->second, dirent_type(inode.i_mode));
  ++inode.i_links_count;
  check(ext2fs_write_inode(m_fs.get(), target->second, &inode), m, "counting the link");
}

ext2_ino_t
Ext4Writer::new_inode(const Member& m, ext2_ino_t parent, unsigned mode)
{
  ext2_ino_t ino = 0;
  check(ext2fs_new_inode(m_fs.get(), parent, static_cast<int>(mode), nullptr, &ino), m, "allocating an inode");
  return ino;
}

void
Ext4Writer::link(const Member& m, ext2_ino_t parent, const std::string& name, ext2_ino_t ino, int file_type)
{
  errcode_t code = ext2fs_link(m_fs.get(), parent, name.c_str(), ino, file_type);
  if (code == EXT2_ET_DIR_NO_SPACE) {
    check(ext2fs_expand_dir(m_fs.get(), parent), m, "growing its directory");
    code = ext2fs_link(m_fs.get(), parent, name.c_str(), ino, file_type);
  }
  check(code, m, "linking it into its directory");
}

void
Ext4Writer::write_content(const Member& m, ext2_ino_t ino, int spool)
{
  ext2_file_t raw = nullptr;
  check(ext2fs_file_open(m_fs.get(), ino, EXT2_FILE_WRITE, &raw), m, "opening it for writing");
  FileHandle file(raw);
  const std::uint64_t block = m_fs->blocksize;
  std::vector<char> buffer(k_chunk);
  std::uint64_t pos = 0;
  while (pos < m.size) {
    // Skip the spool's holes (read_tar put the content at a block boundary).
    off_t data = ::lseek(spool, static_cast<off_t>(m.spool_offset + pos), SEEK_DATA);
    if (data < 0 && errno == ENXIO) {
      break; // only a hole remains
    }
    if (data >= 0) {
      std::uint64_t at = static_cast<std::uint64_t>(data) - m.spool_offset;
      if (at >= m.size) {
        break;
      }
      pos = std::max(pos, at / block * block);
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(k_chunk, m.size - pos));
    std::size_t got = util::pread_full(spool, buffer.data(), want, m.spool_offset + pos, "the tar's spool");
    if (got != want) {
      throw Error(m_subject, "member " + m.path + ": the spool ended early");
    }
    // Runs of blocks holding something other than zeros are written; the rest stays a hole.
    for (std::size_t start = 0; start < got;) {
      std::size_t end = start;
      while (end < got && !all_zero(buffer.data() + end, std::min<std::size_t>(block, got - end))) {
        end += std::min<std::size_t>(block, got - end);
      }
      if (end > start) {
        check(ext2fs_file_llseek(file.get(), pos + start, EXT2_SEEK_SET, nullptr), m, "seeking in it");
        unsigned int written = 0;
        check(ext2fs_file_write(file.get(), buffer.data() + start, static_cast<unsigned>(end - start), &written), m,
              "writing its content");
        if (written != end - start) {
          throw Error(m_subject, "member " + m.path + ": a short write into the file system");
        }
        start = end;
      } else {
        start += std::min<std::size_t>(block, got - start);
      }
    }
    pos += got;
  }
  check(ext2fs_file_close(file.release()), m, "closing it");
}

void
Ext4Writer::set_xattrs(const Member& m, ext2_ino_t ino)
{
  if (m.xattrs.empty()) {
    return;
  }
  struct ext2_xattr_handle* raw = nullptr;
  check(ext2fs_xattrs_open(m_fs.get(), ino, &raw), m, "opening its extended attributes");
  XattrsHandle handle(raw);
  check(ext2fs_xattrs_read(handle.get()), m, "reading its extended attributes");
  for (const auto& [name, value] : m.xattrs) {
    errcode_t code = ext2fs_xattr_set(handle.get(), name.c_str(), value.data(), value.size());
    if (code == EXT2_ET_EA_NO_SPACE) {
      throw Error(m_subject, "member " + m.path + ": its extended attributes do not fit in the inode and one block");
    }
    check(code, m, "setting the extended attribute " + name);
  }
  raw = handle.release();
  check(ext2fs_xattrs_close(&raw), m, "writing its extended attributes");
}

void
Ext4Writer::set_attributes(const Member& m, ext2_ino_t ino)
{
  struct ext2_inode_large inode {};
  auto* small = reinterpret_cast<struct ext2_inode*>(&inode);
  check(ext2fs_read_inode_full(m_fs.get(), ino, small, sizeof inode), m, "reading its inode");
  inode.i_uid = static_cast<__u16>(m.uid);
  ext2fs_set_i_uid_high(inode, static_cast<__u16>(m.uid >> 16));
  inode.i_gid = static_cast<__u16>(m.gid);
  ext2fs_set_i_gid_high(inode, static_cast<__u16>(m.gid >> 16));
  inode.i_mode = static_cast<__u16>((inode.i_mode & LINUX_S_IFMT) | m.mode);
  __u32 epoch = inode_time(m_epoch);
  inode.i_atime = epoch;
  inode.i_ctime = epoch;
  inode.i_mtime = inode_time(std::min(m.mtime, m_epoch));
  // The large inode's extra times: no nanoseconds, no epoch bits (the times fit 32 bits).
  if (EXT2_INODE_SIZE(m_fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
      inode.i_extra_isize >= offsetof(struct ext2_inode_large, i_version_hi) - EXT2_GOOD_OLD_INODE_SIZE) {
    inode.i_ctime_extra = 0;
    inode.i_mtime_extra = 0;
    inode.i_atime_extra = 0;
    inode.i_crtime = epoch;
    inode.i_crtime_extra = 0;
  }
  check(ext2fs_write_inode_full(m_fs.get(), ino, small, sizeof inode), m, "writing its inode");
}

void
Ext4Writer::check(errcode_t code, const Member& m, const std::string& what) const
{
  if (code == 0) {
    return;
  }
  std::string where =
    "member " + (m.path.empty() ? std::string("/") : m.path) + ": " + what + ": " + ext2fs_message(code);
  if (out_of_space(code)) {
    throw Error(m_subject, "does not fit in " + std::to_string(m_bytes) + " bytes: " + where);
  }
  throw Error(m_subject, where);
}

} // namespace kiln::fsimage
