#include "core/node/node.hpp"

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

namespace {

using json = nlohmann::json;

constexpr std::size_t k_chunk = 1 << 20;

std::string
slot_str(char slot)
{
  return std::string(1, slot);
}

std::string
part_label(char slot)
{
  return std::string(slot == 'A' ? slots::k_part_a : slots::k_part_b);
}

// An exclusive lock on the disk for the length of a command, so two kiln-node runs
// never interleave their grubenv updates or slot writes.
// status takes it shared: it never waits, and tells whether another kiln-node works.
// The exclusive lock waits out a status (well under a second) for at most 5 s.
class DiskLock {
public:
  explicit DiskLock(const fs::path& disk) : m_fd(util::open_file(disk, O_RDONLY))
  {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::flock(m_fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() > deadline) {
        throw Error(disk.string(), "another kiln-node is working on this disk");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  struct Shared {};
  DiskLock(const fs::path& disk, Shared) : m_fd(util::open_file(disk, O_RDONLY)) { try_shared(); }
  bool held() const noexcept { return m_held; }
  // Asks for the shared lock again (the holder may have finished).
  bool try_shared() noexcept
  {
    m_held = ::flock(m_fd.get(), LOCK_SH | LOCK_NB) == 0;
    return m_held;
  }

private:
  util::Fd m_fd;
  bool m_held = true;
};

json
slot_json(const slots::SlotEnv& s)
{
  return {{"state", s.state}, {"tries", s.tries}, {"digest", s.digest}, {"name", s.name}};
}

json
next_boot_json(const slots::BootEnv& env)
{
  slots::BootPrediction p = env.next_boot();
  json j = {{"slot", slot_str(p.slot)}, {"reason", p.reason}};
  if (!p.tries_after.empty()) {
    j["tries_after"] = p.tries_after;
  }
  return j;
}

grubenv::Env
read_env(const fs::path& path)
{
  if (!present(path)) {
    throw Error(path.string(), "missing: kiln-boot holds no grubenv (not a kiln A/B disk?)");
  }
  return grubenv::read(path);
}

// The slot a reimage writes when the disk is not the running system's: the other one
// than the first good slot in the order (the one worth protecting), else the other
// than the one that boots next.
char
offline_target(const slots::BootEnv& env)
{
  for (char s : env.order) {
    if (env.slot(s).state == "good") {
      return slots::other_slot(s);
    }
  }
  return slots::other_slot(env.next_boot().slot);
}

// Re-reads the booted slot and refuses when it is `target` (the last check before the
// device is opened or the boot pointer moves).
void
recheck_not_booted(const slots::Gpt& gpt, const DiskOptions& disk, char target)
{
  auto booted = booted_slot(gpt, disk.booted, disk.force);
  if (booted && *booted == target) {
    throw Error(part_label(target), "is the booted slot; kiln-node never writes the running system");
  }
}

struct WriteStats {
  std::uint64_t written = 0;
  std::uint64_t skipped = 0;
  std::uint64_t zeroed = 0;
};

// Streams the mapped ranges from `next` (the packed data, in bmap order) to `io`,
// comparing each chunk with what is there (equal chunks are not written) and hashing
// each range against the bmap. Unmapped blocks inside ImageSize are made zero.
WriteStats
write_ranges(const bmap::Bmap& map, PartitionIo& io, const std::function<void(char*, std::size_t)>& next,
             const Progress& progress, const std::string& source)
{
  WriteStats stats;
  std::vector<char> data(k_chunk);
  std::vector<char> have(k_chunk);
  const std::uint64_t total = map.mapped_bytes();
  std::uint64_t done = 0;
  std::uint64_t gap_start = 0;
  bool fault_armed = true;
  for (const auto& range : map.ranges) {
    std::uint64_t offset = map.offset_of(range);
    std::uint64_t left = map.length_of(range);
    if (offset > gap_start) {
      stats.zeroed += io.ensure_zero(gap_start, offset - gap_start);
    }
    gap_start = offset + left;
    // The comparison reads of this range overlap with the writes before them.
    io.prefetch(offset, left);
    crypto::Sha256 hash;
    while (left > 0) {
      util::check_interrupted();
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, k_chunk));
      next(data.data(), n);
      hash.update(data.data(), n);
      io.pread_exact(have.data(), n, offset);
      if (std::memcmp(have.data(), data.data(), n) == 0) {
        stats.skipped += n;
      } else {
        io.pwrite_all(data.data(), n, offset);
        stats.written += n;
      }
      offset += n;
      left -= n;
      done += n;
      if (progress) {
        progress(done, total);
      }
      if (fault_armed && done * 2 >= total) {
        fault_armed = false;
        io.sync();
        fault_point("mid-write");
      }
    }
    std::string digest = hash.hex_digest();
    if (digest != range.sha256) {
      throw Error(source, "checksum mismatch in blocks " + std::to_string(range.first) + "-" +
                            std::to_string(range.last) + ": sha256 " + digest + ", the bmap says " + range.sha256);
    }
  }
  if (map.image_size > gap_start) {
    stats.zeroed += io.ensure_zero(gap_start, map.image_size - gap_start);
  }
  return stats;
}

// Reads every mapped range back from the device (caches dropped first) and compares
// it with the bmap.
void
verify_ranges(const bmap::Bmap& map, PartitionIo& io)
{
  io.drop_cache();
  std::vector<char> buffer(k_chunk);
  for (const auto& range : map.ranges) {
    std::uint64_t offset = map.offset_of(range);
    std::uint64_t left = map.length_of(range);
    crypto::Sha256 hash;
    while (left > 0) {
      util::check_interrupted();
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, k_chunk));
      io.pread_exact(buffer.data(), n, offset);
      hash.update(buffer.data(), n);
      offset += n;
      left -= n;
    }
    std::string digest = hash.hex_digest();
    if (digest != range.sha256) {
      throw Error(io.name(), "read-back verification failed in blocks " + std::to_string(range.first) + "-" +
                               std::to_string(range.last) + ": the device holds sha256 " + digest +
                               ", the bmap says " + range.sha256);
    }
  }
}

