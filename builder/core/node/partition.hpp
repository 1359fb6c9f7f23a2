// One partition of an A/B disk as the kernel sees it: its device node, or a mount of it
// (through a loop device when the disk is an image file).
#pragma once

#include "core/slots/gpt.hpp"
#include "core/util/fs.hpp"

#include <filesystem>
#include <string>

namespace kiln::node {

namespace fs = std::filesystem;

// The device node of partition `number` of block device `disk` (via sysfs), or empty
// when there is none (an image file, a loop device without partition scanning).
fs::path partition_node(const fs::path& disk, unsigned number);

// One partition of the disk mounted on a private temporary directory (its partition
// node when the disk is a block device with one, else a loop device with
// offset/sizelimit over the disk), unmounted when the object dies. `options` are mount's
// -o options ("ro", "rw", "ro,norecovery", ...).
class PartitionMount {
public:
  PartitionMount(const slots::Gpt& gpt, const slots::Partition& part, const std::string& options);
  ~PartitionMount();
  PartitionMount(const PartitionMount&) = delete;
  PartitionMount& operator=(const PartitionMount&) = delete;

  const fs::path& path() const noexcept { return m_dir.path(); }

private:
  util::TempDir m_dir;
};

} // namespace kiln::node
