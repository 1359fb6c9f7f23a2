#include "core/node/node.hpp"

#include "core/crypto/sha256.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/node/dcos_version.hpp"
#include "core/node/disk.hpp"
#include "core/node/grow.hpp"
#include "core/node/health.hpp"
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
#include <thread>
#include <sys/stat.h>
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
class DiskLock {
public:
  explicit DiskLock(const fs::path& disk) : m_fd(util::open_file(disk, O_RDONLY))
  {
    if (::flock(m_fd.get(), LOCK_EX | LOCK_NB) != 0) {
      throw Error(disk.string(), "another kiln-node is working on this disk");
    }
  }

private:
  util::Fd m_fd;
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
  auto booted = booted_slot(gpt, disk.booted);
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
  slots::Gpt gpt = slots::read_gpt(disk.disk);
  auto booted = booted_slot(gpt, disk.booted);
  slots::BootEnv env;
  {
    BootFs boot(gpt, booted.has_value() && !disk.booted, false);
    env = slots::read_boot_env(read_env(boot.grubenv()));
  }
  json j;
  j["disk"] = disk.disk.string();
  j["booted"] = booted ? json(slot_str(*booted)) : json(nullptr);
  j["order"] = env.order_text;
  j["slots"] = {{"A", slot_json(env.a)}, {"B", slot_json(env.b)}};
  j["slots"]["A"]["partuuid"] = gpt.by_label(slots::k_part_a).partuuid;
  j["slots"]["B"]["partuuid"] = gpt.by_label(slots::k_part_b).partuuid;
  j["next_boot"] = next_boot_json(env);
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

  slots::Gpt gpt = slots::read_gpt(options.disk.disk);
  DiskLock lock(options.disk.disk);
  auto booted = booted_slot(gpt, options.disk.booted);
  BootFs boot(gpt, booted.has_value() && !options.disk.booted, true);
  fs::path envfile = boot.grubenv();
  slots::BootEnv before = slots::read_boot_env(read_env(envfile));
  char target = booted ? slots::other_slot(*booted) : offline_target(before);
  unsigned tries = options.tries.value_or(configured_tries(boot.root()));
  const slots::Partition& part = gpt.by_label(part_label(target));
  if (map.image_size > part.size) {
    throw Error(options.source, "the image (" + std::to_string(map.image_size) + " bytes) is larger than slot " +
                                  slot_str(target) + " (" + std::to_string(part.size) + " bytes)");
  }

  // From here on the slot is being changed: first make sure it can never boot.
  grubenv::update(envfile, [&](grubenv::Env& env) { slots::set_empty(env, target); });
  fault_point("after-invalidate");
  recheck_not_booted(gpt, options.disk, target);
  PartitionIo io(gpt, part, true);

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
  slots::Gpt gpt = slots::read_gpt(disk.disk);
  DiskLock lock(disk.disk);
  auto booted = booted_slot(gpt, disk.booted);
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
  slots::Gpt gpt = slots::read_gpt(options.disk.disk);
  auto booted = booted_slot(gpt, options.disk.booted);
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

namespace {

struct Remover {
  json removed = json::array();
  json skipped = json::array(); // mount points: never crossed

  // Removes `path` (not following symlinks) without leaving its file system; a
  // directory that is a mount point is emptied but kept.
  void remove(const fs::path& path, bool keep_top)
  {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      return;
    }
    if (S_ISDIR(st.st_mode)) {
      struct stat parent {};
      bool mount_point = ::lstat(path.parent_path().c_str(), &parent) == 0 && parent.st_dev != st.st_dev;
      empty_dir(path, st.st_dev);
      if (!keep_top && !mount_point) {
        std::error_code ec;
        fs::remove(path, ec);
        if (ec) {
          throw Error(path.string(), "cannot remove: " + ec.message());
        }
      }
    } else {
      std::error_code ec;
      fs::remove(path, ec);
      if (ec) {
        throw Error(path.string(), "cannot remove: " + ec.message());
      }
    }
    removed.push_back(path.string());
  }

  void empty_dir(const fs::path& dir, dev_t dev)
  {
    std::error_code ec;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      entries.push_back(it->path());
    }
    if (ec) {
      throw Error(dir.string(), "cannot read: " + ec.message());
    }
    for (const auto& e : entries) {
      struct stat st {};
      if (::lstat(e.c_str(), &st) != 0) {
        continue;
      }
      if (S_ISDIR(st.st_mode) && st.st_dev != dev) {
        skipped.push_back(e.string()); // another file system mounted here (a volume)
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        empty_dir(e, dev);
      }
      fs::remove(e, ec);
      if (ec && !(S_ISDIR(st.st_mode) && ec == std::errc::directory_not_empty)) {
        throw Error(e.string(), "cannot remove: " + ec.message());
      }
    }
  }
};