// tries= in kiln-boot's /grub/kiln-ab.conf (the recipe's ab.tries, written by the
// builder), else the default.
unsigned
configured_tries(const fs::path& boot_root)
{
  fs::path conf = boot_root / "grub" / "kiln-ab.conf";
  if (!present(conf)) {
    return slots::k_default_tries;
  }
  std::istringstream lines(util::read_file(conf));
  for (std::string line; std::getline(lines, line);) {
    if (line.size() == 7 && line.rfind("tries=", 0) == 0 && line[6] >= '1' && line[6] <= '9') {
      return static_cast<unsigned>(line[6] - '0');
    }
  }
  return slots::k_default_tries;
}

std::optional<crypto::TrustStore>
load_trust(bool verify, const fs::path& dir)
{
  if (!verify) {
    return std::nullopt;
  }
  return crypto::TrustStore::load(dir);
}

} // namespace

json
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
    if (!mounted.empty() || boot_mount_in_place || std::chrono::steady_clock::now() > deadline ||
        lock.try_shared()) {
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
  json j;
  j["disk"] = disk.disk.string();
  j["in_progress"] = in_progress;
  j["booted"] = booted ? json(slot_str(*booted)) : json(nullptr);
  j["order"] = env.order_text;
  j["slots"] = {{"A", slot_json(env.a)}, {"B", slot_json(env.b)}};
  j["slots"]["A"]["partuuid"] = gpt.by_label(slots::k_part_a).partuuid;
  j["slots"]["B"]["partuuid"] = gpt.by_label(slots::k_part_b).partuuid;
  j["next_boot"] = next_boot_json(env);
  j["highest_version"] = highest;
  json dcos;
  dcos["installed"] = present(under(root, slots::k_dcos_stamp));
  dcos["failed"] = present(under(root, slots::k_dcos_failed));
  auto role = recorded_dcos_role(root);
  dcos["role"] = role ? json(*role) : json(nullptr);
  dcos["stamp"] = std::string(slots::k_dcos_stamp);
  dcos["failed_marker"] = std::string(slots::k_dcos_failed);
  j["dcos"] = dcos;
  return j;
}

