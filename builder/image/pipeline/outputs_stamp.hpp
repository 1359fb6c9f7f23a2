// What publish last wrote into an output directory, so that a build whose final layer
// and output options are unchanged leaves the outputs as they are instead of writing
// them again. Like ninja's log it trusts the file system's own record: each file's size,
// modification time and inode, taken right after the files were moved into place, are
// compared with lstat; nothing is read or hashed. A file replaced, touched, truncated or
// removed since makes the stamp stale, and publish writes everything again.
//
// The stamp is DIR/.NAME.kiln-outputs.json, written atomically after the manifest.
#pragma once

#include "core/manifest/manifest.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

namespace fs = std::filesystem;

struct StampedFile {
  std::string name; // in the output directory
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
  bool operator==(const StampedFile&) const = default;
};

struct OutputsStamp {
  std::string key; // outputs_key() of the build that wrote the files
  std::vector<StampedFile> files;
};

// Everything that decides the outputs' bytes: the manifest's recipe part (which holds
// every stage key, so the final layer's), the formats in order, compression, the
// signing key's digest (empty: unsigned), SOURCE_DATE_EPOCH and kiln's version.
std::string outputs_key(const manifest::Manifest& base, const std::vector<std::string>& formats, bool compress,
                        const std::string& signing_key_digest, std::optional<std::int64_t> epoch);

fs::path stamp_path(const fs::path& dir, const std::string& stem);

// The file as lstat sees it now; nullopt when it is missing or not a regular file.
std::optional<StampedFile> stat_file(const fs::path& dir, const std::string& name);

// The stamp in `dir`, or nullopt when there is none or it cannot be read (a stale or
// damaged stamp only costs a rewrite). Bounded: a stamp over 1 MiB is ignored.
std::optional<OutputsStamp> read_stamp(const fs::path& dir, const std::string& stem);

// True when `stamp` was written for `key` and every file it names is as it was then.
bool up_to_date(const OutputsStamp& stamp, const fs::path& dir, const std::string& key);

// Records `names` (files in `dir`, as they are now) under `key`, atomically.
void write_stamp(const fs::path& dir, const std::string& stem, const std::string& key,
                 const std::vector<std::string>& names);

} // namespace kiln::build
