// The second pass: the tar's members, in the canonical order read_tar gives, written into
// the empty file system with libext2fs (no mount, no root). Inode numbers and blocks are
// allocated by libext2fs from the file system's state alone, so the same members in the
// same order give the same image. Nothing takes the clock: the handle's `now` is the epoch
// (the superblock's write time, new inodes), and every inode written gets atime = ctime =
// crtime = the epoch, mtime = min(the member's mtime, the epoch), no nanoseconds.
//
// Regular files: extents (EXT4_EXTENTS_FL, header initialised through libext2fs's extent
// calls) when the file system has them; a block of zeros, or a hole, is left unallocated.
// Directories grow a block when full (ext2fs_expand_dir). Devices, FIFOs and sockets are
// made as inodes. The root member sets the root inode; a "lost+found" directory at the top
// sets mke2fs's own. inline_data is refused.
#pragma once

#include "image/fsimage/ext2fs_handles.hpp"
#include "image/fsimage/tar_spool.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>

namespace kiln::fsimage {

class Ext4Writer {
public:
  // Opens the file system in `image` (made by make_empty_ext4); `subject` names it in errors.
  Ext4Writer(const std::filesystem::path& image, std::int64_t epoch, std::string subject);

  // Writes one member; its parent directory was written before. Regular files' content is
  // read from `spool` at the member's spool_offset.
  void add(const Member& member, int spool);

  // Writes the file system back (bitmaps, group descriptors, superblock and its backups).
  void finish();

private:
  ext2_ino_t make_directory(const Member& m, ext2_ino_t parent, const std::string& name);
  ext2_ino_t make_regular(const Member& m, ext2_ino_t parent, const std::string& name, int spool);
  ext2_ino_t make_symlink(const Member& m, ext2_ino_t parent, const std::string& name);
  ext2_ino_t make_special(const Member& m, ext2_ino_t parent, const std::string& name);
  void make_hard_link(const Member& m, ext2_ino_t parent, const std::string& name);
  // A new inode number near `parent` (not yet marked in use).
  ext2_ino_t new_inode(const Member& m, ext2_ino_t parent, unsigned mode);
  // Links `ino` as `name` in `parent`, growing the directory when it is full.
  void link(const Member& m, ext2_ino_t parent, const std::string& name, ext2_ino_t ino, int file_type);
  void write_content(const Member& m, ext2_ino_t ino, int spool);
  void set_xattrs(const Member& m, ext2_ino_t ino);
  void set_attributes(const Member& m, ext2_ino_t ino);
  // Throws Error(subject, ...) for a failed call: "does not fit in N bytes" when it ran out of room.
  void check(errcode_t code, const Member& m, const std::string& what) const;

  FilsysHandle m_fs;
  std::int64_t m_epoch;
  std::string m_subject;
  std::uint64_t m_bytes = 0; // the file system's size
  std::unordered_map<std::string, ext2_ino_t> m_inodes; // written paths
};

} // namespace kiln::fsimage
