// The schema's shared reading helpers: MapReader (the keys of one mapping, typed, with
// every unknown key reported and a close known one suggested), suggestions and lists.
#pragma once

#include "core/recipe/value.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::recipe::detail {

// " (did you mean 'KNOWN'?)" for the known word closest to `key`, or "" if none is close.
std::string suggestion(const std::string& key, const std::vector<std::string>& known);

// The items joined by `sep`.
std::string join(const std::vector<std::string>& items, const std::string& sep = ", ");

// A path as written in a recipe: absolute, or relative to the file that names it (normalized).
std::filesystem::path beside_recipe(const std::string& text, const Location& where);

// Reads the keys of one mapping. Every key asked for is remembered; finish()
// reports the rest as unknown. A missing mapping reports once and yields nothing.
class MapReader {
public:
  MapReader(const Value& map, std::string what, Diagnostics& diags);

  bool ok() const { return m_ok; }
  const Location& location() const { return m_map.location; }
  Diagnostics& diags() { return m_diags; }

  const Value* get(const std::string& key);
  const Value* require(const std::string& key);
  void finish();

  // Typed accessors: each reports a type error and returns nullopt.
  std::optional<std::string> string(const std::string& key, bool required = false);
  std::optional<std::string> as_string(const Value& v, const std::string& key);
  std::optional<bool> boolean(const std::string& key);
  std::optional<std::uint32_t> id(const std::string& key);
  std::optional<std::string> one_of(const std::string& key, const std::vector<std::string>& allowed,
                                    bool required = false);
  std::vector<std::string> list(const std::string& key, bool required = false);
  std::vector<std::string> as_list(const Value& v, const std::string& key);
  std::optional<unsigned> mode(const std::string& key);
  std::optional<std::string> sha256(const std::string& key);
  std::optional<std::uint64_t> size(const std::string& key);
  // A whole number from `low` to `high`, written as a plain scalar.
  std::optional<unsigned> number(const std::string& key, unsigned low, unsigned high);
  // An absolute guest path.
  std::optional<std::string> guest_path(const std::string& key, bool required = false);
  // A local file on the build host, relative to the recipe file that names it.
  std::optional<std::string> local_file(const std::string& key, bool required = false);
  std::optional<std::string> as_local_file(const Value& v, const std::string& key);

private:
  const Value* lookup(const std::string& key, bool required);

  const Value& m_map;
  std::string m_what;
  Diagnostics& m_diags;
  bool m_ok = true;
  std::vector<std::string> m_known;
};

} // namespace kiln::recipe::detail
