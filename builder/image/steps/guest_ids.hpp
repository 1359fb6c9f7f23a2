// Users and groups by name in the guest's own /etc/passwd and /etc/group.
#pragma once

#include "image/edit/editor.hpp"

#include <cstdint>
#include <string>

namespace kiln::steps {

// uid/gid of a user or group name in the guest (numbers pass through). Throws when absent.
std::uint32_t guest_uid(edit::Editor& g, const std::string& user);
std::uint32_t guest_gid(edit::Editor& g, const std::string& group);

} // namespace kiln::steps
