// The guest-wide work of the finalize stage: SELinux labels and sysprep.
#pragma once

#include "image/steps/context.hpp"

namespace kiln::steps {

// The identity resets of an immutable image (machine-id, SSH host keys, logs, caches,
// random seeds, temporary files, shell history, hostname).
void sysprep(StepContext& ctx);

// Labels every file with the guest's own SELinux policy (the guest's setfiles, else the
// appliance's); when neither can, leaves /.autorelabel so the first boot relabels. Does
// nothing for a guest without SELinux or with SELINUX=disabled.
void selinux_relabel(StepContext& ctx);

} // namespace kiln::steps
