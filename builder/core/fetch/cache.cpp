#include "core/fetch/cache.hpp"

#include "core/crypto/sha256.hpp"
#include "core/fetch/http.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace kiln::fetch {

namespace {

void
make_dirs(const fs::path& dir)
{
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw Error(dir.string(), "cannot create directory: " + ec.message());
  }
}

std::uint64_t
file_size_or_zero(const fs::path& path)
{
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Moves a verified file into its blob path, durably.
void
publish(const fs::path& from, const fs::path& blob)
{
  make_dirs(blob.parent_path());
  {
    util::Fd fd = util::open_file(from, O_RDONLY);
    if (::fsync(fd.get()) != 0) {
      throw Error(from.string(), "fsync failed: " + errno_text(errno));
    }
  }
  if (::rename(from.c_str(), blob.c_str()) != 0) {
    throw Error(blob.string(), "cannot move download into the cache: " + errno_text(errno));
  }
  util::fsync_dir(blob.parent_path());
}

// What an unpinned URL last gave: urls/ID.json.
struct UrlRecord {
  std::string url;
  std::string sha256;
  std::string etag;
  std::string last_modified;
};

std::optional<UrlRecord>
read_url_record(const fs::path& file, const std::string& url)
{
  std::optional<std::string> text = util::read_file_within(file, 8192);
  if (!text) {
    return std::nullopt;
  }
  try {
    nlohmann::json j = nlohmann::json::parse(*text);
    UrlRecord r{j.at("url").get<std::string>(), j.at("sha256").get<std::string>(), j.value("etag", std::string()),
                j.value("last_modified", std::string())};
    if (r.url != url || !crypto::is_sha256_hex(r.sha256) || (r.etag.empty() && r.last_modified.empty())) {
      return std::nullopt;
    }
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt; // damaged: downloaded again
  }
}

void
write_url_record(const fs::path& file, const UrlRecord& r)
{
  if (r.etag.empty() && r.last_modified.empty()) {
    std::error_code ec;
    fs::remove(file, ec); // nothing to ask with next time
    return;
  }
  nlohmann::json j = {{"url", r.url}, {"sha256", r.sha256}};
  if (!r.etag.empty()) {
    j["etag"] = r.etag;
  }
  if (!r.last_modified.empty()) {
    j["last_modified"] = r.last_modified;
  }
  util::write_file_atomic(file, j.dump() + "\n");
}

} // namespace

Cache::Cache(fs::path root) : m_root(std::move(root))
{
  make_dirs(m_root);
  m_root = fs::canonical(m_root);
}

fs::path
Cache::default_root(const std::optional<std::string>& option)
{
  if (option && !option->empty()) {
    return *option;
  }
  if (const char* env = std::getenv("KILN_CACHE"); env != nullptr && *env != '\0') {
    return env;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return fs::path(xdg) / "kiln";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".cache" / "kiln";
  }
  throw UsageError("cache", "no cache directory: give --cache DIR or set KILN_CACHE");
}

fs::path
Cache::blob_path(const std::string& sha256) const
{
  return m_root / "blobs" / "sha256" / sha256.substr(0, 2) / sha256;
}

bool
Cache::verify_on_hit_marker() const
{
  return fs::exists(m_root / "verify-on-hit");
}

std::optional<fs::path>
Cache::checked_lookup(const std::string& sha256, std::optional<std::uint64_t> size, bool rehash) const
{
  auto hit = lookup(sha256);
  if (!hit) {
    return std::nullopt;
  }
  bool bad = size && file_size_or_zero(*hit) != *size;
  if (!bad && (rehash || verify_on_hit_marker())) {
    bad = crypto::sha256_file(*hit) != sha256;
  }
  if (!bad) {
    return hit;
  }
  std::error_code ec;
  fs::remove(*hit, ec);
  return std::nullopt;
}

Cache::VerifyReport
Cache::verify_all() const
{
  VerifyReport report;
  fs::path blobs = m_root / "blobs" / "sha256";
  if (!fs::is_directory(blobs)) {
    return report;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(blobs)) {
    if (!e.is_directory()) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    util::check_interrupted();
    ++report.checked;
    std::string name = f.filename().string();
    bool good = crypto::is_sha256_hex(name) && f.parent_path().filename() == name.substr(0, 2) &&
                fs::is_regular_file(fs::symlink_status(f)) && crypto::sha256_file(f) == name;
    if (!good) {
      std::error_code ec;
      fs::remove(f, ec);
      if (ec) {
        throw Error(f.string(), "cannot remove corrupt blob: " + ec.message());
      }
      report.removed.push_back(f);
    }
  }
  return report;
}

std::optional<fs::path>
Cache::lookup(const std::string& sha256) const
{
  fs::path p = blob_path(sha256);
  if (fs::is_regular_file(p)) {
    return p;
  }
  return std::nullopt;
}

fs::path
Cache::area(const std::string& name) const
{
  fs::path dir = m_root / name;
  make_dirs(dir);
  return dir;
}

fs::path
Cache::insert_file(const fs::path& source, const std::string& sha256)
{
  if (auto hit = lookup(sha256)) {
    return *hit;
  }
  fs::path blob = blob_path(sha256);
  make_dirs(blob.parent_path());
  util::AtomicFile out(blob);
  std::error_code ec;
  fs::copy_file(source, out.temp_path(), fs::copy_options::overwrite_existing, ec);
  if (ec) {
    throw Error(source.string(), "cannot copy into the cache: " + ec.message());
  }
  if (crypto::sha256_file(out.temp_path()) != sha256) {
    throw Error(source.string(), "changed while it was copied into the cache");
  }
  out.commit();
  return blob;
}

