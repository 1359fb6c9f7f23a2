// The implicit "dcos" stage of a recipe with dcos: (after the recipe's stages, before
// finalize, cached by key like any stage) and the verify that ends such a build.
//
//   prepare  before any image is touched: fetch the bundle (URL: file by file into the
//            cache) and validate it; the resolved plan carries its digest and key
//   run      in the appliance: stage exactly what the installer reads into
//            /opt/dcos_install_tmp, the default role, the first-boot script and unit
//   verify   in the appliance, on the finished image: the checks of `kiln verify`
#pragma once

#include "core/fetch/cache.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/options.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/steps/context.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace kiln::build::dcos_stage {

// Fetches (a URL: file by file into the cache) and validates the bundle; returns its
// digest, which resolves the plan (recipe::resolve_plan). Throws Error("FILE: reason")
// for a bad bundle. Writes SCRATCH/dcos-bundle.json.
recipe::Resolution prepare(const recipe::Recipe& recipe, const recipe::Plan& planned, fetch::Cache& cache,
                           const std::filesystem::path& scratch, const BuildOptions& options);

void run(steps::StepContext& ctx, const recipe::Recipe& recipe, const std::filesystem::path& scratch);

// Runs the checks for the recipe's role on the mounted guest; returns them as JSON
// when all pass, throws Error naming the failed checks otherwise.
nlohmann::json verify(gfs::Handle& g, const steps::GuestInfo& guest, const recipe::Recipe& recipe,
                      const BuildOptions& options);

} // namespace kiln::build::dcos_stage
