// The engine: runs a resolved plan's appliance stages (stage.hpp) on top of the deepest
// layer already in the store, in ONE appliance launch on a working overlay. After each
// stage the guest's filesystems are unmounted (so the guest flushed everything) and the
// overlay is copied into the store as that stage's layer, then its record is written.
// A rebuild with nothing changed launches nothing. Work that follows the last stage and
// needs an appliance of its own (the A/B stage) can share the launch: a SharedLaunch adds
// its drives before the launch and runs once the finalize layer is stored.
#pragma once

#include "core/fetch/cache.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/options.hpp"

#include <filesystem>
#include <string>

namespace kiln::gfs {
class Handle;
}

namespace kiln::build {

// Work that joins the launch of the stages when they run. add_drives() comes before the
// launch (the working overlay is drive 0, at the size the finalize layer will have); run()
// comes after the finalize layer and its record are stored, with the guest's file systems
// unmounted, and ends the launch (the handle is not used afterwards).
class SharedLaunch {
public:
  virtual ~SharedLaunch() = default;
  virtual void add_drives(gfs::Handle& g, const std::filesystem::path& working) = 0;
  // `guest`: the finalized guest (drive 0) as inspected or recorded.
  virtual void run(gfs::Handle& g, const steps::GuestInfo& guest, const Built& finalized) = 0;
};

// Returns the finalize layer and its record, with the launches made and the stages run
// or reused. `after` (may be null) shares the launch when one is made; whether it ran is
// its own business (a rebuild with every stage cached launches nothing).
Built run_stages(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache, const LayerStore& layers,
                 const BuildOptions& options, const std::filesystem::path& scratch, SharedLaunch* after = nullptr);

} // namespace kiln::build