json
reimage(const ReimageOptions& options)
{
  std::optional<crypto::TrustStore> trust = load_trust(options.verify_signature, options.trust_dir);
  if (options.tries && (*options.tries < 1 || *options.tries > slots::k_max_tries)) {
    throw UsageError("--tries", "must be 1.." + std::to_string(slots::k_max_tries));
  }

  // Everything that can refuse does so before the disk is touched.
  bundle::Reader reader(options.source, options.source_options);
  bundle::Verified verified = reader.verify(trust ? &*trust : nullptr);
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
  // The target opened (O_EXCL on a partition device: refused while mounted) before the
  // grubenv marks it empty, so a slot in use is refused with the boot state unchanged.
  recheck_not_booted(gpt, options.disk, target);
  PartitionIo io(gpt, part, true);
  // From here on the slot is being changed: first make sure it can never boot.
  grubenv::update(envfile, [&](grubenv::Env& env) { slots::set_empty(env, target); });
  fault_point("after-invalidate");

  WriteStats stats = write_ranges(
    map, io,
    [&](char* buffer, std::size_t size) {
      std::size_t done = 0;
      while (done < size) {
        std::size_t n = reader.read_data(buffer + done, size - done);
        if (n == 0) {
          throw Error(options.source, "rootfs.data ends early");
        }
        done += n;
      }
    },
    options.progress, options.source);
  char probe = 0;
  if (reader.read_data(&probe, 1) != 0) { // end of data: whole-data digest, no trailing members
    throw Error(options.source, "rootfs.data is longer than the bmap maps");
  }
  io.sync();
  fault_point("before-verify");
  verify_ranges(map, io);
  fault_point("before-switch");
  recheck_not_booted(gpt, options.disk, target);

  grubenv::Env after = grubenv::update(envfile, [&](grubenv::Env& env) {
    slots::set_trial(env, target, tries, verified.manifest_sha256, verified.manifest.name);
    slots::record_version(env, verified.manifest.version);
    if (test_hooks().fault == "during-switch") {
      // A crash in the middle of the update: the new block is half-written to the
      // temporary file and never renamed.
      std::string block = grubenv::serialize(env);
      util::Fd torn = util::open_file(envfile.parent_path() / ".grubenv.kiln-node-torn", O_WRONLY | O_CREAT | O_TRUNC);
      util::write_all(torn.get(), std::string_view(block).substr(0, block.size() / 2), "torn grubenv");
      ::fsync(torn.get());
      fault_point("during-switch");
    }
  });
  slots::BootEnv now = slots::read_boot_env(after);

  json j;
  j["slot"] = slot_str(target);
  j["partition"] = io.name();
  j["name"] = verified.manifest.name;
  j["version"] = verified.manifest.version;
  j["highest_version"] = slots::highest_version(after);
  j["digest"] = verified.manifest_sha256;
  j["key_id"] = verified.key_id.empty() ? json(nullptr) : json(verified.key_id);
  j["tries"] = tries;
  j["image_size"] = map.image_size;
  j["mapped_bytes"] = map.mapped_bytes();
  j["written_bytes"] = stats.written;
  j["skipped_bytes"] = stats.skipped;
  j["zeroed_bytes"] = stats.zeroed;
  j["resumes"] = reader.resumes();
  j["next_boot"] = next_boot_json(now);
  return j;
}

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

json
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
  json j = {{"from", slot_str(from)}, {"to", slot_str(slots::other_slot(from))}, {"next_boot", next_boot_json(now)}};
  if (!problem.empty()) {
    j["warning"] = "rollback: " + problem + "; rolled back anyway (--force)";
  }
  return j;
}

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

json
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
  return {{"slot", slot_str(*booted)}, {"state", "good"}, {"next_boot", next_boot_json(now)}};
}

