// How a slot write starts, and what lets an interrupted one resume without reading the
// slot: a small journal on kiln-boot beside the grubenv (grub/kiln-write-A|B) recording
// the bundle being written and how many of its mapped bytes are synced on the slot.
//
// The comparison (read each chunk of the slot, write only what differs) pays only when
// the slot already holds the data: a rewrite of the image the grubenv says the slot
// holds. Anything else is written straight; a resume skips the journalled bytes (still
// read and hashed from the source) and writes the rest straight. The read-back after
// the write checks every mapped byte either way, and a failed read-back drops the
// journal, so a journal can never make a bad slot pass.
#pragma once

#include "core/node/report.hpp"
#include "core/slots/state.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kiln::node {

struct WriteJournal {
  std::string digest; // the bundle's manifest sha256
  std::uint64_t bytes = 0; // mapped bytes on the slot, synced
};

struct WritePlan {
  WriteMode mode = WriteMode::straight;
  std::uint64_t resume_from = 0; // WriteMode::resume: mapped bytes not written again
};

// The plan for writing the bundle `digest` (`mapped` mapped bytes) into a slot whose
// grubenv record is `slot`, with `journal` found beside the grubenv: compare when the
// record says the slot holds this bundle, else resume this bundle's journal, else
// straight.
WritePlan plan_write(const slots::SlotEnv& slot, const std::optional<WriteJournal>& journal, const std::string& digest,
                     std::uint64_t mapped);

// The journal file of one slot in kiln-boot's grub directory.
class JournalFile {
public:
  JournalFile(const std::filesystem::path& grub_dir, char slot);

  const std::filesystem::path& path() const { return m_path; }
  // nullopt when there is none, or it cannot be read or parsed (then nothing resumes).
  std::optional<WriteJournal> read() const;
  // Atomic and synced: a crash leaves the old record or the new one.
  void record(const WriteJournal& journal) const;
  void remove() const;
  // The same where a failure changes nothing (after the switch: plan_write trusts the
  // grubenv's record over a stale journal); false when it stayed.
  bool try_remove() const noexcept;

private:
  std::filesystem::path m_path;
};

} // namespace kiln::node
