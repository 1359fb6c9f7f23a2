// Reproducible file systems (README, "Reproducible builds"). The appliance's kernel writes
// a file system in its own way: which blocks and inode numbers a file gets depends on
// the order and the moment of the writes, and every inode keeps the clock's change time.
// Two builds of one recipe give the same trees but not the same bytes. With
// SOURCE_DATE_EPOCH set, the finalized layer's ext4 file systems are therefore re-made
// on the host from their trees once the appliance has let go of them: read with
// libext2fs (fsimage/ext4_to_tar.hpp), made again with mke2fs and libext2fs
// (fsimage/ext4_image.hpp) with the same UUID, label and geometry, a hash seed derived
// from the UUID and every time from the epoch (SOURCE_DATE_EPOCH; unset: the moment of
// the build, so the bytes follow the clock), and written back over the partition.
// A FAT file system (an ESP) keeps its bytes but for its times, which are set to the
// epoch (fsimage/fat_times.hpp). Other file systems (XFS, LVM volumes) are kept as the
// appliance wrote them, and reported: README, "Reproducible builds", says why XFS is.
#pragma once

#include "image/guestfs/guestfs.hpp"
#include "image/pipeline/options.hpp"
#include "image/steps/context.hpp"

#include <optional>

#include "core/util/runner.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::build {

// A mounted file system of the guest, as the appliance sees it.
struct RepackTarget {
  std::string device; // /dev/sda1
  std::string mountpoint; // /
  std::string type; // ext4, xfs, vfat, ...
  std::optional<gfs::Handle::PartitionSpan> span; // none: not a partition (LVM, a whole disk)
};

// In the appliance, while the guest is mounted: its file systems, by mount point.
std::vector<RepackTarget> repack_targets(gfs::Handle& g, const steps::GuestInfo& guest);

struct RepackResult {
  std::vector<std::string> remade; // "/ (/dev/sda1, ext4)"
  std::vector<std::string> pinned; // "/boot/efi (/dev/sda2, vfat)": its times set to the epoch
  std::vector<std::string> kept; // "/ (/dev/sda1, xfs) kept as the appliance wrote it, not reproducible: why"
};

// The epoch the re-made file systems' times come from: SOURCE_DATE_EPOCH, else now.
std::int64_t file_system_epoch(const std::optional<std::int64_t>& source_date_epoch);

// The directory hash seed a re-made file system gets: a UUID derived from its own.
std::string hash_seed_for(const std::string& uuid);

// On the host: every ext4 target on drive 0 of `disk` (in qemu's `format`) re-made from
// its tree with times from `epoch`, and every vfat one's times set to `epoch`, in
// `scratch`. A qcow2 disk must be open nowhere; a raw one may be open in an appliance that has the targets unmounted and flushed (it
// must drop its buffers of them afterwards). Throws Error(mountpoint, reason) when one
// cannot be re-made.
RepackResult repack_file_systems(util::Runner& runner, const std::filesystem::path& disk, const std::string& format,
                                 const std::vector<RepackTarget>& targets, std::int64_t epoch,
                                 const std::filesystem::path& scratch);

// What `r` did, said as a build says it: re-made and pinned ones as progress lines
// ("INDENTfile systems: ..."), kept ones as notices ("NOTICE_PREFIXfile systems: ...").
void say_repacked(const BuildOptions& options, const RepackResult& r, const std::string& indent,
                  const std::string& notice_prefix);

} // namespace kiln::build
