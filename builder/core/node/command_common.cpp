// The helpers the kiln-node commands share (command_common.hpp).
#include "core/node/command_common.hpp"

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

namespace kiln::node::detail {

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

SlotReport
slot_report(const slots::SlotEnv& s)
{
  return SlotReport{s.state, s.tries, s.digest, s.name, {}};
}

NextBoot
next_boot_report(const slots::BootEnv& env)
{
  slots::BootPrediction p = env.next_boot();
  return NextBoot{p.slot, p.reason, p.tries_after};
}

WriteReport
write_report(const bmap::Bmap& map, const bmap::WriteStats& stats, WriteMode mode)
{
  return WriteReport{map.image_size, map.mapped_bytes(),    stats.written, stats.skipped, stats.zeroed,
                     mode,           stats.direct_read_back};
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

namespace {

// How often a journalled write syncs the slot and records its progress: a resume
// rewrites at most this much, and the syncs cost little at this spacing.
constexpr std::uint64_t k_checkpoint_bytes = 256ull << 20;

} // namespace

bmap::WriteOptions
write_options(PartitionIo& io, const Progress& progress, const std::string& source, Fault fault, const WritePlan& plan,
              const JournalFile* journal, const std::string& digest)
{
  bmap::WriteOptions o;
  o.compare = plan.mode == WriteMode::compare;
  o.resume_from = plan.mode == WriteMode::resume ? plan.resume_from : 0;
  o.progress = progress;
  o.source = source;
  if (journal != nullptr) {
    o.checkpoint_every = k_checkpoint_bytes;
    o.checkpoint = [journal, digest](std::uint64_t done) { journal->record({digest, done}); };
  }
  o.at_half = [&io, fault, journal, digest](std::uint64_t done) {
    io.sync();
    if (journal != nullptr) {
      journal->record({digest, done});
    }
    fault_point(fault, Fault::mid_write);
  };
  return o;
}

bmap::WriteStats
write_and_verify(bundle::VerifiedSource& source, PartitionIo& io, const Progress& progress,
                 const std::string& source_name, Fault fault, const WritePlan& plan, const JournalFile* journal)
{
  const bmap::Bmap& map = source.verified().bmap;
  const std::string& digest = source.verified().manifest_sha256;
  if (plan.mode == WriteMode::compare) {
    // The grubenv says the slot holds this image: read it back first. When every range
    // matches, nothing of the source is read (a bundle by URL is not even downloaded)
    // and nothing is written; else the write compares chunk by chunk.
    fault_point(fault, Fault::before_verify);
    if (!bmap::read_back(map, io)) {
      bmap::WriteStats stats;
      stats.skipped = map.mapped_bytes();
      stats.zeroed = bmap::zero_unmapped(map, io);
      io.sync();
      stats.direct_read_back = io.reads_directly();
      return stats;
    }
  }
  bmap::WriteOptions options = write_options(io, progress, source_name, fault, plan, journal, digest);
  options.consumed = [&](const char* data, std::size_t size) { source.consumed(data, size); };
  bmap::WriteStats stats = bmap::write_mapped(
    map, io, [&](char* buffer, std::size_t size) { source.read_mapped(buffer, size); }, options);
  source.finish();
  io.sync();
  if (journal != nullptr) {
    journal->record({digest, map.mapped_bytes()});
  }
  fault_point(fault, Fault::before_verify);
  try {
    bmap::verify_mapped(map, io);
  } catch (const Error&) {
    if (journal != nullptr) {
      journal->remove(); // the next run writes everything again
    }
    throw;
  }
  stats.direct_read_back = io.reads_directly();
  return stats;
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

} // namespace kiln::node::detail
