// A file tree as a tar stream describes it, and the differences between two trees: what
// `kiln diff` compares once libguestfs has written each image's tree as a tar (numeric
// owners, xattrs and SELinux labels kept). Every entry's type, permission bits, owner,
// modification time, link target, extended attributes and, for a regular file, the
// sha256 of its content. GNU tar keeps neither atime nor ctime, so neither is compared.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::archive {

struct TreeEntry {
  // f regular, d directory, l symlink, h hard link, c/b device, p fifo, s socket
  char type = 'f';
  std::uint32_t mode = 0; // permission bits, 07777
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = 0; // seconds
  std::uint64_t size = 0; // regular files
  std::string link; // symlink or hard link target
  std::string sha256; // regular files: of the content
  std::map<std::string, std::string> xattrs; // name -> raw value
};

// Absolute paths ("/", "/etc", ...) -> entries.
using Tree = std::map<std::string, TreeEntry>;

// Bounds on what a tree may hold (a tar from an untrusted image is input like any other).
struct TreeLimits {
  std::uint64_t max_entries = 10'000'000;
  std::size_t max_path = 4096;
};

// Reads a tar file into a tree. Throws Error(subject, reason) for a damaged tar or one
// past the limits.
Tree read_tree(const std::filesystem::path& tar, const std::string& subject, const TreeLimits& limits = {});

// One way two trees differ at one path. `aspect`: "only in A", "only in B", "type",
// "content", "mode", "owner", "mtime", "link", or "xattr NAME"; `a` and `b` give the two
// sides as text (empty for the side that has none).
struct TreeDifference {
  std::string path;
  std::string aspect;
  std::string a;
  std::string b;
};

// By path, then in the order of the aspects above. Paths beneath a directory that is only
// in one tree are not listed one by one: the directory stands for them.
std::vector<TreeDifference> diff_trees(const Tree& a, const Tree& b);

// An xattr value or link as one line of text: as it is when printable, else hex.
std::string printable(const std::string& value);

} // namespace kiln::archive
