// The packages step: repositories written as the guest's package manager reads them,
// then one script of the guest's own yum, dnf or apt, run in the appliance.
#pragma once

#include "core/recipe/model.hpp"
#include "image/steps/context.hpp"

#include <string>

namespace kiln::steps {

// Throws Error when the guest has no supported package manager ("zypper: not
// supported ...") or it fails ("yum failed (the appliance has no network): exit status
// 1: ...", the last lines of its output).
void run_packages(StepContext& ctx, const recipe::PackagesStep& step);

// The script run_packages runs; `staged` are the package files already uploaded,
// quoted, each preceded by a space.
std::string package_script(const StepContext& ctx, const recipe::PackagesStep& step, const std::string& staged);

} // namespace kiln::steps
