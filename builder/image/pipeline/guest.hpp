// What the build knows about the guest: found once by libguestfs inspection (the
// operating system, its package manager, its file systems and where they mount), then
// kept in every layer's record, so a launch on top of a cached layer mounts the guest by
// the record instead of inspecting it again (a few seconds per launch under TCG, more
// when another disk shares the launch).
#pragma once

#include "image/guestfs/guestfs.hpp"
#include "image/steps/context.hpp"

#include <optional>
#include <string>

namespace kiln::build {

// Inspects the launched appliance's drives; exactly one operating system must be there.
// `subject` names the image in errors.
steps::GuestInfo inspect_guest(gfs::Handle& g, const std::string& subject);

// `known` when it carries the root and mount points (layers of older kilns do not), else
// inspection.
steps::GuestInfo known_or_inspected(gfs::Handle& g, const std::optional<steps::GuestInfo>& known,
                                    const std::string& subject);

} // namespace kiln::build
