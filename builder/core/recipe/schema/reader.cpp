#include "core/recipe/schema/reader.hpp"

#include "core/crypto/sha256.hpp"
#include "core/recipe/schema.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <regex>

namespace kiln::recipe {

namespace fs = std::filesystem;

std::optional<std::uint64_t>
parse_size(const std::string& text)
{
  static const std::regex re(R"(\s*([0-9]+)\s*([KMGT]?)(i?B)?\s*)", std::regex::icase);
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  try {
    value = std::stoull(m[1].str());
  } catch (...) {
    return std::nullopt;
  }
  int shift = 0;
  if (m[2].length() > 0) {
    shift = 10 * static_cast<int>(std::string("KMGT").find(static_cast<char>(std::toupper(m[2].str()[0]))) + 1);
  }
  if (shift > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return std::nullopt;
  }
  return value << shift;
}

namespace detail {

namespace {

size_t
edit_distance(const std::string& a, const std::string& b)
{
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// How a scalar that is not what was asked for is shown: quoted, else its kind.
std::string
shown(const Value& v)
{
  return v.is_scalar() ? quote_token(v.scalar) : describe(v);
}

} // namespace

std::string
suggestion(const std::string& key, const std::vector<std::string>& known)
{
  std::string best;
  size_t best_distance = 3; // only close matches are worth suggesting
  for (const auto& candidate : known) {
    size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string
join(const std::vector<std::string>& items, const std::string& sep)
{
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : sep) + item;
  }
  return out;
}

fs::path
beside_recipe(const std::string& text, const Location& where)
{
  fs::path p = fs::path(text).is_absolute() ? fs::path(text) : fs::path(where.file).parent_path() / text;
  return p.lexically_normal();
}

MapReader::MapReader(const Value& map, std::string what, Diagnostics& diags)
  : m_map(map), m_what(std::move(what)), m_diags(diags)
{
  if (!map.is_mapping()) {
    diags.error(map.location, m_what + " must be a mapping, not " + describe(map));
    m_ok = false;
  }
}

const Value*
MapReader::get(const std::string& key)
{
  m_known.push_back(key);
  return m_ok ? m_map.find(key) : nullptr;
}

const Value*
MapReader::require(const std::string& key)
{
  const Value* v = get(key);
  if (v == nullptr && m_ok) {
    m_diags.error(m_map.location, m_what + ": missing required field '" + key + "'");
  }
  return v;
}

const Value*
MapReader::lookup(const std::string& key, bool required)
{
  return required ? require(key) : get(key);
}

void
MapReader::finish()
{
  if (!m_ok) {
    return;
  }
  for (const auto& [k, v] : m_map.entries) {
    if (std::find(m_known.begin(), m_known.end(), k.scalar) == m_known.end()) {
      m_diags.error(k.location,
                    "unknown key " + quote_token(k.scalar) + " in " + m_what + suggestion(k.scalar, m_known));
    }
  }
}

std::optional<std::string>
MapReader::string(const std::string& key, bool required)
{
  const Value* v = lookup(key, required);
  return v == nullptr ? std::nullopt : as_string(*v, key);
}

std::optional<std::string>
MapReader::as_string(const Value& v, const std::string& key)
{
  if (!v.is_scalar()) {
    m_diags.error(v.location, key + " must be a string, not " + describe(v));
    return std::nullopt;
  }
  return v.scalar;
}

std::optional<bool>
MapReader::boolean(const std::string& key)
{
  const Value* v = get(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->is_scalar() && !v->quoted && (v->scalar == "true" || v->scalar == "false")) {
    return v->scalar == "true";
  }
  m_diags.error(v->location, key + " must be true or false, not " + shown(*v));
  return std::nullopt;
}

std::optional<std::uint32_t>
MapReader::id(const std::string& key)
{
  const Value* v = get(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  static const std::regex digits("[0-9]{1,10}");
  if (v->is_scalar() && std::regex_match(v->scalar, digits)) {
    std::uint64_t n = std::stoull(v->scalar);
    if (n < 4294967295ULL) {
      return static_cast<std::uint32_t>(n);
    }
  }
  m_diags.error(v->location, key + " must be a whole number from 0 to 4294967294, not " + shown(*v));
  return std::nullopt;
}

std::optional<unsigned>
MapReader::number(const std::string& key, unsigned low, unsigned high)
{
  const Value* v = get(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  static const std::regex digits("[0-9]{1,6}");
  if (v->is_scalar() && std::regex_match(v->scalar, digits)) {
    unsigned n = static_cast<unsigned>(std::stoul(v->scalar));
    if (n >= low && n <= high) {
      return n;
    }
  }
  m_diags.error(v->location, key + " must be a whole number from " + std::to_string(low) + " to " +
                               std::to_string(high) + ", not " + shown(*v));
  return std::nullopt;
}

std::optional<std::string>
MapReader::one_of(const std::string& key, const std::vector<std::string>& allowed, bool required)
{
  auto s = string(key, required);
  if (s && std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
    m_diags.error(m_map.find(key)->location,
                  key + " must be one of " + join(allowed) + ", not " + quote_token(*s) + suggestion(*s, allowed));
    return std::nullopt;
  }
  return s;
}

std::vector<std::string>
MapReader::list(const std::string& key, bool required)
{
  const Value* v = lookup(key, required);
  return v == nullptr ? std::vector<std::string>{} : as_list(*v, key);
}

std::vector<std::string>
MapReader::as_list(const Value& v, const std::string& key)
{
  std::vector<std::string> out;
  if (v.is_scalar()) {
    out.push_back(v.scalar); // a single item may be written without brackets
  } else if (v.is_sequence()) {
    for (const auto& item : v.items) {
      if (item.is_scalar()) {
        out.push_back(item.scalar);
      } else {
        m_diags.error(item.location, key + " items must be strings, not " + describe(item));
      }
    }
  } else if (!v.is_null()) {
    m_diags.error(v.location, key + " must be a list of strings, not " + describe(v));
  }
  return out;
}

std::optional<unsigned>
MapReader::mode(const std::string& key)
{
  const Value* v = get(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  static const std::regex octal("0?[0-7]{3,4}");
  if (v->is_scalar() && std::regex_match(v->scalar, octal)) {
    return static_cast<unsigned>(std::stoul(v->scalar, nullptr, 8));
  }
  m_diags.error(v->location, key + " must be an octal mode such as 0644, not " + shown(*v));
  return std::nullopt;
}

std::optional<std::string>
MapReader::sha256(const std::string& key)
{
  auto s = string(key);
  if (s && !crypto::is_sha256_hex(*s)) {
    m_diags.error(m_map.find(key)->location, key + " must be 64 lower-case hex digits, not " + quote_token(*s) + " (" +
                                               std::to_string(s->size()) + " characters)");
    return std::nullopt;
  }
  return s;
}

std::optional<std::uint64_t>
MapReader::size(const std::string& key)
{
  auto s = string(key);
  if (!s) {
    return std::nullopt;
  }
  auto bytes = parse_size(*s);
  if (!bytes || *bytes == 0) {
    m_diags.error(m_map.find(key)->location,
                  key + " must be a size such as 4G, 512M or 1048576, not " + quote_token(*s));
    return std::nullopt;
  }
  return bytes;
}

std::optional<std::string>
MapReader::guest_path(const std::string& key, bool required)
{
  auto s = string(key, required);
  if (s && (s->empty() || (*s)[0] != '/')) {
    m_diags.error(m_map.find(key)->location, key + " must be an absolute path in the image, not " + quote_token(*s));
    return std::nullopt;
  }
  return s;
}

std::optional<std::string>
MapReader::local_file(const std::string& key, bool required)
{
  const Value* v = lookup(key, required);
  return v == nullptr ? std::nullopt : as_local_file(*v, key);
}

std::optional<std::string>
MapReader::as_local_file(const Value& v, const std::string& key)
{
  auto s = as_string(v, key);
  if (!s) {
    return std::nullopt;
  }
  fs::path p = beside_recipe(*s, v.location);
  if (!fs::is_regular_file(p)) {
    m_diags.error(v.location, key + ": no such file '" + p.string() + "'");
    return std::nullopt;
  }
  return p.string();
}

} // namespace detail

} // namespace kiln::recipe
