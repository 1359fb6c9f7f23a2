// The times of a FAT file system (the A/B disk's ESP) pinned to one moment, in place.
//
// The appliance's kernel writes the ESP (grub-install's EFI loader, kiln's stub
// grub.cfg): which clusters and directory slots a file gets follows only the order of the
// writes, which is the same in every build, and GRUB's images carry no time of their own
// (grub-mkimage gives the same bytes twice). What differs between two builds is the time
// in every directory entry: creation, access and modification, from the clock. This
// rewrites those fields of every entry (deleted ones included, so nothing of the build's
// moment stays) to the epoch, in the FAT encoding: local time, which is UTC in the
// appliance, 1980 to 2107 with two-second steps. The volume ID is mkfs.vfat's `-i`, from
// the stage key (image/ab/host_fs.hpp). Long-name entries carry no time and are left as
// they are, as is everything else of the volume.
//
// With the re-made ext4 file systems (fsimage/ext4_image.hpp) this makes the A/B disk's
// bytes follow its inputs: kiln's reproducible builds (README, "Reproducible builds").
#pragma once

#include <cstdint>
#include <filesystem>

namespace kiln::fsimage {

struct FatTimesLimits {
  unsigned max_depth = 64; // directory nesting below the root
  std::uint64_t max_entries = 1'000'000; // directory entries visited, in all
};

struct FatTimesReport {
  std::uint64_t directories = 0; // the root included
  std::uint64_t entries = 0; // short entries whose times were set (".", ".." and deleted included)
};

// FAT's date and time words for `epoch` (seconds since 1970, UTC), clamped to what FAT
// holds: 1980-01-01 00:00:00 to 2107-12-31 23:59:58.
struct FatTime {
  std::uint16_t date = 0;
  std::uint16_t time = 0;
};
FatTime fat_time(std::int64_t epoch);

// Sets every time of every directory entry of the FAT12, FAT16 or FAT32 file system that
// fills `image` (a file holding just the file system) to `epoch`. Throws
// Error(image, reason) for what is not a FAT file system kiln can walk: a bad boot
// sector, a cluster chain that leaves the volume or loops, a tree past `limits`.
FatTimesReport set_fat_times(const std::filesystem::path& image, std::int64_t epoch, const FatTimesLimits& limits = {});

} // namespace kiln::fsimage
