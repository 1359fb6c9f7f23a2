// kiln-node reimage: a verified slot bundle into the slot that is not booted, the slot
// invalidated first, written through the bmap engine, read back, then made the next boot.
#include "core/node/node.hpp"

#include "core/node/command_common.hpp"
#include "core/node/disk_lock.hpp"
#include "core/node/write_journal.hpp"

#include "core/bundle/verified_source.hpp"

#include "core/bmap/copy.hpp"
#include "core/crypto/sha256.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/node/dcos_version.hpp"
#include "core/node/disk.hpp"
#include "core/node/grow.hpp"
#include "core/node/health.hpp"
#include "core/node/identity.hpp"
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

ReimageReport
reimage(const ReimageOptions& options)
{
  std::optional<crypto::TrustStore> trust = load_trust(options.verify_signature, options.trust_dir);
  if (options.tries && (*options.tries < 1 || *options.tries > slots::k_max_tries)) {
    throw UsageError("--tries", "must be 1.." + std::to_string(slots::k_max_tries));
  }

  // Everything that can refuse does so before the disk is touched.
  std::unique_ptr<bundle::VerifiedSource> source =
    bundle::open_slot_bundle(options.source, options.source_options, trust ? &*trust : nullptr);
  const bundle::Verified& verified = source->verified();
  const bmap::Bmap& map = verified.bmap;
  if (options.expect_name && verified.manifest.name != *options.expect_name) {
    throw Error(options.source, "the image is '" + verified.manifest.name + "', not '" + *options.expect_name +
                                  "' (--expect-name); refusing another image family");
  }

  slots::Gpt gpt = slots::read_ab_gpt(options.disk.disk);
  DiskLock lock(options.disk.disk);
  auto booted = booted_slot(gpt, options.disk.booted, options.disk.force);
  BootFs boot(gpt, booted.has_value() && !options.disk.booted, true);
  fs::path envfile = boot.grubenv();
  // The block as it is now, read once: the boot state, the highest version, and the
  // base of the final environment below all come from it.
  const grubenv::Env current = read_env(envfile);
  slots::BootEnv before = slots::read_boot_env(current);
  char target = booted ? slots::other_slot(*booted) : offline_target(before);
  // Anti-rollback: never an image older than the highest this node switched to.
  std::uint64_t highest = slots::highest_version(current);
  if (verified.manifest.version < highest && !options.allow_downgrade) {
    throw Error(options.source, "version " + std::to_string(verified.manifest.version) + " is older than " +
                                  std::to_string(highest) + ", the highest this node installed (" +
                                  std::string(slots::k_env_highest_version) +
                                  "); refusing a downgrade without --allow-downgrade");
  }
  unsigned tries = options.tries.value_or(configured_tries(boot.root()));
  const slots::Partition& part = gpt.by_label(part_label(target));
  if (map.image_size > part.size) {
    throw Error(options.source, "the image (" + std::to_string(map.image_size) + " bytes) is larger than slot " +
                                  slot_str(target) + " (" + std::to_string(part.size) + " bytes)");
  }

  // The final environment must fit the block: computed (and refused) before anything
  // changes, so a slot is never written for a switch that cannot happen.
  {
    grubenv::Env final_env = current;
    slots::set_empty(final_env, target);
    slots::set_trial(final_env, target, tries, verified.manifest_sha256, verified.manifest.name);
    slots::record_version(final_env, verified.manifest.version);
    grubenv::serialize(final_env, grubenv::k_default_size, envfile.string());
  }
  // Compare only when the slot holds this very image; resume a journalled write of it.
  const JournalFile journal(envfile.parent_path(), target);
  const WritePlan plan = plan_write(before.slot(target), journal.read(), verified.manifest_sha256, map.mapped_bytes());
  // The target opened (O_EXCL on a partition device: refused while mounted) before the
  // grubenv marks it empty, so a slot in use is refused with the boot state unchanged.
  recheck_not_booted(gpt, options.disk, target);
  PartitionIo io(gpt, part, true);
  // From here on the slot is being changed: first make sure it can never boot.
  grubenv::update(envfile, [&](grubenv::Env& env) { slots::set_empty(env, target); });
  if (plan.mode != WriteMode::resume) {
    journal.record({verified.manifest_sha256, 0});
  }
  fault_point(options.fault, Fault::after_invalidate);

  bmap::WriteStats stats =
    write_and_verify(*source, io, options.progress, options.source, options.fault, plan, &journal);
  fault_point(options.fault, Fault::before_switch);
  recheck_not_booted(gpt, options.disk, target);

  grubenv::Env after = grubenv::update(envfile, [&](grubenv::Env& env) {
    slots::set_trial(env, target, tries, verified.manifest_sha256, verified.manifest.name);
    slots::record_version(env, verified.manifest.version);
    if (options.fault == Fault::during_switch) {
      // A crash in the middle of the update: the new block is half-written to the
      // temporary file and never renamed.
      std::string block = grubenv::serialize(env);
      util::Fd torn = util::open_file(envfile.parent_path() / ".grubenv.kiln-node-torn", O_WRONLY | O_CREAT | O_TRUNC);
      util::write_all(torn.get(), std::string_view(block).substr(0, block.size() / 2), "torn grubenv");
      ::fsync(torn.get());
      fault_point(options.fault, Fault::during_switch);
    }
  });
  slots::BootEnv now = slots::read_boot_env(after);
  // Switched to: nothing left to resume. A journal that stays is harmless (plan_write
  // prefers the grubenv's record), so its removal cannot fail the reimage now.
  (void)journal.try_remove();

  ReimageReport r;
  r.slot = target;
  r.partition = io.name();
  r.name = verified.manifest.name;
  r.version = verified.manifest.version;
  r.highest_version = slots::highest_version(after);
  r.digest = verified.manifest_sha256;
  r.key_id = verified.key_id;
  r.tries = tries;
  r.write = write_report(map, stats, plan.mode);
  r.resumes = source->resumes();
  r.next_boot = next_boot_report(now);
  return r;
}

} // namespace kiln::node
