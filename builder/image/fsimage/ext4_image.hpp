// An ext4 file system image made from a tar archive, bit for bit deterministically, without
// root and without mounting: the same tar content (in any member order) and the same
// parameters give the same image bytes. How:
//   1. the tar is read once (tar_spool): members normalised, checked against the limits,
//      sorted by path; regular files' content copied into a spool file beside the output;
//   2. mke2fs makes the empty file system with everything pinned (mke2fs.hpp);
//   3. libext2fs adds the members in sorted order (ext4_writer), every time from the epoch.
// The image is written under a temporary name beside `out` and renamed on success.
#pragma once

#include "core/util/runner.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace kiln::fsimage {

// Features CentOS 7 (kernel 3.10, e2fsprogs 1.42.9, GRUB 2.02) reads, relative to
// e2fsprogs 1.47.0's ext4 defaults (mke2fs.hpp pins those).
inline constexpr const char* k_centos7_ext4_features = "^metadata_csum,^metadata_csum_seed,^orphan_file,^64bit";

// Bounds on what a tar may hold: it is input like any other.
struct TarLimits {
  std::uint64_t max_entries = 2'000'000; // members of the tar (each costs a few hundred bytes)
  std::size_t max_path = 4096; // bytes of a member's path (ext4: 255 per component)
  std::size_t max_xattr_bytes = 65'536; // names and values of one member's xattrs together
};

struct Ext4Params {
  std::uint64_t size = 0; // bytes of the image: a multiple of block_size
  std::string label; // at most 16 bytes
  std::string uuid; // the file system UUID (8-4-4-4-12 hex digits)
  std::string hash_seed; // the directory hash seed, a UUID too
  std::int64_t epoch = 0; // every time written: 1 .. 2^31-1 (mke2fs ignores a fake time of 0)
  std::string features = k_centos7_ext4_features; // mke2fs -O
  std::uint32_t block_size = 4096;
  std::uint32_t inode_size = 256;
  std::uint64_t inodes = 0; // 0: mke2fs's count for the size (one per 16 KiB)
  TarLimits limits;
};

struct Ext4Report {
  std::uint64_t entries = 0; // tar members written into the image
  std::uint64_t bytes = 0; // regular files' sizes, summed (hard links once)
  std::uint64_t skipped = 0; // tar members of a type ext4 cannot hold
  std::uint64_t implicit_dirs = 0; // parent directories the tar did not list (0755, root, epoch)
};

// Makes `out` from `tar`; mke2fs runs through `runner`. Throws Error(out or tar, reason): a
// bad parameter, a member past the limits or with a ".." component, and a tree that does
// not fit ("does not fit in N bytes: ..."). On any failure `out` is left as it was.
Ext4Report make_ext4_from_tar(util::Runner& runner, const std::filesystem::path& tar, const std::filesystem::path& out,
                              const Ext4Params& params);

} // namespace kiln::fsimage
