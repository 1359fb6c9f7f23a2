// The on-disk contract of kiln's A/B layout, shared by the builder (which creates
// it), GRUB (whose grub.cfg kiln generates) and kiln-node (which reimages, rolls
// back and confirms slots). Changing a name here changes the disk format.
//
// Disk (GPT, whole disk):
//   part 1  PARTLABEL kiln-bios   BIOS boot partition (GRUB core.img), 1 MiB
//   part 2  PARTLABEL kiln-esp    EFI system partition, vfat, fs label KILN-ESP
//   part 3  PARTLABEL kiln-boot   boot partition, ext4 (no metadata_csum), fs label kiln-boot:
//                                 /grub/grub.cfg (kiln's), /grub/grubenv (1024 bytes, never sparse)
//                                 and GRUB's own directory, the $prefix the image's grub-install
//                                 embedded: /grub (Debian) or /grub2 (EL7, --with-grubdir=grub2);
//                                 when it is not /grub, its grub.cfg is a stub that loads /grub/grub.cfg
//   part 4  PARTLABEL kiln-a      root slot A
//   part 5  PARTLABEL kiln-b      root slot B (empty in a fresh build)
//   part 6  PARTLABEL kiln-data   node state, fs label kiln-data (XFS ftype=1 by default):
//                                 /var/lib/docker, /var/lib/mesos, /var/lib/dcos, /var/log
//                                 live here (bind-mounted into place): a reimage keeps a
//                                 node's DC/OS identity and state, only wipe --dcos removes
//                                 it. Always the last partition: kiln-node grows it to the
//                                 disk's end (install; grow-data at boot), 1 MiB-aligned.
// kiln-node finds partitions by PARTLABEL, never by number. The root file system
// inside a slot carries no slot identity: the same slot image can be written to A or B.
// The kernel command line names the booted slot: kiln.slot=A|B, and root=PARTUUID=...
// of that slot's partition.
//
// grubenv (on kiln-boot, /grub/grubenv) variables:
//   kiln_order      "A B" or "B A": preference order, first is preferred
//   kiln_X_state    X in {A,B}: empty | trial | good | bad
//                     empty  no image (never booted)
//                     trial  written and verified, not yet confirmed; booted while tries remain
//                     good   confirmed by mark-good from a boot of that slot
//                     bad    its tries ran out unconfirmed (set by GRUB) or marked bad
//   kiln_X_tries    tries left for a trial slot: "0".."9". GRUB decrements it with string
//                   tests before booting the slot (save_env), and sets state bad when it is "0".
//   kiln_X_digest   sha256 of the slot bundle's manifest.json that was written to the slot
//   kiln_X_name     the bundle's image name (manifest "name")
//   kiln_highest_version  the highest manifest "version" kiln-node ever switched to on
//                   this node (decimal); a reimage of an older one is refused without
//                   --allow-downgrade. Unset: none recorded.
// GRUB walks kiln_order; the first slot that is good, or trial with tries left, boots.
// When none qualifies it boots the first slot of kiln_order whose state is not empty
// (re-armed as a last resort, so the node never ends up with nothing to boot).
//
// Slot bundle (the unit of reimage), one file NAME.kbundle: an uncompressed POSIX tar
// (pax), members in exactly this order:
//   manifest.json        a kiln manifest (core/manifest), canonical text; its files are
//                        rootfs.bmap (role "bmap") and rootfs.data (role "rootfs-data");
//                        name = image name
//   manifest.json.sig    optional: the manifest's detached signature (.sig JSON format)
//   rootfs.bmap          bmap 2.0 of the slot's root file system image
//   rootfs.data          the bmap's mapped ranges, concatenated in bmap order (clipped at
//                        ImageSize), i.e. a packed sparse image
// A reader can check the signature and the bmap before it reads a byte of rootfs.data,
// and stream rootfs.data straight to the slot's offsets.
#pragma once

#include <cstdint>
#include <string_view>

