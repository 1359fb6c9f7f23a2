// kiln's grub.cfg for the A/B layout (abi.hpp): the boot-time half of the slot state
// machine, written as GRUB script. It lives in kiln_core so the builder (which installs
// it on kiln-boot) and kiln-node (which may rewrite it) share one generator.
//
// What the script does at every boot (GRUB script has no arithmetic: the tries counter
// is decremented by a table of string tests, "9" -> "8" ... "1" -> "0"):
//   1. finds the disk it booted from in $root (else $prefix) with regexp, so nothing
//      names hd0; kiln-boot is partition 3 of that disk, slot A 4, slot B 5;
//   2. loads kiln-boot's /grub/grubenv explicitly (defaults first, so a missing or
//      unreadable block means "nothing bootable");
//   3. walks kiln_order: a good slot boots; a trial slot with tries "1".."9" gets its
//      tries decremented and saved (save_env) before it boots; a trial slot at "0" (or
//      with a value outside "0".."9") becomes bad, saved, and is skipped;
//   4. when no slot qualifies, boots the first slot of kiln_order whose state is not
//      empty, without changing the block (a last resort: mark-good can still confirm
//      it); when every slot is empty, the first slot of kiln_order (else A).
// The kernel and initramfs come from the chosen slot's root file system at stable
// names (/boot/vmlinuz, /boot/initrd.img); the command line is
//   root=PARTUUID=<slot partition> ro kiln.slot=X panic=N console=tty0 console=ttyS0,115200 ARGS...
#pragma once

#include <string>
#include <vector>

namespace kiln::slots {

struct GrubConfig {
  std::string partuuid_a; // GPT partition GUID of kiln-a (lower case)
  std::string partuuid_b; // GPT partition GUID of kiln-b
  unsigned panic = 10; // panic=N: a hung kernel reboots into the next try
  std::vector<std::string> kernel_args; // appended to the command line, one word each
  std::string kernel = "/boot/vmlinuz"; // in the slot's root file system
  std::string initrd = "/boot/initrd.img";
  std::string root_fs = "xfs"; // xfs | ext4: the GRUB module for the slots
  // Red Hat's GRUB (EL7) boots kernels under UEFI with linuxefi/initrdefi; upstream
  // GRUB 2.06 has only linux/initrd. True adds an EFI branch using the former.
  bool efi_linux_commands = false;
  unsigned timeout = 1; // menu timeout in seconds (serial console users can pick)
};

// Partition numbers on the disk (abi.hpp order).
inline constexpr int k_partnum_boot = 3;
inline constexpr int k_partnum_a = 4;
inline constexpr int k_partnum_b = 5;

// The whole grub.cfg. Throws Error for a kernel argument that is not one word (empty,
// whitespace, control characters) and for a missing partition GUID.
std::string make_grub_cfg(const GrubConfig& config);

// The kernel command line for `slot` ('A' or 'B'), as GRUB passes it (unquoted).
std::string kernel_cmdline(const GrubConfig& config, char slot);

// A small grub.cfg for a prebuilt GRUB image whose prefix is on the ESP (EL7's signed
// grubx64.efi looks for EFI/centos/grub.cfg): it switches to kiln-boot on the same disk
// and loads kiln's /grub/grub.cfg from there.
std::string make_esp_stub_cfg();

// The grub.cfg kiln writes into the directory the image's own grub-install made on
// kiln-boot when that directory is not /grub: GRUB's $prefix points there and GRUB reads
// $prefix/grub.cfg first. EL7 builds GRUB with --with-grubdir=grub2 (rhboot/grub2
// rhel-7.9, grub2.spec), so grub2-install --boot-directory=/boot/kiln embeds the prefix
// /grub2. The stub keeps $prefix (the platform modules live under it) and loads kiln's
// one /grub/grub.cfg from the prefix's own partition.
std::string make_prefix_stub_cfg();

// One word quoted for GRUB script: unchanged when it holds only safe characters,
// otherwise in single quotes (a single quote itself written as '\'').
std::string grub_quote(const std::string& word);

} // namespace kiln::slots
