// The kiln-boot file system that holds grub/grubenv: the running system's /boot/kiln, a
// mount another process made, or one kiln-node makes for as long as it needs it.
#pragma once

#include "core/node/partition.hpp"
#include "core/slots/gpt.hpp"

#include <filesystem>
#include <optional>

namespace kiln::node {

namespace fs = std::filesystem;

// The kiln-boot file system, for reading and updating grub/grubenv. On the running
// system it is /boot/kiln (when that holds grub/grubenv); otherwise the partition is
// mounted (PartitionMount) for as long as the object lives.
class BootFs {
public:
  BootFs(const slots::Gpt& gpt, bool running_system, bool writable);
  // kiln-boot where another process mounted it (see mounted_boot_fs); never unmounted here.
  explicit BootFs(fs::path mounted) : m_root(std::move(mounted)) {}

  fs::path grubenv() const;
  const fs::path& root() const noexcept { return m_root; }

private:
  fs::path m_root;
  std::optional<PartitionMount> m_mount;
};

// Where this disk's kiln-boot is mounted already (by a reimage in progress, say), found
// in /proc/self/mountinfo by device numbers: its partition node's, else those of a loop
// device over the disk at kiln-boot's offset. Empty when it is not mounted here.
fs::path mounted_boot_fs(const slots::Gpt& gpt);

} // namespace kiln::node
