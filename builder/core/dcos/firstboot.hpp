// The first-boot install of a DC/OS node image: a oneshot unit (kiln-dcos-install.service)
// running a bash script that picks the role and runs the pre-staged dcos_install.sh once.
// Role: kiln.dcos_role= on the kernel command line, else /etc/kiln/dcos-role, else the
// recipe's default (baked into the script). The installer runs with --no-block-dcos-setup
// and the script then waits, bounded, for dcos-setup.service's result: the stamp means
// DC/OS set itself up; a failure of the installer or of dcos-setup (or a timeout) leaves
// the marker with the exit status and the log's tail (paths in core/slots/abi.hpp). The
// script writes the log file itself, not through the journal (the installer restarts
// journald).
//
// The script honours $KILN_ROOT as a prefix for every path it touches, so tests run it
// for real with bash under a fake root (KILN_DCOS_SETUP_TIMEOUT and KILN_DCOS_POLL_INTERVAL
// shorten the wait there); on a node they are unset.
#pragma once

#include "core/dcos/role.hpp"
#include <string>

namespace kiln::dcos {

// Where the script lives in the image.
inline constexpr const char* k_firstboot_script = "/usr/libexec/kiln/dcos-install";

// The script's bounds, and the unit's TimeoutStartSec past both (with room for the
// journal capture and the marker).
inline constexpr int k_installer_timeout_s = 900; // dcos_install.sh: preflight, journald and docker restarts
inline constexpr int k_setup_timeout_s = 2700; // dcos-setup.service: bootstrap + ~80 packages
inline constexpr int k_setup_poll_s = 3;
inline constexpr int k_unit_timeout_s = k_installer_timeout_s + k_setup_timeout_s + 300;

// The script text, with `default_role` as the last fallback.
std::string firstboot_script(Role default_role);

// The unit file text.
std::string firstboot_unit();

} // namespace kiln::dcos
