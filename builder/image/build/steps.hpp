// Running recipe steps inside a mounted guest through the libguestfs wrapper. Every
// step is done offline: files are written through the API, services are enabled as
// the symlinks systemctl would make, packages are installed with the guest's own
// package manager run in the appliance. A failing step throws Error naming the step.
#pragma once

#include "core/recipe/model.hpp"
#include "image/guestfs/guestfs.hpp"

#include <functional>
#include <map>
#include <string>

namespace kiln::build {

// What a build learns about the guest once and uses in many steps.
struct GuestInfo {
  std::string root;               // inspection root device
  std::string distro;             // centos, debian, ...
  std::string package_format;     // rpm | deb
  std::string package_manager;    // yum | dnf | apt
  int major_version = 0;
};

struct StepContext {
  gfs::Handle& g;
  const GuestInfo& guest;
  bool network = false;           // the appliance has a network (recipe or --network)
  std::function<void(const std::string&)> log;
};

// Runs one step. Throws Error("STEP at FILE:LINE", reason) on failure.
void run_step(StepContext& ctx, const recipe::Step& step);

// The identity resets of an immutable image (machine-id, SSH host keys, logs, caches,
// random seeds, temporary files, shell history, hostname).
void sysprep(StepContext& ctx);

// Labels every file with the guest's own SELinux policy (the guest's setfiles, else the
// appliance's); when neither can, leaves /.autorelabel so the first boot relabels. Does
// nothing for a guest without SELinux or with SELINUX=disabled.
void selinux_relabel(StepContext& ctx);

// uid/gid of a user or group name in the guest's /etc/passwd or /etc/group (numbers pass through).
std::uint32_t guest_uid(gfs::Handle& g, const std::string& user);
std::uint32_t guest_gid(gfs::Handle& g, const std::string& group);

// Enables a unit the way `systemctl enable` would: symlinks for WantedBy=, RequiredBy=,
// Alias= and Also= from its [Install] section. Throws when the unit does not exist.
void enable_unit(gfs::Handle& g, const std::string& unit);
void disable_unit(gfs::Handle& g, const std::string& unit);
void mask_unit(gfs::Handle& g, const std::string& unit);

// Edits key=value lines: replaces the first line assigning `key` (commented-out
// assignments too), else appends. Exposed for unit tests.
std::string set_key_value(const std::string& text, const std::string& key, const std::string& value,
                          const std::string& separator);
// Replaces every line matching `regex` (POSIX extended) with `line`; appends `line`
// when nothing matched.
std::string replace_lines(const std::string& text, const std::string& regex, const std::string& line);
// `each:` with a match: `lines` take the place of the first line matching `regex`, every
// other matching line goes; appended when nothing matched.
std::string replace_block(const std::string& text, const std::string& regex, const std::vector<std::string>& lines);
// `each:` without a match: appends the lines the text does not hold yet.
std::string append_missing(const std::string& text, const std::vector<std::string>& lines);

// Parses [Install] keys of a unit file: key -> values (space-separated lists merged).
std::map<std::string, std::vector<std::string>> unit_install_section(const std::string& text);

} // namespace kiln::build
