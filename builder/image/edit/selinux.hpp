// SELinux labels of files kiln writes into a guest, with the guest's own policy.
#pragma once

#include "image/edit/editor.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::edit {

struct SelinuxConfig {
  std::string mode = "enforcing"; // SELINUX= (enforcing | permissive | disabled)
  std::string type = "targeted"; // SELINUXTYPE=
  // The policy's file contexts: /etc/selinux/TYPE/contexts/files/file_contexts.
  std::string file_contexts() const;
};

// Parses /etc/selinux/config text (SELinux's own defaults for absent keys).
SelinuxConfig parse_selinux_config(const std::string& text);

// The guest's configuration; nullopt when the guest has no /etc/selinux/config.
std::optional<SelinuxConfig> read_selinux_config(Editor& g);

// Labels `paths` (each recursively) with `specfile`: the guest's own setfiles first (run
// chrooted in the appliance, whose kernel has SELinux off, so labels are plain xattrs),
// then the appliance's. False when neither could, so the caller can leave /.autorelabel
// for the first boot. `log` hears why the guest's setfiles failed.
bool label_paths(Editor& g, const std::string& specfile, const std::vector<std::string>& paths,
                 const std::function<void(const std::string&)>& log);

} // namespace kiln::edit
