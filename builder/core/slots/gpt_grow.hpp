// Growing a GPT disk's last partition to the end of a larger disk: the backup header
// and entry array move to the disk's end, the last usable LBA follows, and kiln-data
// (which must be the last partition) ends at the last 1 MiB boundary before it.
// Shared by `kiln-node install` (image smaller than the disk) and `kiln-node grow-data`
// (first boot). The planning is pure (typed table in, sectors to write out); the I/O
// half reads the primary table and writes the plan in a crash-safe order: the backup
// copy first, then the primary, each flushed, so a power cut leaves either the old
// primary (still valid, naming the old backup) or the new one.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::slots {

struct GptEntry {
  std::array<unsigned char, 16> type{}; // all zero: unused
  std::array<unsigned char, 16> unique{};
  std::uint64_t first_lba = 0;
  std::uint64_t last_lba = 0;
  std::uint64_t attributes = 0;
  std::array<unsigned char, 72> name{}; // UTF-16LE
  std::vector<unsigned char> rest; // bytes past 128 when entry_size is larger
  bool used() const noexcept;
  std::string label() const; // ASCII view of name (others as '?')
};

// One copy of a GPT (header + entries), as kiln reads it from the primary location.
struct GptTable {
  std::uint32_t sector_size = 512;
  std::uint32_t revision = 0x00010000;
  std::uint32_t header_size = 92;
  std::uint64_t my_lba = 1;
  std::uint64_t alternate_lba = 0;
  std::uint64_t first_usable = 0;
  std::uint64_t last_usable = 0;
  std::array<unsigned char, 16> disk_guid{};
  std::uint64_t entries_lba = 2;
  std::uint32_t entry_size = 128;
  std::vector<GptEntry> entries; // all of them, used or not (entry_count = size())
  std::vector<unsigned char> header_extra; // header bytes 92..header_size (reserved, kept)

  std::uint64_t entry_sectors() const;
};

// Parses one header sector and its entry array (both CRC-checked); throws
// Error(subject, reason).
GptTable parse_gpt_table(const std::vector<unsigned char>& header_sector, const std::vector<unsigned char>& entries,
                         std::uint32_t sector_size, const std::string& subject);
// The header sector (sector_size bytes, CRCs computed) of `t` as its primary (backup =
// false) or its backup copy, and the entry array's bytes.
std::vector<unsigned char> header_sector(const GptTable& t, bool backup);
std::vector<unsigned char> entry_bytes(const GptTable& t);

struct SectorWrite {
  std::uint64_t lba = 0;
  std::vector<unsigned char> bytes;
};

struct GrowPlan {
  bool changed = false; // false: the table already reaches the disk's end
  GptTable table; // the grown table (the input when unchanged)
  unsigned partition = 0; // 1-based number of the grown partition
  std::uint64_t old_last_lba = 0, new_last_lba = 0; // of that partition
  std::uint64_t old_last_usable = 0, new_last_usable = 0;
  std::uint64_t old_backup_lba = 0; // the old backup header (zeroed after the primary is written)
  // In crash-safe order: backup entries, backup header, primary entries, primary header.
  std::vector<SectorWrite> backup_writes;
  std::vector<SectorWrite> primary_writes;
};

inline constexpr std::uint64_t k_partition_alignment = 1ull << 20;

// Plans the growth of the partition labelled `label` of `primary` onto a disk of
// `disk_sectors` sectors. Refuses (Error(subject, ...)) when there is no such partition
// or more than one, when it is not the last partition, or when the disk is smaller
// than the table says (shrunk). A partition never shrinks.
GrowPlan plan_gpt_growth(const GptTable& primary, std::uint64_t disk_sectors, std::string_view label,
                         const std::string& subject);

// I/O: the primary table of the disk open as `fd` (sector size `sector_size`).
GptTable read_primary_table(int fd, std::uint32_t sector_size, const std::string& subject);
// Writes a changed plan: backup writes, fsync, primary writes, fsync, then zeroes the old
// backup header (now inside the partition) when it moved, and fsyncs again.
void write_gpt_growth(int fd, const GrowPlan& plan, const std::string& subject);

} // namespace kiln::slots