FetchResult
Cache::fetch(const FetchOptions& options)
{
  if (options.urls.empty()) {
    throw UsageError("fetch", "no URL given");
  }
  const std::string& first = options.urls.front();
  if (options.sha256 && !crypto::is_sha256_hex(*options.sha256)) {
    throw UsageError(first, "sha256 must be 64 lower-case hex digits, not '" + *options.sha256 + "'");
  }
  if (!options.sha256 && !options.allow_unpinned) {
    throw UsageError(first,
                     "no sha256 given: pin the input with --sha256, or pass --allow-unpinned to accept it unverified");
  }
  if (options.sha256) {
    if (auto hit = checked_lookup(*options.sha256, options.size, options.verify_hits)) {
      return {*hit, *options.sha256, file_size_or_zero(*hit), true, {}};
    }
  }

  // One process fetches an item at a time; the others wait, then find it cached.
  const std::string id = options.sha256 ? *options.sha256 : crypto::sha256_hex("url:" + first);
  fs::path locks = area("locks");
  fs::path partials = area("partial");
  util::FileLock lock(locks / (id + ".lock"));
  if (options.sha256) {
    if (auto hit = checked_lookup(*options.sha256, options.size, options.verify_hits)) {
      return {*hit, *options.sha256, file_size_or_zero(*hit), true, {}};
    }
  }
  fs::path partial = partials / (id + ".part");
  // An unpinned URL fetched before: ask whether the copy is current.
  const fs::path url_record = options.sha256 ? fs::path() : area("urls") / (id + ".json");
  std::optional<UrlRecord> known = options.sha256 ? std::nullopt : read_url_record(url_record, first);
  if (known && !checked_lookup(known->sha256, std::nullopt, options.verify_hits)) {
    known.reset(); // its blob is gone (cache verify, or removed by hand) or damaged
  }
  const std::uint64_t limit = options.size ? *options.size : options.max_size;
  // A partial left by a killed process is resumed only while it is within the bound.
  if (file_size_or_zero(partial) > limit) {
    fs::remove(partial);
  }

  TransferOptions transfer_options;
  transfer_options.connect_timeout_s = options.connect_timeout_s;
  transfer_options.stall_timeout_s = options.stall_timeout_s;
  transfer_options.min_rate = options.min_rate;
  transfer_options.limit = limit;
  transfer_options.progress = options.progress;
  transfer_options.ca_file = options.ca_file;

  std::vector<std::string> failures;
  for (const auto& url : options.urls) {
    auto delay = options.backoff;
    std::string last_error;
    for (int attempt = 1; attempt <= std::max(1, options.attempts); ++attempt) {
      util::check_interrupted();
      bool resumed = file_size_or_zero(partial) > 0;
      crypto::Sha256 hasher;
      const bool conditional = known && &url == &options.urls.front();
      transfer_options.if_none_match = conditional ? known->etag : std::string();
      transfer_options.if_modified_since = conditional ? known->last_modified : std::string();
      TransferResult r = transfer(url, partial, hasher, transfer_options);
      if (r.outcome == TransferResult::Outcome::ok && r.not_modified && conditional) {
        std::error_code ec;
        fs::remove(partial, ec);
        fs::path blob = blob_path(known->sha256);
        return {blob, known->sha256, file_size_or_zero(blob), true, url};
      }
      if (r.outcome == TransferResult::Outcome::interrupted || util::interrupted()) {
        // Interrupted: the partial goes, so no unbounded garbage stays behind.
        std::error_code ec;
        fs::remove(partial, ec);
        util::check_interrupted();
      }
      if (r.outcome == TransferResult::Outcome::ok && options.size && r.size != *options.size) {
        r.outcome = TransferResult::Outcome::too_large;
        r.error = std::to_string(r.size) + " bytes, expected " + std::to_string(*options.size);
      }
      if (r.outcome == TransferResult::Outcome::too_large) {
        fs::remove(partial);
        last_error = r.error;
        break; // this source serves other content: try the next one
      }
      if (r.outcome == TransferResult::Outcome::ok) {
        std::string digest = hasher.hex_digest();
        if (!options.sha256 || digest == *options.sha256) {
          fs::path blob = blob_path(digest);
          publish(partial, blob);
          if (!url_record.empty() && &url == &options.urls.front()) {
            write_url_record(url_record, {url, digest, r.etag, r.last_modified});
          }
          return {blob, digest, r.size, false, url};
        }
        fs::remove(partial);
        last_error = "sha256 mismatch: expected " + *options.sha256 + ", got " + digest;
        if (resumed) {
          // The bytes kept from an earlier attempt may be what was wrong: try once afresh.
          if (options.notice) {
            options.notice(url + ": " + last_error + "; downloading again from the start");
          }
          continue;
        }
        break; // this source serves other content: try the next one
      }
      last_error = r.error;
      if (r.outcome == TransferResult::Outcome::permanent) {
        break;
      }
      if (attempt < options.attempts) {
        if (options.notice) {
          options.notice(url + ": " + r.error + "; retrying in " + std::to_string(delay.count()) + " ms");
        }
        std::this_thread::sleep_for(delay);
        delay *= 2;
      }
    }
    failures.push_back(url + ": " + last_error);
    // A partial file from one source must not be completed from another.
    std::error_code ec;
    fs::remove(partial, ec);
    if (options.notice && &url != &options.urls.back()) {
      options.notice(url + ": " + last_error + "; trying the next mirror");
    }
  }
  if (failures.size() == 1) {
    throw Error(first, failures.front().substr(first.size() + 2));
  }
  std::string all;
  for (const auto& f : failures) {
    all += (all.empty() ? "" : "; ") + f;
  }
  throw Error(first, "every source failed: " + all);
}

} // namespace kiln::fetch
