// The first pass over the tar: a tar is a stream in whatever member order its writer chose,
// and the image must not depend on that order. So the tar is read once, completely:
// every member's metadata is kept in memory (bounded by TarLimits) and every regular
// file's content is copied into one spool file (an unlinked file in a scratch directory,
// holes kept as holes), each file starting at a multiple of the block size. The members
// come back in the canonical order the writer follows: sorted by path, compared component
// by component in byte order, so every directory comes before what it holds.
//
// Paths are normalised ("./etc/x", "etc/x", "/etc/x" and "etc/x/" are all "etc/x"; the
// root is ""); a ".." component is refused. A parent directory the tar does not list is
// added (0755, owner 0:0, the epoch as mtime). A group of hard links is one inode held by
// the first of its paths in that order, whatever the tar called the target.
#pragma once

#include "core/util/fs.hpp"
#include "image/fsimage/ext4_image.hpp"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::fsimage {

enum class MemberType { directory, regular, symlink, hardlink, chardev, blockdev, fifo, socket };

struct Member {
  std::string path; // normalised; "" is the root
  MemberType type = MemberType::regular;
  std::uint32_t mode = 0; // permission bits with setuid, setgid and sticky (07777)
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  // Seconds. A parent the tar did not list has the largest value, which the writer's clamp
  // to the epoch turns into the epoch.
  std::int64_t mtime = std::numeric_limits<std::int64_t>::max();
  std::uint64_t size = 0; // regular files
  std::uint64_t spool_offset = 0; // regular files: where the content starts in the spool
  std::uint32_t dev_major = 0; // character and block devices
  std::uint32_t dev_minor = 0;
  std::string target; // symlink: its target; hardlink: the path of the member holding the inode
  std::vector<std::pair<std::string, std::string>> xattrs; // name -> raw value, sorted by name
  bool implicit = false; // a parent directory the tar did not list
};

struct TarContent {
  std::vector<Member> members; // canonical order; members[0] is the root
  util::Fd spool; // the regular files' content at their spool_offset
  std::uint64_t data_blocks = 0; // blocks of the block size holding a byte other than zero
  std::uint64_t bytes = 0; // regular files' sizes, summed
  std::uint64_t entries = 0; // tar members kept
  std::uint64_t skipped = 0; // tar members of a type ext4 cannot hold
};

// Reads `tar` (any compression libarchive reads). The spool is made in `scratch`.
// Throws Error(tar path, reason) for a damaged tar or a member past `limits`, with the
// member's path in the reason.
TarContent read_tar(const std::filesystem::path& tar, const std::filesystem::path& scratch, std::uint32_t block_size,
                    const TarLimits& limits);

// A member's path normalised as above; throws Error(raw, reason) for a ".." component or
// a component longer than ext4's 255 bytes.
std::string normalise_path(std::string_view raw);

// The canonical order: component by component, each in byte order ("a" < "a/b" < "a-b").
bool path_before(std::string_view a, std::string_view b);

// True when every byte of `data` is zero: the writer leaves such blocks unallocated.
bool all_zero(const char* data, std::size_t size);

} // namespace kiln::fsimage
