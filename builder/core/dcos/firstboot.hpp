// The first-boot install of a DC/OS node image: a oneshot unit (kiln-dcos-install.service)
// running a bash script that picks the role and runs the pre-staged dcos_install.sh once.
// Role: kiln.dcos_role= on the kernel command line, else /etc/kiln/dcos-role, else the
// recipe's default (baked into the script). Success leaves the stamp; failure leaves the
// marker with the exit status and the log's tail (paths in core/slots/abi.hpp).
//
// The script honours $KILN_ROOT as a prefix for every path it touches, so tests run it
// for real with bash under a fake root; on a node KILN_ROOT is unset.
#pragma once

#include <string>

namespace kiln::dcos {

// Where the script lives in the image.
inline constexpr const char* k_firstboot_script = "/usr/libexec/kiln/dcos-install";

// The script text, with `default_role` as the last fallback.
std::string firstboot_script(const std::string& default_role);

// The unit file text.
std::string firstboot_unit();

} // namespace kiln::dcos
