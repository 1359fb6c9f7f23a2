// kiln-node mark-good: the booted slot confirmed, optionally once the node is healthy.
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

// Sleeps for `length`, but ends with the interrupted error as soon as a signal arrives.
void
sleep_interruptibly(std::chrono::steady_clock::duration length)
{
  const auto until = std::chrono::steady_clock::now() + length;
  while (std::chrono::steady_clock::now() < until) {
    util::check_interrupted();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
      std::chrono::milliseconds(200), until - std::chrono::steady_clock::now()));
  }
  util::check_interrupted();
}

// Asks for health every options.interval until it holds or options.deadline has passed
// (deadline 0: once); throws the last problem then, and the slot stays as it was.
void
wait_until_healthy(const MarkGoodOptions& options, char booted)
{
  const auto deadline = std::chrono::steady_clock::now() + options.deadline;
  for (;;) {
    std::string problem = health_problem(options.root);
    if (problem.empty()) {
      return;
    }
    auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) {
      if (options.deadline.count() == 0) {
        throw Error("mark-good", "not healthy: " + problem);
      }
      throw Error("mark-good", "not healthy after " + std::to_string(options.deadline.count()) + " s: " + problem +
                                 "; slot " + slot_str(booted) + " stays unconfirmed, GRUB's tries decide");
    }
    if (options.waiting) {
      options.waiting(problem);
    }
    sleep_interruptibly(std::min<std::chrono::steady_clock::duration>(options.interval, left));
  }
}

} // namespace

MarkGoodReport
mark_good(const MarkGoodOptions& options)
{
  slots::Gpt gpt = slots::read_ab_gpt(options.disk.disk);
  auto booted = booted_slot(gpt, options.disk.booted, options.disk.force);
  if (!booted) {
    throw Error(options.disk.disk.string(),
                "no slot of this disk is booted (kiln.slot= and root=PARTUUID= on the command line); "
                "pass --booted A|B to name one");
  }
  if (options.when_healthy) {
    wait_until_healthy(options, *booted);
  }
  DiskLock lock(options.disk.disk);
  BootFs boot(gpt, !options.disk.booted, true);
  read_env(boot.grubenv()); // refuses a disk without a block rather than creating one
  grubenv::Env after = grubenv::update(boot.grubenv(), [&](grubenv::Env& env) { slots::set_good(env, *booted); });
  slots::BootEnv now = slots::read_boot_env(after);
  return MarkGoodReport{*booted, next_boot_report(now)};
}

} // namespace kiln::node
