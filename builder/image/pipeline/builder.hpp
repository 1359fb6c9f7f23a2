// The build pipeline, one way: plan -> resolved plan -> layers -> outputs.
//
//   resolve   remote inputs (a DC/OS bundle by URL) fetched and validated before any
//             image is touched; their digests complete the plan's keys (plan.hpp)
//   base      the image to start from (base.hpp)
//   stages    the recipe's stages, dcos and finalize in one appliance launch on top of
//             the deepest cached layer (engine.hpp, stage.hpp, finalize.hpp)
//   ab        layout: ab -- the whole-disk A/B image and the slot bundle (ab_layout.hpp)
//   publish   every output format, the bundle, the manifest (publish.hpp)
//
// Every stage result is a qcow2 layer in the cache named by its key in the resolved
// plan, with a typed record beside it (layer_store.hpp). Every cache entry and output
// appears by rename, never half-written.
#pragma once

#include "core/fetch/cache.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/options.hpp"
#include "image/pipeline/publish.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::build {

struct BuildResult {
  int launches = 0; // appliance launches this build made
  std::vector<std::string> reused; // stage names taken from the cache
  std::vector<std::string> built; // stage names run
  std::vector<OutputFile> outputs;
  std::filesystem::path manifest;
  bool outputs_up_to_date = false; // the output directory held these outputs already
  nlohmann::json packages; // [{name, version, arch}]
};

// Runs the build. Throws Error on any failure, after removing every partial output
// and leaving the cache as it was (except complete, verified entries).
BuildResult build(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache,
                  const BuildOptions& options);

} // namespace kiln::build
