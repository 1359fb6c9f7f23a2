// kiln-node rollback: the other (good) slot boots next, unless it runs an older DC/OS.
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

namespace {

// The DC/OS version of `slot`: read under `root` when it is the running one, else from
// its partition mounted read-only without log replay (nothing is written to it).
std::optional<std::string>
slot_dcos_version(const slots::Gpt& gpt, char slot, const std::optional<fs::path>& running_root)
{
  if (running_root) {
    return read_dcos_version(*running_root);
  }
  const slots::Partition& part = gpt.by_label(part_label(slot));
  // XFS refuses a second file system with the UUID of a mounted one, and both slots carry
  // the same UUID after a reimage of the same build: nouuid (an XFS-only option).
  char magic[4] = {};
  PartitionIo(gpt, part, false).pread_exact(magic, sizeof magic, 0);
  bool xfs = std::string_view(magic, sizeof magic) == "XFSB";
  PartitionMount mount(gpt, part, xfs ? "ro,norecovery,nouuid" : "ro,norecovery");
  return read_dcos_version(mount.path());
}

// Why rolling back from `from` would downgrade DC/OS; empty when it would not. Only
// slots that both carry dcos-version.json are compared: kiln's image records no version
// of the staged bundle (/opt/dcos_install_tmp holds ids, the recipe's dcos.version is
// optional and never written into the image), and a slot without the file has no DC/OS
// installed, so nothing of DC/OS is downgraded by booting it (its first boot installs the
// staged bundle; a `good` slot of a DC/OS image had the file when it was confirmed).
std::string
downgrade_problem(const slots::Gpt& gpt, char from, const std::optional<fs::path>& running_root)
{
  char to = slots::other_slot(from);
  try {
    auto now = slot_dcos_version(gpt, from, running_root);
    if (!now) {
      return {};
    }
    auto then = slot_dcos_version(gpt, to, std::nullopt);
    if (!then || compare_dcos_versions(*then, *now) >= 0) {
      return {};
    }
    return "slot " + slot_str(from) + " runs DC/OS " + *now + ", slot " + slot_str(to) + " has " + *then +
           ": DC/OS does not support downgrades";
  } catch (const Error& e) {
    return "cannot compare the slots' DC/OS versions: " + e.subject() + ": " + e.reason();
  }
}

} // namespace

RollbackReport
rollback(const RollbackOptions& options)
{
  const DiskOptions& disk = options.disk;
  slots::Gpt gpt = slots::read_ab_gpt(disk.disk);
  DiskLock lock(disk.disk);
  auto booted = booted_slot(gpt, disk.booted, disk.force);
  BootFs boot(gpt, booted.has_value() && !disk.booted, true);
  fs::path envfile = boot.grubenv();
  grubenv::Env current = read_env(envfile);
  slots::BootEnv before = slots::read_boot_env(current);
  char from = booted ? *booted : before.next_boot().slot;
  slots::roll_back(current, from); // refuses a target that is not good, before anything is read

  std::optional<fs::path> running_root;
  if (booted) {
    running_root = options.root;
  }
  std::string problem = downgrade_problem(gpt, from, running_root);
  if (!problem.empty() && !options.force) {
    throw Error("rollback", problem + " (--force overrides)");
  }
  grubenv::Env after = grubenv::update(envfile, [&](grubenv::Env& env) { slots::roll_back(env, from); });
  slots::BootEnv now = slots::read_boot_env(after);
  RollbackReport r{from, slots::other_slot(from), next_boot_report(now), {}};
  if (!problem.empty()) {
    r.warning = "rollback: " + problem + "; rolled back anyway (--force)";
  }
  return r;
}

} // namespace kiln::node
