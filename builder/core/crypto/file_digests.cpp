#include "core/crypto/file_digests.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <sys/stat.h>
#include <vector>

namespace kiln::crypto {

namespace fs = std::filesystem;

namespace {

using nlohmann::json;

constexpr std::uintmax_t k_store_limit = 4u << 20;
constexpr int k_store_version = 1;

class DirectDigests final : public FileDigests {
public:
  std::string sha256(const fs::path& path) override { return sha256_file(path); }
};

std::int64_t
ns(const struct timespec& t)
{
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

} // namespace

FileDigests&
direct_digests()
{
  static DirectDigests digests;
  return digests;
}

CachedDigests::CachedDigests(fs::path store) : m_store(std::move(store))
{
  const std::optional<std::string> text = util::read_file_within(m_store, k_store_limit);
  if (!text) {
    return;
  }
  try {
    json j = json::parse(*text);
    if (j.at("version").get<int>() != k_store_version) {
      return;
    }
    for (const auto& [key, value] : j.at("files").items()) {
      std::string digest = value.at("sha256").get<std::string>();
      if (is_sha256_hex(digest)) {
        m_entries[key] = {std::move(digest), value.at("used").get<std::int64_t>()};
      }
    }
  } catch (const std::exception&) {
    m_entries.clear(); // damaged: every file is hashed again
  }
}

std::string
CachedDigests::sha256(const fs::path& path)
{
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(path.string(), errno_text(errno));
  }
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec);
  const std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
                          std::to_string(st.st_size) + ":" + std::to_string(ns(st.st_mtim)) + ":" +
                          std::to_string(ns(st.st_ctim)) + ":" + (ec ? path : absolute).string();
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  auto it = m_entries.find(key);
  if (it != m_entries.end()) {
    if (it->second.used != now) {
      it->second.used = now;
      m_dirty = true;
    }
    return it->second.sha256;
  }
  std::string digest = sha256_file(path);
  ++m_hashed;
  // Racily clean: changed so recently that a change in the same tick would not show.
  const std::int64_t changed = std::max(ns(st.st_mtim), ns(st.st_ctim)) / 1'000'000'000;
  if (now - changed >= k_racy_seconds) {
    m_entries[key] = {digest, now};
    m_dirty = true;
  }
  return digest;
}

void
CachedDigests::save() noexcept
{
  if (!m_dirty) {
    return;
  }
  try {
    std::vector<std::pair<std::string, Entry>> entries(m_entries.begin(), m_entries.end());
    if (entries.size() > k_max_entries) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto& a, const auto& b) { return a.second.used > b.second.used; });
      entries.resize(k_max_entries);
    }
    json files = json::object();
    for (const auto& [key, e] : entries) {
      files[key] = {{"sha256", e.sha256}, {"used", e.used}};
    }
    fs::create_directories(m_store.parent_path());
    util::write_file_atomic(m_store, json{{"version", k_store_version}, {"files", files}}.dump() + "\n");
    m_dirty = false;
  } catch (...) {
    // A cache: losing it costs a rehash.
  }
}

} // namespace kiln::crypto
