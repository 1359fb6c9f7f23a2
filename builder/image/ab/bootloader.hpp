// GRUB on the A/B disk, with the image's own tools and modules (Debian's grub-install and
// /boot/grub, EL7's grub2-install and /boot/grub2): for i386-pc into the disk's BIOS boot
// partition, and for x86_64-efi onto the ESP (or the image's prebuilt, signed grubx64.efi
// with shim when it has no EFI modules, as CentOS 7 ships it); kiln's one grub.cfg
// (slots/grubcfg) and the tries/panic settings on kiln-boot, and a stub in every other
// GRUB directory that leads to it. Works on the mounted slot through the editor.
#pragma once

#include "core/slots/grubcfg.hpp"
#include "image/edit/editor.hpp"

#include <string>
#include <vector>

namespace kiln::ab {

struct GrubTools {
  std::string install; // grub2-install | grub-install
  bool bios = false; // i386-pc modules
  bool efi = false; // x86_64-efi modules
  std::string signed_efi; // EFI/<vendor> directory under /boot/efi holding a prebuilt grubx64.efi
};

// What the mounted image has; throws naming what is missing and the packages that bring it.
GrubTools find_grub(edit::Editor& g);

// The directories the image's grub-install made under `boot_dir` (names, sorted): those
// holding a platform's modules.
std::vector<std::string> grub_directories(edit::Editor& g, const std::string& boot_dir);

// Before the ESP is mounted over the slot's /boot/efi: keeps the prebuilt loader aside
// when the image has no EFI modules; returns where (empty when nothing was kept).
std::string stash_prebuilt_efi(edit::Editor& g, const GrubTools& grub);

struct BootloaderSettings {
  slots::GrubConfig config; // kiln's grub.cfg
  unsigned tries = 0; // kiln-ab.conf, for kiln-node: the tries of a newly written slot
  unsigned panic = 0;
};

// With kiln-boot mounted at slots::k_boot_mount and the ESP at /boot/efi: installs GRUB
// for both firmware kinds and writes the configuration; returns the GRUB directories.
std::vector<std::string> install_bootloader(edit::Editor& g, const GrubTools& grub, const std::string& efi_stash,
                                            const BootloaderSettings& settings);

} // namespace kiln::ab
