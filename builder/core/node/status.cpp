// kiln-node status: both slots, the booted one, the next boot, DC/OS's first-boot state;
// while a reimage holds the disk it waits at most 5 s, then reports it in progress.
#include "core/node/node.hpp"

#include "core/node/command_common.hpp"
#include "core/node/disk_lock.hpp"

#include "core/bmap/copy.hpp"
#include "core/crypto/sha256.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/node/dcos_version.hpp"
#include "core/node/disk.hpp"
#include "core/node/grow.hpp"
#include "core/node/health.hpp"
#include "core/node/identity.hpp"
#include "core/node/test_hooks.hpp"
#include "core/node/under_root.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kiln::node {

using namespace detail;

StatusReport
status(const DiskOptions& disk, const fs::path& root)
{
  slots::Gpt gpt = slots::read_ab_gpt(disk.disk);
  auto booted = booted_slot(gpt, disk.booted, disk.force);
  slots::BootEnv env;
  std::uint64_t highest = 0;
  // While another kiln-node holds the disk (a reimage writing a slot), its kiln-boot
  // mount is read instead of mounting kiln-boot a second time (which the kernel or
  // mount(8) refuses as busy).
  DiskLock lock(disk.disk, DiskLock::Shared{});
  const bool boot_mount_in_place = booted && !disk.booted && present(slots::k_boot_mount);
  fs::path mounted;
  // The holder mounts kiln-boot just after it takes the lock, and unmounts it just before
  // it lets go: in either gap, wait (bounded) for the mount or the lock.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!lock.held()) {
    mounted = mounted_boot_fs(gpt);
    if (!mounted.empty() || boot_mount_in_place || std::chrono::steady_clock::now() > deadline || lock.try_shared()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const bool in_progress = !lock.held();
  if (in_progress && mounted.empty() && !boot_mount_in_place) {
    throw Error(disk.disk.string(), "another kiln-node is working on this disk (a reimage in progress?) and its "
                                    "kiln-boot mount is not visible here; run status again when it is done");
  }
  {
    std::optional<BootFs> boot;
    if (!mounted.empty()) {
      boot.emplace(mounted);
    } else {
      boot.emplace(gpt, booted.has_value() && !disk.booted, false);
    }
    grubenv::Env block = read_env(boot->grubenv());
    env = slots::read_boot_env(block);
    highest = slots::highest_version(block);
  }
  StatusReport r;
  r.disk = disk.disk.string();
  r.in_progress = in_progress;
  r.booted = booted;
  r.order = env.order_text;
  r.a = slot_report(env.a);
  r.a.partuuid = gpt.by_label(slots::k_part_a).partuuid;
  r.b = slot_report(env.b);
  r.b.partuuid = gpt.by_label(slots::k_part_b).partuuid;
  r.next_boot = next_boot_report(env);
  r.highest_version = highest;
  r.dcos.installed = present(under(root, slots::k_dcos_stamp));
  r.dcos.failed = present(under(root, slots::k_dcos_failed));
  r.dcos.role = recorded_dcos_role(root);
  return r;
}

} // namespace kiln::node
