// The engine: runs a resolved plan's appliance stages (stage.hpp) on top of the deepest
// layer already in the store, in ONE appliance launch on a working overlay. After each
// stage the guest's filesystems are unmounted (so the guest flushed everything) and the
// overlay is copied into the store as that stage's layer, then its record is written.
// A rebuild with nothing changed launches nothing.
#pragma once

#include "core/fetch/cache.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/options.hpp"

#include <filesystem>

namespace kiln::build {

// Returns the finalize layer and its record, with the launches made and the stages run
// or reused.
Built run_stages(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache, const LayerStore& layers,
                 const BuildOptions& options, const std::filesystem::path& scratch);

} // namespace kiln::build
