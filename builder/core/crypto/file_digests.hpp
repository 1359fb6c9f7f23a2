// Digests of local input files, each file read once for as long as it does not change:
// the interface the planner hashes through, a direct implementation, and one that keeps
// the digests in a store file of the cache, keyed by what stat says of the file (device,
// inode, size, modification and change times, path), as ccache and ninja trust stat.
// A file modified less than k_racy_seconds before it was hashed is not remembered (git's
// "racily clean" rule): a write within the same clock tick would leave its stat unchanged.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>

namespace kiln::crypto {

class FileDigests {
public:
  virtual ~FileDigests() = default;
  // sha256 of the file's content, lowercase hex; throws Error(path, reason).
  virtual std::string sha256(const std::filesystem::path& path) = 0;
};

// Reads and hashes the file every time.
FileDigests& direct_digests();

class CachedDigests final : public FileDigests {
public:
  static constexpr int k_racy_seconds = 2;
  static constexpr std::size_t k_max_entries = 4096;

  // Loads `store` (absent, damaged or over 4 MiB: starts empty).
  explicit CachedDigests(std::filesystem::path store);

  std::string sha256(const std::filesystem::path& path) override;
  // Writes the store atomically when something was added; the newest k_max_entries stay.
  // A store that cannot be written costs only a rehash next time: never an error.
  void save() noexcept;
  // Files read and hashed by this object (not answered from the store).
  std::size_t hashed() const noexcept { return m_hashed; }

private:
  struct Entry {
    std::string sha256;
    std::int64_t used = 0; // seconds since the epoch: for keeping the newest
  };
  std::filesystem::path m_store;
  std::map<std::string, Entry> m_entries;
  std::size_t m_hashed = 0;
  bool m_dirty = false;
};

} // namespace kiln::crypto
