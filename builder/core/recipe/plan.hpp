// The build plan of a recipe: its inputs (with digests) and its stages with their
// cache keys. A stage key is the sha256 of the parent key, the stage's canonical
// definition (JSON of the typed model, so formatting does not matter) and the
// digest of every local input the stage reads. Computing it needs no network:
// remote inputs are identified by their pinned digest.
#pragma once

#include "core/crypto/file_digests.hpp"
#include "core/recipe/model.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::recipe {

struct Input {
  std::string kind; // base, file, unit, overlay, package, firstboot, kiln-node
  std::string source; // URL or absolute local path
  std::string sha256; // empty for an unpinned remote base
  std::vector<std::string> mirrors;
  std::string version; // kiln-node: the artifact's VERSION line
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
  std::vector<Input> inputs; // all of them, base first (kiln-node last, for layout: ab)
  std::vector<PlannedStage> stages;
  // The implicit stage after the last one: sysprep, inventory, trim (and the relabel and
  // the DC/OS checks). Its key is empty while a parent is resolved at build.
  PlannedStage finalize;
  // layout: ab -- the A/B stage after finalize: its definition (the ab: settings, image
  // name, relabel), its one input (the kiln-node artifact) and its key (empty while a
  // parent is resolved at build).
  std::optional<PlannedStage> ab;
  // Every key known: nothing is left to resolve at build.
  bool resolved() const;
};

// What only a build can learn (it goes to the network): the digest of a DC/OS bundle
// given by URL, from the bundle fetched and validated.
struct Resolution {
  std::string dcos_bundle_sha256;
};

struct PlanOptions {
  // The kiln-node artifact for a layout: ab recipe without ab: {node: ...}; unset: the
  // running kiln's own (node_artifact.hpp).
  std::optional<std::filesystem::path> node_artifact;
  // How local input files are hashed (a base image by path, files and packages steps
  // read); null: crypto::direct_digests(). kiln build passes the cache's CachedDigests.
  crypto::FileDigests* digests = nullptr;
  // SOURCE_DATE_EPOCH (util/source_date_epoch.hpp): part of the base key when set, as
  // it decides a bootstrapped base's bytes (mmdebstrap honours it).
  std::optional<std::int64_t> source_date_epoch;
};

// The key of a planned stage: sha256 of the parent key, its definition and its inputs' digests.
std::string stage_key(const std::string& parent, const PlannedStage& stage);

// Computes the plan and every stage key: the recipe's stages, dcos, finalize and ab.
// Hashes local input files (throws Error if one vanished). A recipe with dcos: gets an
// implicit last stage "dcos"; for a bundle given by URL its input digest and the keys
// from the dcos stage on stay empty ("resolved at build": plan never goes to the network).
Plan make_plan(const Recipe& recipe, const PlanOptions& options = {});

// Every planned stage in the order a build runs them: the recipe's, dcos, finalize, ab.
std::vector<const PlannedStage*> stages_in_order(const Plan& plan);

// The resolved plan: `planned` with what the build learnt filled in and every key after
// it computed. A build resolves its plan once, before any launch; nothing changes it
// afterwards. Throws Error when something stays unresolved.
Plan resolve_plan(const Plan& planned, const Resolution& resolution);
// Whether the recipe asks for SELinux labels (a selinux step with relabel).
bool wants_relabel(const Recipe& recipe);

// Canonical JSON of one step / the base.
nlohmann::json to_json(const Step& step);
nlohmann::json to_json(const BaseImage& base);
// Canonical JSON of the A/B layout settings (part of the A/B stage's key).
nlohmann::json to_json(const AbLayout& ab);

// {"recipe": ..., "inputs": [...], "stages": [...]} as printed by `kiln plan --json`.
nlohmann::json plan_json(const Recipe& recipe, const Plan& plan);

} // namespace kiln::recipe