namespace kiln::slots {

inline constexpr std::string_view k_part_bios = "kiln-bios";
inline constexpr std::string_view k_part_esp = "kiln-esp";
inline constexpr std::string_view k_part_boot = "kiln-boot";
inline constexpr std::string_view k_part_a = "kiln-a";
inline constexpr std::string_view k_part_b = "kiln-b";
inline constexpr std::string_view k_part_data = "kiln-data";

inline constexpr std::string_view k_label_esp = "KILN-ESP";
inline constexpr std::string_view k_label_boot = "kiln-boot";
inline constexpr std::string_view k_label_data = "kiln-data";

inline constexpr std::string_view k_grubenv_path = "/grub/grubenv"; // on kiln-boot
inline constexpr std::string_view k_grubcfg_path = "/grub/grub.cfg"; // on kiln-boot

inline constexpr std::string_view k_env_order = "kiln_order";
// Per-slot variable names: "kiln_" + slot + suffix, e.g. kiln_A_state.
inline constexpr std::string_view k_env_state_suffix = "_state";
inline constexpr std::string_view k_env_tries_suffix = "_tries";
inline constexpr std::string_view k_env_digest_suffix = "_digest";
inline constexpr std::string_view k_env_name_suffix = "_name";
inline constexpr std::string_view k_env_highest_version = "kiln_highest_version";

inline constexpr unsigned k_default_tries = 3;
inline constexpr unsigned k_max_tries = 9;
inline constexpr unsigned k_default_panic_seconds = 10;

inline constexpr std::string_view k_bundle_manifest = "manifest.json";
inline constexpr std::string_view k_bundle_signature = "manifest.json.sig";
inline constexpr std::string_view k_bundle_bmap = "rootfs.bmap";
inline constexpr std::string_view k_bundle_data = "rootfs.data";
inline constexpr std::string_view k_bundle_extension = ".kbundle";

// Kernel command line keys.
inline constexpr std::string_view k_cmdline_slot = "kiln.slot"; // A | B
inline constexpr std::string_view k_cmdline_dcos_role = "kiln.dcos_role"; // master | slave | slave_public

// In the image.
inline constexpr std::string_view k_trust_dir = "/etc/kiln/trust.d"; // *.pem, revoked.list
inline constexpr std::string_view k_dcos_role_file = "/etc/kiln/dcos-role";
inline constexpr std::string_view k_boot_mount = "/boot/kiln"; // kiln-boot mounted here
inline constexpr std::string_view k_data_mount = "/var/lib/kiln-data"; // kiln-data mounted here

// DC/OS first boot (kiln-dcos-install.service). Success leaves the stamp; failure the
// marker (with the exit status and the log's tail); the log is kept in both cases.
inline constexpr std::string_view k_dcos_unit = "kiln-dcos-install.service";
inline constexpr std::string_view k_dcos_stamp = "/var/lib/kiln/dcos-installed";
inline constexpr std::string_view k_dcos_failed = "/var/lib/kiln/dcos-install-failed";
inline constexpr std::string_view k_dcos_log = "/var/log/kiln/dcos-install.log";
inline constexpr std::string_view k_dcos_install_dir = "/opt/dcos_install_tmp";
// Written by DC/OS's installer into the slot's root file system ({"version": "2.2.1", ...});
// kiln-node reads it to refuse rollbacks to an older DC/OS.
inline constexpr std::string_view k_dcos_version_file = "/opt/mesosphere/etc/dcos-version.json";
// The agent's MOUNT volumes (DC/OS convention /dcos/volume0, volume1, ...); wipe --dcos
// lists them and keeps them unless asked.
inline constexpr std::string_view k_dcos_volume_dir = "/dcos";
inline constexpr std::string_view k_dcos_volume_prefix = "volume";
// Confirms the booted slot once health holds (kiln-node mark-good --when-healthy).
inline constexpr std::string_view k_mark_good_unit = "kiln-mark-good.service";
inline constexpr std::string_view k_node_binary = "/usr/bin/kiln-node";
// Grows kiln-data to the disk's end at boot (kiln-node grow-data), before DC/OS and Docker.
inline constexpr std::string_view k_grow_data_unit = "kiln-grow-data.service";

} // namespace kiln::slots
