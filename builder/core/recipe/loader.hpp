// Loading a recipe: read the file and its `extends` chain, merge, substitute
// variables, validate into the typed model. All problems are collected and
// reported together (RecipeError); nothing is fetched or written here.
#pragma once

#include "core/recipe/model.hpp"

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace kiln::recipe {

struct LoadOptions {
  // `--set name=value`, applied over the recipe's `vars:`.
  std::map<std::string, std::string> set;
  // Accept a remote base without sha256 (`--allow-unpinned`).
  bool allow_unpinned = false;
  // Extra directories searched for `overlay: NAME` before the ones found next to the recipe.
  std::vector<std::filesystem::path> overlay_dirs;
};

// Loads, resolves and validates the recipe at `path`. Throws RecipeError listing every
// problem, or Error when the file itself cannot be read.
Recipe load_recipe(const std::filesystem::path& path, const LoadOptions& options = {});

// Parses "name=value" (for --set); throws UsageError on a malformed pair.
std::pair<std::string, std::string> parse_assignment(const std::string& text);

// Merges `child` over `parent` with kiln's extends rules: `vars` merge key by key,
// `stages` merge by name (a child stage replaces the parent's stage of the same name
// in place, new stages are appended), any other key given by the child replaces the
// parent's. Exposed for tests.
Value merge_recipes(const Value& parent, const Value& child);

// Replaces ${name} in every scalar of `value` (not inside `vars`); `$${` stays a literal
// `${`. Undefined names and malformed references are reported to `diags`; a name in
// `required` (declared without a value, name -> declaration) is reported as required.
// `used`, when given, collects every name referred to.
void substitute(Value& value, const std::map<std::string, std::string>& vars, Diagnostics& diags,
                const std::map<std::string, Location>& required = {}, std::set<std::string>* used = nullptr);

} // namespace kiln::recipe
