// The PXE installer of an A/B image (`layout: ab` with the pxe format): a ramdisk that
// writes the whole-disk image onto a blank machine's disk with kiln-node and reboots
// into it. kiln assembles it with libarchive as the image's own initramfs followed by
// one more (gzip'd cpio newc) archive; the kernel unpacks both, the second on top:
//   /init                       kiln's installer script (busybox sh), replacing the image's
//   /kiln/bin/busybox           a static busybox from the build host (Debian: busybox-static)
//   /usr/bin/kiln-node          the kiln-node artifact the A/B image carries (node_artifact.hpp),
//   /usr/lib/kiln/node/...      at the paths it has on a node; it needs nothing of the host
//   /kiln/udhcpc.script         address configuration for busybox udhcpc
//   /kiln/trust.d/*.pem         the recipe's trust: keys (the installer verifies the image)
//   /kiln/ca.pem                the build host's CA bundle, for https install URLs
// Drivers come from the image's own initramfs (its modules, udev, modprobe), so whatever
// storage and network hardware the image itself boots on, the installer drives too.
// Nothing under /kiln and /usr/lib/kiln collides with the image's files.
//
// Kernel command line keys the installer reads:
//   kiln.install_url=URL        the whole-disk image, NAME.raw (http, https or a path);
//                               NAME.raw.bmap and NAME.manifest.json(.sig) beside it. Required.
//   kiln.install_disk=DEV       the target disk; default: the only non-removable disk
//                               (with several the installer refuses and lists them)
//   kiln.install_verify=no      accept an unsigned or untrusted image
//   kiln.install_done=reboot|poweroff|shell      after success (default reboot)
//   kiln.install_failed=shell|poweroff|reboot    after a failure (default shell)
// The console shows "kiln-installer: installed URL on DISK" or "kiln-installer: FAILED: ...".
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::formats {

inline constexpr std::string_view k_install_url_key = "kiln.install_url";
inline constexpr std::string_view k_install_disk_key = "kiln.install_disk";
inline constexpr std::string_view k_install_verify_key = "kiln.install_verify";
inline constexpr std::string_view k_install_done_key = "kiln.install_done";
inline constexpr std::string_view k_install_failed_key = "kiln.install_failed";

struct InstallerInputs {
  std::filesystem::path image_initramfs; // the image's own initramfs
  std::filesystem::path node_artifact; // the kiln-node artifact (a ROOT tree or one executable)
  std::filesystem::path busybox; // static busybox (find_static_busybox())
  std::vector<std::filesystem::path> trust_keys; // installed as /kiln/trust.d/STEM.pem
  std::optional<std::filesystem::path> revoked; // installed as /kiln/trust.d/revoked.list
  std::filesystem::path ca_bundle; // empty: none
};

// A statically linked busybox: $KILN_BUSYBOX, else busybox in PATH (or /bin/busybox).
// Throws Error naming the Debian package when it is missing or dynamically linked.
std::filesystem::path find_static_busybox();

// The installer's /init (busybox sh).
std::string installer_init_script();

// Writes the installer initramfs to `out` (atomically). Throws Error naming the input
// that is missing or unreadable.
void write_installer_initramfs(const InstallerInputs& inputs, const std::filesystem::path& out);

// The iPXE script that boots the installer: the caller sets ${kiln_install_url} (and
// optionally ${kiln_install_disk}) and chains it.
std::string installer_ipxe_script(const std::string& stem, const std::string& kernel_cmdline);

} // namespace kiln::formats
