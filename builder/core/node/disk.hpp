// kiln-node's access to an A/B disk (a block device, a loop device or a disk image
// file), one header for the four parts: the booted slot, partition nodes and mounts, the
// kiln-boot file system (grubenv), and raw slot I/O.
#pragma once

#include "core/node/boot_fs.hpp"
#include "core/node/booted_slot.hpp"
#include "core/node/partition.hpp"
#include "core/node/partition_io.hpp"
