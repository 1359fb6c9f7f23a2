// What kiln-node's commands (status, reimage, rollback, mark-good, install) share: the
// boot state as reports, the grubenv read, the trust store, the booted-slot re-check and
// the write engine's options. Internal to core/node.
#pragma once

#include "core/bmap/copy.hpp"
#include "core/bundle/verified_source.hpp"
#include "core/crypto/signing.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/node/disk.hpp"
#include "core/node/node.hpp"
#include "core/node/report.hpp"
#include "core/node/write_journal.hpp"
#include "core/slots/state.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace kiln::node::detail {

namespace fs = std::filesystem;

std::string slot_str(char slot);

std::string part_label(char slot);

// A slot's report without its partuuid (the grubenv does not hold it).
SlotReport slot_report(const slots::SlotEnv& s);

NextBoot next_boot_report(const slots::BootEnv& env);

WriteReport write_report(const bmap::Bmap& map, const bmap::WriteStats& stats, WriteMode mode);

grubenv::Env read_env(const fs::path& path);

// The slot a reimage writes when the disk is not the running system's: the other one
// than the first good slot in the order (the one worth protecting), else the other
// than the one that boots next.
char offline_target(const slots::BootEnv& env);

// Re-reads the booted slot and refuses when it is `target` (the last check before the
// device is opened or the boot pointer moves).
void recheck_not_booted(const slots::Gpt& gpt, const DiskOptions& disk, char target);

// The engine's options for a slot or disk write by `plan` (write_journal.hpp); with a
// journal, the synced progress of `digest` is recorded every k_checkpoint_bytes and at
// half the data, where `fault` is armed (Fault::mid_write).
bmap::WriteOptions write_options(PartitionIo& io, const Progress& progress, const std::string& source, Fault fault,
                                 const WritePlan& plan = {}, const JournalFile* journal = nullptr,
                                 const std::string& digest = {});

// A verified source's image written into `io` by `plan` and read back (a compare plan
// reads the slot back first and, when it matches, reads nothing of the source); `fault` is also
// armed before the read-back (Fault::before_verify). The source's digests are checked
// to its end before anything is read back. With a journal: the whole write recorded
// before the read-back, and the journal dropped when the read-back fails.
bmap::WriteStats write_and_verify(bundle::VerifiedSource& source, PartitionIo& io, const Progress& progress,
                                  const std::string& source_name, Fault fault, const WritePlan& plan,
                                  const JournalFile* journal);

// tries= in kiln-boot's /grub/kiln-ab.conf (the recipe's ab.tries, written by the
// builder), else the default.
unsigned configured_tries(const fs::path& boot_root);

std::optional<crypto::TrustStore> load_trust(bool verify, const fs::path& dir);

} // namespace kiln::node::detail
