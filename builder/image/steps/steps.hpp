// Running recipe steps inside a mounted guest through the editor interface. Every step
// is done offline: files are written through the editor, services are enabled as the
// symlinks systemctl would make, packages are installed with the guest's own package
// manager run in the appliance. A failing step throws Error naming the step.
#pragma once

#include "core/recipe/model.hpp"
#include "image/steps/context.hpp"

namespace kiln::steps {

// Runs one step. Throws Error("KIND step at FILE:LINE:COL", reason) on failure.
void run_step(StepContext& ctx, const recipe::Step& step);

} // namespace kiln::steps
