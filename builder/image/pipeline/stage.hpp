// A stage of the build as the engine sees it: a name, a key from the resolved plan, and
// a run on the mounted guest that returns what its layer records. The engine
// (engine.hpp) finds the deepest cached stage, launches the appliance once and runs the
// rest in order, snapshotting each stage's layer; it fills in the record's key, name,
// recipe and guest.
//   recipe stages  the recipe's steps (image/steps)
//   dcos           the DC/OS bundle staged for the first boot (dcos_stage.hpp)
//   finalize       relabel, DC/OS checks, sysprep, inventory, kernel, trim (finalize.hpp)
// The A/B stage runs after them in a launch of its own (ab_layout.hpp).
#pragma once

#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/options.hpp"
#include "image/steps/context.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::build {

// What a stage runs with: the launched appliance (through the editor for what the
// steps do, the handle for what only libguestfs can: inspection, trim, DC/OS checks).
struct StageRun {
  gfs::Handle& g;
  steps::StepContext& ctx;
  const recipe::Recipe& recipe;
  const LayerStore& layers;
  const BuildOptions& options;
  const std::filesystem::path& scratch;
};

class Stage {
public:
  Stage(std::string name, std::string key) : m_name(std::move(name)), m_key(std::move(key)) {}
  virtual ~Stage() = default;
  const std::string& name() const { return m_name; }
  const std::string& key() const { return m_key; }
  // Whether a step of this stage needs the appliance's network.
  virtual bool needs_network() const { return false; }
  // Runs on the mounted guest; returns what the stage's layer records.
  virtual LayerMeta run(StageRun& run) const = 0;

private:
  std::string m_name;
  std::string m_key;
};

// The stages of a resolved plan that run in the appliance, in order: the recipe's,
// dcos (with dcos:), finalize.
std::vector<std::unique_ptr<Stage>> appliance_stages(const recipe::Recipe& recipe, const recipe::Plan& plan);

} // namespace kiln::build
