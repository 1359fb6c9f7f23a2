// The content-addressed download cache. Layout under the cache root:
//   blobs/sha256/AB/ABCDEF...   verified content, named by its digest
//   partial/ID.part             a download in progress (resumable), never trusted; removed
//                               on interrupt, on failure and when larger than the bound
//   verify-on-hit               marker: rehash every blob on a hit (caches shared between
//                               machines); without it a hit is checked by size when pinned
//   locks/ID.lock               flock(2) held while one process fetches ID
//   urls/ID.json                an unpinned URL's last download: its blob's digest and
//                               the server's validators (ETag, Last-Modified), so the
//                               next fetch is a conditional request and a 304 reuses the
//                               blob instead of downloading it again
// A blob appears only by rename(2) after its digest was verified, so a killed
// download can never leave a file that looks complete.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::fetch {

namespace fs = std::filesystem;

inline constexpr std::uint64_t k_default_max_size = 64ULL << 30; // 64 GiB

struct FetchOptions {
  std::vector<std::string> urls; // the first URL, then mirrors, tried in order
  std::optional<std::string> sha256;
  std::optional<std::uint64_t> size; // pinned size: a download or a blob of another size is refused
  std::uint64_t max_size = k_default_max_size; // bound for an input whose size is not pinned
  std::uint64_t min_rate = 1024; // bytes/s averaged over stall_timeout_s; slower aborts the attempt
  bool verify_hits = false; // rehash a cached blob before returning it (also: marker file)
  bool allow_unpinned = false;
  int attempts = 4; // per URL, for transient failures
  std::chrono::milliseconds backoff{500}; // doubled after each failed attempt
  long connect_timeout_s = 30;
  long stall_timeout_s = 60; // abort a transfer that moves no byte for this long
  std::string ca_file; // CA bundle (PEM) to trust instead of the system's
  // Called with (bytes so far, total or 0) while downloading.
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  // Called with one line per retry or mirror switch ("retrying ... in 1s").
  std::function<void(const std::string&)> notice;
};

struct FetchResult {
  fs::path path; // the verified blob in the cache
  std::string sha256;
  std::uint64_t size = 0;
  bool cache_hit = false;
  std::string url; // where it came from (empty on a cache hit)
};

class Cache {
public:
  explicit Cache(fs::path root);

  // --cache DIR, else $KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
  static fs::path default_root(const std::optional<std::string>& option);

  const fs::path& root() const noexcept { return m_root; }
  fs::path blob_path(const std::string& sha256) const;
  std::optional<fs::path> lookup(const std::string& sha256) const;
  // A blob that passes the hit checks: its size when `size` is given, its digest when
  // `rehash` is set or the cache carries the verify-on-hit marker. A blob that fails is
  // removed (it would fail every later build too) and nullopt returned.
  std::optional<fs::path> checked_lookup(const std::string& sha256, std::optional<std::uint64_t> size,
                                         bool rehash) const;
  bool verify_on_hit_marker() const;

  // Rehashes every blob; removes the ones whose content does not match their name.
  struct VerifyReport {
    std::uint64_t checked = 0;
    std::vector<fs::path> removed; // corrupt blobs, already deleted
  };
  VerifyReport verify_all() const;

  // Returns the cached blob, downloading it first when needed. Throws Error naming the
  // URL (or UsageError for an unpinned input without allow_unpinned).
  FetchResult fetch(const FetchOptions& options);

  // Copies a local file into the cache under its digest (atomic); returns the blob.
  fs::path insert_file(const fs::path& source, const std::string& sha256);

  // A directory for other kinds of entries (stage layers), created on demand.
  fs::path area(const std::string& name) const;

private:
  fs::path m_root;
};

} // namespace kiln::fetch
