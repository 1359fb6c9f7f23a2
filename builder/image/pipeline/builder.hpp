// The build pipeline: a recipe's stages run in the libguestfs appliance on qcow2
// layers kept in the cache, then the final layer is converted into every output.
//
// Layers: the base is a cached blob (a fetched or local image) or a disk made from a
// root filesystem tar (mmdebstrap). Every stage result is a qcow2 file in the cache,
// named by the stage key from the plan, whose backing chain ends at the base. A build
// finds the deepest stage already cached and runs the remaining stages in ONE appliance
// launch on a working overlay; after each stage the filesystems are unmounted (so the
// guest flushes everything) and the overlay is copied into the cache as that stage's
// layer. A final implicit stage, "finalize" (sysprep, package inventory, kernel for PXE,
// trim), is cached the same way, so a rebuild with nothing changed launches nothing.
// Every cache entry and output appears by rename, never half-written.
#pragma once

#include "core/fetch/cache.hpp"
#include "core/manifest/manifest.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

struct BuildOptions {
  std::filesystem::path output_dir;
  std::vector<std::string> formats; // empty: the recipe's
  bool no_cache = false; // build every layer afresh; the layer cache is neither read nor written
  bool network = false; // appliance network for every step (--network)
  std::optional<std::string> sign_key; // sign the manifest with this Ed25519 key
  std::function<void(const std::string&)> status; // progress lines: stages, steps, outputs
  std::function<void(const std::string&)> log; // appliance and tool messages, phase times (-v)
  // What the user must see even without -v: warnings, the KVM fallback, an SELinux
  // relabel that fell back to the first boot. One line each; unset: into the log.
  std::function<void(const std::string&)> notice;
  std::function<void(std::uint64_t, std::uint64_t)> progress;
};

struct OutputFile {
  std::string name; // file name in the output directory
  std::string role; // image, bmap, kernel, initramfs, ipxe, manifest
  std::string format;
  std::string sha256;
  std::uint64_t size = 0;
};

struct BuildResult {
  int launches = 0; // appliance launches this build made
  std::vector<std::string> reused; // stage names taken from the cache
  std::vector<std::string> built; // stage names run
  std::vector<OutputFile> outputs;
  std::filesystem::path manifest;
  nlohmann::json packages; // [{name, version, arch}]
};

// Runs the build. Throws Error on any failure, after removing every partial output
// and leaving the cache as it was (except complete, verified entries).
// Where notices go: options.notice, else the log (empty when neither is set).
std::function<void(const std::string&)> notice_sink(const BuildOptions& options);

BuildResult build(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache,
                  const BuildOptions& options);

// The key of the implicit final stage ("finalize"): the last stage's key, sysprep and trim (plan.hpp).
using recipe::finalize_key;

// The manifest's recipe part, the same for the outputs' manifest and the slot bundle's:
// name, versions, recipe digest, inputs (kiln-node by its VERSION line and tree digest),
// stage keys up to finalize, the image's packages.
manifest::Manifest manifest_base(const recipe::Recipe& recipe, const recipe::Plan& plan,
                                 const std::vector<manifest::Package>& packages, const std::string& name);

} // namespace kiln::build
