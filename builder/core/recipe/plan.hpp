// The build plan of a recipe: its inputs (with digests) and its stages with their
// cache keys. A stage key is the sha256 of the parent key, the stage's canonical
// definition (JSON of the typed model, so formatting does not matter) and the
// digest of every local input the stage reads. Computing it needs no network:
// remote inputs are identified by their pinned digest.
#pragma once

#include "core/recipe/model.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kiln::recipe {

struct Input {
  std::string kind;   // base, file, unit, overlay, package, firstboot
  std::string source; // URL or absolute local path
  std::string sha256; // empty for an unpinned remote base
  std::vector<std::string> mirrors;
};

struct PlannedStage {
  std::string name;
  std::string key;
  std::vector<Input> inputs;
  nlohmann::json definition; // canonical
};

struct Plan {
  std::string recipe_digest; // sha256 of the canonical resolved recipe
  std::string base_key;
  std::vector<Input> inputs; // all of them, base first
  std::vector<PlannedStage> stages;
};

// Computes the plan; hashes local input files (throws Error if one vanished).
Plan make_plan(const Recipe& recipe);

// Canonical JSON of one step / the base.
nlohmann::json to_json(const Step& step);
nlohmann::json to_json(const BaseImage& base);

// {"recipe": ..., "inputs": [...], "stages": [...]} as printed by `kiln plan --json`.
nlohmann::json plan_json(const Recipe& recipe, const Plan& plan);

} // namespace kiln::recipe