bool
is_dcos_unit_name(const std::string& name)
{
  auto ends = [&](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (name.rfind("dcos.target", 0) == 0) {
    return true; // dcos.target, dcos.target.wants/
  }
  return name.rfind("dcos-", 0) == 0 && (ends(".service") || ends(".socket") || ends(".timer"));
}

// The agent's MOUNT volumes: the directories /dcos/volume* under `root` (symlinks are
// not volumes and are never followed), sorted.
std::vector<fs::path>
dcos_volumes(const fs::path& root)
{
  std::vector<fs::path> found;
  std::error_code ec;
  for (fs::directory_iterator it(under(root, slots::k_dcos_volume_dir), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(slots::k_dcos_volume_prefix, 0) == 0 && it->is_directory(ec) &&
        !it->is_symlink(ec)) {
      found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

} // namespace

json
wipe_dcos(const WipeOptions& options)
{
  const fs::path& root = options.root;
  Remover r;
  for (const char* p : {"/etc/mesosphere", "/opt/mesosphere", "/var/lib/mesos", "/var/lib/dcos", "/run/dcos",
                        "/run/mesos"}) {
    // The state directories live on kiln-data, bind-mounted into place (abi.hpp): emptied,
    // kept, so the bind mount finds its mount point at the next boot.
    std::string_view path(p);
    bool state = path == "/var/lib/mesos" || path == "/var/lib/dcos";
    r.remove(under(root, p), state);
    if (state) {
      // Their home on kiln-data, when it is not the same directory (bind mounts not in
      // place, e.g. a root mounted elsewhere with kiln-data under it).
      fs::path home = under(root, std::string(slots::k_data_mount) + "/" + fs::path(p).filename().string());
      struct stat a {};
      struct stat b {};
      bool same = ::stat(home.c_str(), &a) == 0 && ::stat(under(root, p).c_str(), &b) == 0 && a.st_dev == b.st_dev &&
                  a.st_ino == b.st_ino;
      if (!same) {
        r.remove(home, true);
      }
    }
  }
  for (const char* dir : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}) {
    fs::path units = under(root, dir);
    std::error_code ec;
    if (!fs::is_directory(units, ec)) {
      continue;
    }
    std::vector<fs::path> found;
    for (fs::directory_iterator it(units, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (is_dcos_unit_name(name)) {
        found.push_back(it->path());
      } else if (it->is_directory(ec) && !it->is_symlink(ec) &&
                 (name.size() > 6 && (name.rfind(".wants") == name.size() - 6 ||
                                      (name.size() > 9 && name.rfind(".requires") == name.size() - 9)))) {
        for (fs::directory_iterator w(it->path(), ec), wend; !ec && w != wend; w.increment(ec)) {
          if (is_dcos_unit_name(w->path().filename().string())) {
            found.push_back(w->path());
          }
        }
      }
    }
    for (const auto& f : found) {
      r.remove(f, false);
    }
  }
  r.remove(under(root, slots::k_dcos_stamp), false);
  r.remove(under(root, slots::k_dcos_failed), false);
  r.remove(under(root, "/etc/profile.d/dcos.sh"), false); // the installer's link to add_dcos_path.sh
  json volumes = json::array();
  for (const fs::path& v : dcos_volumes(root)) {
    volumes.push_back(v.string());
    if (options.wipe_volumes) {
      r.remove(v, true); // emptied, kept: usually a mount point of its own
    }
  }
  if (!options.keep_data) {
    r.remove(under(root, "/var/lib/docker"), true);
    fs::path log = under(root, "/var/log");
    std::error_code ec;
    std::vector<fs::path> logs;
    for (fs::directory_iterator it(log, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename() != "kiln") { // kiln's own logs tell what happened before
        logs.push_back(it->path());
      }
    }
    for (const auto& l : logs) {
      r.remove(l, false);
    }
  }
  return {{"root", root.string()},
          {"keep_data", options.keep_data},
          {"removed", r.removed},
          {"mount_points_skipped", r.skipped},
          {"volumes_kept", options.wipe_volumes ? json::array() : volumes},
          {"volumes_wiped", options.wipe_volumes ? volumes : json::array()}};
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
  if (S_ISBLK(st.st_mode)) {
    util::run({"blockdev", "--rereadpt", options.disk.string()}); // best effort: the new table
  }
  return {{"disk", options.disk.string()},        {"name", m.name},
          {"data_partition", grown},
          {"digest", crypto::sha256_hex(manifest_text)}, {"key_id", key_id.empty() ? json(nullptr) : json(key_id)},
          {"image_size", map.image_size},          {"mapped_bytes", map.mapped_bytes()},
          {"written_bytes", stats.written},        {"skipped_bytes", stats.skipped},
          {"zeroed_bytes", stats.zeroed}};
}

} // namespace kiln::node
