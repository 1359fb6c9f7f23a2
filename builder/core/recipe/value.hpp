// A YAML document as a tree that remembers where every node came from, so that
// errors found after `extends` merging and variable substitution still point at
// FILE:LINE:COL of the text that caused them.
#pragma once

#include "core/util/error.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::recipe {

struct Location {
  std::string file;
  int line = 0; // 1-based; 0 when unknown
  int column = 0; // 1-based

  // "FILE:LINE:COL", or FILE alone when the position is unknown.
  std::string str() const;
};

struct Diagnostic {
  Location location;
  std::string message;

  std::string str() const { return location.str() + ": " + message; }
};

// Collects every problem found in a recipe; processing stops at checkpoints.
class Diagnostics {
public:
  void error(const Location& location, std::string message);
  bool empty() const noexcept { return m_items.empty(); }
  const std::vector<Diagnostic>& items() const noexcept { return m_items; }
  // Throws RecipeError with everything collected so far, if anything.
  void checkpoint() const;
  // Drops the problems from index `first` on that sit at one of `at`: the echoes of a
  // problem already reported there (a value that could not be resolved is also invalid).
  void drop_echoes(size_t first, const std::vector<Location>& at);

private:
  std::vector<Diagnostic> m_items;
};

// Thrown with every problem of a recipe; exit status 2.
class RecipeError : public MultiLineError {
public:
  explicit RecipeError(std::vector<Diagnostic> items);
  const char* what() const noexcept override { return m_what.c_str(); }
  std::vector<std::string> lines() const override;
  const std::vector<Diagnostic>& items() const noexcept { return m_items; }

private:
  std::vector<Diagnostic> m_items;
  std::string m_what;
};

struct Value {
  enum class Kind { null, scalar, sequence, mapping };

  Kind kind = Kind::null;
  std::string scalar;
  bool quoted = false; // a quoted scalar is always a string, never a number or bool
  std::vector<Value> items;
  std::vector<std::pair<Value, Value>> entries; // mapping: key (a scalar) and value, in file order
  Location location;

  bool is_null() const noexcept { return kind == Kind::null; }
  bool is_scalar() const noexcept { return kind == Kind::scalar; }
  bool is_sequence() const noexcept { return kind == Kind::sequence; }
  bool is_mapping() const noexcept { return kind == Kind::mapping; }

  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Sets or replaces `key` in a mapping.
  void set(Value key, Value value);

  static Value make_scalar(std::string text, Location location = {});
  static Value make_mapping(Location location = {});

  // Plain JSON (scalars as strings), for printing the resolved recipe.
  nlohmann::json to_json() const;
  // Block-style YAML text.
  std::string to_yaml() const;
};

// Bounds of a recipe file: its size, the nodes it expands to (aliases included, so an
// alias bomb stops early) and its nesting depth.
inline constexpr std::size_t k_max_recipe_bytes = 1 << 20;
inline constexpr std::size_t k_max_recipe_nodes = 100000;
inline constexpr int k_max_recipe_depth = 64;

// Parses a YAML file into a Value. Syntax errors, duplicate keys, non-scalar keys and
// exceeded bounds go to `diags`; the result is then null or partial.
Value load_yaml_file(const std::filesystem::path& path, Diagnostics& diags);
// The same for text in memory; `name` is used in locations.
Value load_yaml_text(const std::string& text, const std::string& name, Diagnostics& diags);

// Human name of a node kind for messages: "a mapping", "a list", "a scalar", "nothing".
std::string describe(const Value& value);

// `text` for a message, in quotes: its first token only (letters, digits, '_', '.', '-',
// '/', ':'), at most 40 characters, "..." when cut, so an error about a foreign file
// (extends: /etc/shadow) never echoes its lines.
std::string quote_token(std::string_view text);

} // namespace kiln::recipe
