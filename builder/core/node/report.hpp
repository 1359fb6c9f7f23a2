// What kiln-node's commands report, as types: core/node returns these, kiln-node renders
// them as text (kiln-node/render.cpp) or as JSON for --json (report_json.hpp, the one
// place that knows the JSON keys). No JSON here.
#pragma once

#include "core/slots/state.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::node {

// One slot as the grubenv holds it. state and tries stay text: they are reported exactly
// as GRUB reads them, and a hand-edited block may hold any value.
struct SlotReport {
  std::string state; // "empty" when unset; kiln writes empty, trial, good (GRUB: bad)
  std::string tries; // "0" when unset
  std::string digest; // the manifest's sha256; empty when unset
  std::string name;
  std::string partuuid;
};

// The slot GRUB boots next, and why (slots::BootEnv::next_boot).
struct NextBoot {
  char slot = 'A';
  slots::BootReason reason = slots::BootReason::empty;
  std::string tries_after; // a trial's tries after this boot (one digit); else empty
};

// DC/OS's first-boot state under the root status was given (stamp and failed marker
// are slots::k_dcos_stamp and k_dcos_failed beneath it).
struct DcosReport {
  bool installed = false; // the stamp exists
  bool failed = false; // the failed marker exists
  std::optional<std::string> role; // the role the first boot recorded
};

struct StatusReport {
  std::string disk;
  bool in_progress = false; // another kiln-node held the disk; its kiln-boot mount was read
  std::optional<char> booted; // none: not the running system's disk
  std::string order; // kiln_order as GRUB reads it
  SlotReport a;
  SlotReport b;
  NextBoot next_boot;
  std::uint64_t highest_version = 0;
  DcosReport dcos;
};

// What the bmap engine did for a slot or disk write.
// How a write went about it (write_journal.hpp): straight; compare (a rewrite of the
// image the slot holds: only differing chunks written); resume (a journalled write of
// the same bundle continued).
enum class WriteMode { straight, compare, resume };
const char* write_mode_name(WriteMode mode);

struct WriteReport {
  std::uint64_t image_size = 0;
  std::uint64_t mapped_bytes = 0;
  std::uint64_t written_bytes = 0;
  std::uint64_t skipped_bytes = 0; // already equal
  std::uint64_t zeroed_bytes = 0; // gaps made zero
  WriteMode mode = WriteMode::straight;
  bool direct_read_back = false; // the read-back bypassed the page cache (O_DIRECT)
};

struct ReimageReport {
  char slot = 'A'; // the slot written
  std::string partition; // its device (or "DISK (LABEL)")
  std::string name; // the manifest's
  std::uint64_t version = 0;
  std::uint64_t highest_version = 0; // after the switch
  std::string digest; // the manifest's sha256
  std::string key_id; // empty: not verified
  unsigned tries = 0;
  WriteReport write;
  int resumes = 0; // reconnects after a dropped connection
  NextBoot next_boot;
};

struct RollbackReport {
  char from = 'A';
  char to = 'B';
  NextBoot next_boot;
  std::string warning; // empty, or why the forced rollback downgrades DC/OS
};

struct MarkGoodReport {
  char slot = 'A'; // the booted slot, now good
  NextBoot next_boot;
};

// A partition table grown so kiln-data reaches the end of its disk
// (grow_data_partition).
struct PartitionGrowth {
  bool changed = false; // false: it reached the end already
  unsigned partition = 0; // 1-based number of kiln-data
  std::uint64_t old_end_lba = 0;
  std::uint64_t new_end_lba = 0;
  std::uint64_t added_bytes = 0;
  std::uint64_t backup_lba = 0; // of the backup header
};

// The disk's own GUIDs (give_own_guids).
struct IdentityReport {
  std::string disk_guid;
  std::map<std::string, std::string> partitions; // PARTLABEL -> new PARTUUID
};

struct InstallReport {
  std::string disk;
  std::string name; // the manifest's
  std::optional<PartitionGrowth> data_partition; // none: the disk is the image's size
  IdentityReport identity;
  std::string digest; // the manifest's sha256
  std::string key_id; // empty: not verified
  WriteReport write;
};

// grow-data: kiln-data's partition, the kernel's view of it, its mounted file system.
struct KernelResize {
  std::uint64_t size_before = 0; // the partition's size as the kernel saw it
  bool changed = false;
  std::string how; // when changed: BLKPG_RESIZE_PARTITION or BLKRRPART
  std::uint64_t size = 0;
};

struct FilesystemGrowth {
  std::string type; // xfs, ext4
  std::uint64_t size_before = 0;
  std::uint64_t size = 0;
  bool changed = false;
};

struct GrowDataReport {
  std::string disk;
  std::string device; // kiln-data's device node
  std::string mount;
  PartitionGrowth partition;
  KernelResize kernel;
  FilesystemGrowth filesystem;
  bool changed = false; // any of the three
};

// wipe --dcos: the top-level paths removed or emptied, what was left alone, and the
// DC/OS MOUNT volumes kept or emptied.
struct WipeReport {
  std::string root;
  bool keep_data = false;
  std::vector<std::string> removed;
  std::size_t removed_entries = 0;
  std::vector<std::string> mount_points_skipped;
  std::vector<std::string> symlinks_not_followed;
  std::vector<std::string> volumes_kept;
  std::vector<std::string> volumes_wiped;
};

} // namespace kiln::node