json
install(const InstallOptions& options)
{
  std::optional<crypto::TrustStore> trust = load_trust(options.verify_signature, options.trust_dir);
  const std::string& source = options.source;
  std::string file_name = source.substr(source.find_last_of('/') + 1);
  std::string dir_prefix = source.substr(0, source.size() - file_name.size());
  std::string stem = file_name.substr(0, file_name.find_last_of('.'));
  std::string bmap_source = options.bmap.empty() ? source + ".bmap" : options.bmap;
  std::string manifest_source =
    options.manifest.empty() ? dir_prefix + stem + ".manifest.json" : options.manifest;

  // Manifest, signature, bmap: all checked before the disk is opened.
  std::string manifest_text = *bundle::read_small(manifest_source, 64u << 20, false, options.source_options);
  std::string key_id;
  if (trust) {
    auto sig_text = bundle::read_small(manifest_source + ".sig", 64u << 10, true, options.source_options);
    std::optional<crypto::Signature> sig;
    if (sig_text) {
      sig = bundle::parse_signature(*sig_text, manifest_source + ".sig");
    }
    if (!sig) {
      throw crypto::VerificationError(crypto::Refusal::not_signed, manifest_source,
                                      "not signed: no " + manifest_source + ".sig");
    }
    key_id = trust->verify(manifest_source, manifest_text, sig);
  }
  manifest::Manifest m = manifest::parse_manifest(manifest_text, manifest_source);
  std::string bmap_name = bmap_source.substr(bmap_source.find_last_of('/') + 1);
  const manifest::File* image_file = nullptr;
  const manifest::File* bmap_file = nullptr;
  for (const auto& f : m.files) {
    if (f.name == file_name) {
      image_file = &f;
    }
    if (f.name == bmap_name && f.role == "bmap") {
      bmap_file = &f;
    }
  }
  if (image_file == nullptr || bmap_file == nullptr) {
    throw crypto::VerificationError(crypto::Refusal::file_missing, manifest_source,
                                    "does not list both " + file_name + " and " + bmap_name);
  }
  std::string bmap_text = *bundle::read_small(bmap_source, 256u << 20, false, options.source_options);
  if (crypto::sha256_hex(bmap_text) != bmap_file->sha256 || bmap_text.size() != bmap_file->size) {
    throw crypto::VerificationError(crypto::Refusal::file_digest, bmap_source,
                                    "sha256 " + crypto::sha256_hex(bmap_text) + ", but the manifest lists " +
                                      bmap_file->sha256);
  }
  bmap::Bmap map = bmap::parse(bmap_text, bmap_source);
  if (map.image_size != image_file->size) {
    throw crypto::VerificationError(crypto::Refusal::file_size, bmap_source,
                                    "maps an image of " + std::to_string(map.image_size) +
                                      " bytes, but the manifest lists " + file_name + " with " +
                                      std::to_string(image_file->size));
  }

  // The whole disk as one "partition".
  util::Fd probe = util::open_file(options.disk, O_RDONLY);
  slots::Gpt whole;
  whole.disk = options.disk;
  whole.disk_size = slots::device_size(probe.get(), options.disk.string());
  probe = util::Fd();
  if (map.image_size > whole.disk_size) {
    throw Error(options.disk.string(), "too small: " + std::to_string(whole.disk_size) + " bytes, the image needs " +
                                         std::to_string(map.image_size));
  }
  slots::Partition all;
  all.label = "disk";
  all.size = whole.disk_size;
  struct stat st {};
  ::stat(options.disk.c_str(), &st);
  int flags = O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0);
  int fd = ::open(options.disk.c_str(), flags);
  if (fd < 0) {
    int err = errno;
    throw Error(options.disk.string(), err == EBUSY ? "in use (a partition is mounted?)" : errno_text(err));
  }
  ::close(fd); // the O_EXCL probe: nothing of this disk is mounted
  PartitionIo io(whole, all, true);

  // One ranged request per mapped range; a dropped connection resumes inside it.
  std::size_t index = 0;
  std::unique_ptr<bundle::Stream> stream;
  std::uint64_t range_left = 0;
  WriteStats stats = write_ranges(
    map, io,
    [&](char* buffer, std::size_t size) {
      std::size_t done = 0;
      while (done < size) {
        if (range_left == 0) {
          const bmap::Range& range = map.ranges.at(index++);
          range_left = map.length_of(range);
          stream = bundle::open_stream(source, map.offset_of(range), range_left, options.source_options);
        }
        std::size_t n = stream->read(buffer + done, static_cast<std::size_t>(std::min<std::uint64_t>(size - done, range_left)));
        if (n == 0) {
          throw Error(source, "ends early");
        }
        done += n;
        range_left -= n;
      }
    },
    options.progress, source);
  io.sync();
  fault_point("before-verify");
  verify_ranges(map, io);
  // A disk larger than the image: the backup GPT moves to its end and kiln-data grows
  // (the partition; its file system grows at first boot, kiln-grow-data.service). The
  // primary table is written last.
  json grown = {{"changed", false}};
  if (whole.disk_size > map.image_size) {
    slots::Gpt image_gpt = slots::read_gpt(options.disk);
    util::Fd rw = util::open_file(options.disk, O_RDWR | O_CLOEXEC);
    grown = grow_data_partition(rw.get(), options.disk, image_gpt.sector_size, whole.disk_size);
  }
  // The disk's own GUIDs, grub.cfg following (node/identity): every disk written from
  // this image differs from the image and from each other.
  json identity = give_own_guids(options.disk, random_bytes16);
  if (S_ISBLK(st.st_mode)) {
    util::run({"blockdev", "--rereadpt", options.disk.string()}); // best effort: the new table
  }
  return {{"disk", options.disk.string()},        {"name", m.name},
          {"data_partition", grown},              {"identity", identity},
          {"digest", crypto::sha256_hex(manifest_text)}, {"key_id", key_id.empty() ? json(nullptr) : json(key_id)},
          {"image_size", map.image_size},          {"mapped_bytes", map.mapped_bytes()},
          {"written_bytes", stats.written},        {"skipped_bytes", stats.skipped},
          {"zeroed_bytes", stats.zeroed}};
}

} // namespace kiln::node
