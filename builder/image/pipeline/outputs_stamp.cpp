#include "image/pipeline/outputs_stamp.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace kiln::build {

namespace {

using nlohmann::json;

constexpr std::uintmax_t k_stamp_limit = 1u << 20;
constexpr int k_stamp_version = 1;

} // namespace

std::string
outputs_key(const manifest::Manifest& base, const std::vector<std::string>& formats, bool compress,
            const std::string& signing_key_digest, std::optional<std::int64_t> epoch)
{
  json j = {{"stamp", k_stamp_version},
            {"manifest", manifest::to_json(base)},
            {"formats", formats},
            {"compress", compress},
            {"signing_key", signing_key_digest},
            {"source_date_epoch", epoch ? json(*epoch) : json(nullptr)},
            {"kiln", KILN_VERSION}};
  return crypto::sha256_hex(manifest::canonical_text(j));
}

fs::path
stamp_path(const fs::path& dir, const std::string& stem)
{
  return dir / ("." + stem + ".kiln-outputs.json");
}

std::optional<StampedFile>
stat_file(const fs::path& dir, const std::string& name)
{
  struct stat st {};
  if (::lstat((dir / name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return std::nullopt;
  }
  StampedFile f;
  f.name = name;
  f.size = static_cast<std::uint64_t>(st.st_size);
  f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  f.inode = static_cast<std::uint64_t>(st.st_ino);
  return f;
}

std::optional<OutputsStamp>
read_stamp(const fs::path& dir, const std::string& stem)
{
  const fs::path path = stamp_path(dir, stem);
  const std::optional<std::string> text = util::read_file_within(path, k_stamp_limit);
  if (!text) {
    return std::nullopt;
  }
  try {
    json j = json::parse(*text);
    if (j.at("version").get<int>() != k_stamp_version) {
      return std::nullopt;
    }
    OutputsStamp stamp;
    stamp.key = j.at("key").get<std::string>();
    for (const auto& f : j.at("files")) {
      stamp.files.push_back({f.at("name").get<std::string>(), f.at("size").get<std::uint64_t>(),
                             f.at("mtime_ns").get<std::int64_t>(), f.at("inode").get<std::uint64_t>()});
    }
    return stamp;
  } catch (const std::exception&) {
    return std::nullopt; // damaged: the outputs are written again
  }
}

bool
up_to_date(const OutputsStamp& stamp, const fs::path& dir, const std::string& key)
{
  if (stamp.key != key || stamp.files.empty()) {
    return false;
  }
  for (const auto& f : stamp.files) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || stat_file(dir, f.name) != f) {
      return false;
    }
  }
  return true;
}

void
write_stamp(const fs::path& dir, const std::string& stem, const std::string& key, const std::vector<std::string>& names)
{
  json files = json::array();
  for (const auto& name : names) {
    std::optional<StampedFile> f = stat_file(dir, name);
    if (!f) {
      throw Error((dir / name).string(), "missing right after it was published");
    }
    files.push_back({{"name", f->name}, {"size", f->size}, {"mtime_ns", f->mtime_ns}, {"inode", f->inode}});
  }
  json j = {{"version", k_stamp_version}, {"key", key}, {"files", files}};
  util::write_file_atomic(stamp_path(dir, stem), j.dump(1) + "\n");
}

} // namespace kiln::build
