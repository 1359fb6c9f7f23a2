// The implicit "finalize" stage, last in the appliance: SELinux labels (when a step asked
// for them), the DC/OS checks of `kiln verify` (dcos:), sysprep, the package inventory
// and the kernel for PXE (both recorded in the layer), trim.
#pragma once

#include "core/manifest/manifest.hpp"
#include "image/edit/editor.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/stage.hpp"
#include "image/steps/context.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

class FinalizeStage : public Stage {
public:
  explicit FinalizeStage(const recipe::Plan& plan) : Stage("finalize", plan.finalize.key) {}
  LayerMeta run(StageRun& run) const override;
};

// The guest's packages (rpm or dpkg database), sorted by name.
std::vector<manifest::Package> package_inventory(edit::Editor& g, const steps::GuestInfo& guest);

// The kernel the image boots (edit::newest_kernel) and its initramfs, copied beside the
// layer `key`; none when the image has no kernel with an initramfs.
std::optional<KernelFiles> extract_kernel(edit::Editor& g, const LayerStore& layers, const std::string& key);

} // namespace kiln::build
