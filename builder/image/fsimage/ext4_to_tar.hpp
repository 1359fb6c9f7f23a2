// The tree of an ext4 file system image, read with libext2fs (no mount, no root) and
// written as a pax tar: every path in sorted order, numeric owners, permission bits,
// modification times to the nanosecond, symlinks, hard links, device nodes, FIFOs and
// every extended attribute (security.selinux and POSIX ACLs included). Access, change
// and creation times are left out: a tar does not carry them, and the image made from
// it sets them from the epoch (ext4_image.hpp). lost+found is left out too: mke2fs makes
// its own.
//
// With make_ext4_from_tar this re-makes a file system that the appliance's kernel wrote
// (block placement, inode numbers and times that depend on the moment and on the order
// of writes) as one that depends only on its tree: kiln's reproducible builds (README,
// "Reproducible builds").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::fsimage {

// 16 bytes as a UUID's text (8-4-4-4-12 lower-case hex digits).
std::string uuid_text(const unsigned char* bytes);

// What the re-made file system keeps of the one it replaces.
struct Ext4Geometry {
  std::string uuid; // 8-4-4-4-12 hex digits
  std::string label;
  std::uint32_t block_size = 0;
  std::uint32_t inode_size = 0;
  std::uint64_t inodes = 0;
  std::uint64_t blocks = 0;
};

struct TreeReadLimits {
  std::uint64_t max_entries = 2'000'000;
  std::size_t max_path = 4096;
  unsigned max_depth = 256;
};

struct TreeReadReport {
  std::uint64_t entries = 0; // tar members written
  std::uint64_t bytes = 0; // regular files' content, hard links once
};

// The geometry of the ext4 file system in `image` (a file holding just the file
// system). Throws Error(image, reason) when it is no ext4 kiln can read back: a journal
// to replay, inline data, encryption or case folding.
Ext4Geometry read_ext4_geometry(const std::filesystem::path& image);

// Writes the tree of `image` to `tar` (replaced atomically). Throws Error(image or tar,
// reason) as read_ext4_geometry does, for a tree past `limits`, or on a read error.
TreeReadReport ext4_to_tar(const std::filesystem::path& image, const std::filesystem::path& tar,
                           const TreeReadLimits& limits = {});

} // namespace kiln::fsimage
