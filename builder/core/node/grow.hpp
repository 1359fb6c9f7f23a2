// kiln-data grows to the end of its disk: `kiln-node grow-data` (first boot, through
// kiln-grow-data.service) grows the partition (slots/gpt_grow), tells the kernel, and
// grows the mounted file system (xfs_growfs, resize2fs online); `kiln-node install`
// grows the partition only, right after writing a smaller image.
#pragma once

#include "core/node/node.hpp"
#include "core/node/report.hpp"

#include <cstdint>
#include <filesystem>

namespace kiln::node {

// Grows the partition table of the disk open read-write as `fd` (`disk` names it in
// errors) so kiln-data reaches its end (slots::plan_gpt_growth, written backup first and
// primary last).
PartitionGrowth grow_data_partition(int fd, const fs::path& disk, std::uint32_t sector_size, std::uint64_t disk_size);

struct GrowDataOptions {
  DiskOptions disk; // --booted is refused: proof comes from the command line
  fs::path mount = "/var/lib/kiln-data"; // where kiln-data is mounted (slots::k_data_mount)
};

// Grows kiln-data on the disk that holds the booted slot: partition, kernel's view,
// file system. Idempotent: changed is false when there was nothing to do.
GrowDataReport grow_data(const GrowDataOptions& options);

} // namespace kiln::node
