// Writing tar archives with libarchive: an overlay tree becomes one uncompressed tar
// that the appliance unpacks in a single tar-in call. Owners, groups and times are set
// by the caller, not taken from the build host, so the result does not depend on who
// checked the tree out or when.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::archive {

struct TarOptions {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime = 0; // every entry's modification time (seconds since the epoch)
  std::string prefix; // prepended to every entry name, e.g. "etc/kiln"
};

// Packs the tree under `dir` (files, directories, symlinks; sorted by name) into an
// uncompressed POSIX (pax) tar at `out`. Permission bits come from the tree. Throws
// Error(path, reason) for unreadable entries or other file types.
void tar_directory(const std::filesystem::path& dir, const std::filesystem::path& out, const TarOptions& options);

// One entry of a tar listing, for tests and checks.
struct Entry {
  std::string name;
  char type = 'f'; // f, d, l
  unsigned mode = 0; // permission bits
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::string link; // symlink target
  std::string data; // a regular file's content (read_all only)
};

// Reads the entries of a tar file (any compression libarchive knows).
std::vector<Entry> list(const std::filesystem::path& tar);
// The same with every regular file's content; throws Error when the files hold more
// than `max_data` bytes in all.
std::vector<Entry> read_all(const std::filesystem::path& tar, std::uint64_t max_data);

} // namespace kiln::archive
