// What every recipe step gets: the guest to edit and what the build learnt about it.
#pragma once

#include "image/edit/editor.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <map>
#include <string>

namespace kiln::steps {

// What a build learns about the guest once (libguestfs inspection) and uses in many steps.
struct GuestInfo {
  std::string root; // inspection root device
  std::string distro; // centos, debian, ...
  std::string package_format; // rpm | deb
  std::string package_manager; // yum | dnf | apt
  int major_version = 0;
  // mountpoint -> device, as inspection found them (its order of mounting: shortest first).
  std::map<std::string, std::string> mounts;
};

struct StepContext {
  edit::Editor& g;
  const GuestInfo& guest;
  bool network = false; // the appliance has a network (recipe or --network)
  // What the user must see (one line each): an offline relabel that failed or fell back.
  std::function<void(const std::string&)> notice;
  // SOURCE_DATE_EPOCH of the build: the clock for what steps write into files' contents
  // (a new user's last password change in /etc/shadow). Unset: the guest's clock.
  std::optional<std::int64_t> source_date_epoch;
};

} // namespace kiln::steps
