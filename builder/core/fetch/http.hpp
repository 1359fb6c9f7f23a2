// One HTTP(S)/file transfer into a partial file with libcurl, resuming from the
// bytes already there. The caller decides about retries from the result.
#pragma once

#include "core/crypto/sha256.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace kiln::fetch {

struct TransferResult {
  enum class Outcome { ok, transient, permanent, interrupted, too_large };
  Outcome outcome = Outcome::ok;
  std::string error; // one line: "HTTP 404", "connection reset", ...
  std::uint64_t size = 0; // bytes in the partial file afterwards
  bool not_modified = false; // 304: the copy the validators named is current
  std::string etag; // the reply's validators, for the next conditional request
  std::string last_modified;
};

struct TransferOptions {
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;
  std::uint64_t min_rate = 1024; // bytes/s over stall_timeout_s, else the attempt aborts
  std::uint64_t limit = UINT64_MAX; // the file may not grow past this many bytes
  std::string ca_file; // extra CA bundle (PEM) instead of the system's; empty: system trust
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  // A conditional request (RFC 9110, 13.1) for a copy kiln already has: its ETag and its
  // Last-Modified date. Sent only when the partial file is empty (never with a Range).
  std::string if_none_match;
  std::string if_modified_since;
};

// Downloads `url` into `partial`, appending when it already holds bytes (Range
// request) and starting over when the server ignores the range. `hasher` is fed
// every byte of the final file content (existing bytes included).
TransferResult transfer(const std::string& url, const std::filesystem::path& partial, crypto::Sha256& hasher,
                        const TransferOptions& options);

// "curl/7.88.1"-style version string of the linked libcurl.
std::string curl_version_string();

} // namespace kiln::fetch
