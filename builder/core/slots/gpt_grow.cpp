#include "core/slots/gpt_grow.hpp"

#include "core/slots/gpt.hpp"
#include "core/util/bytes.hpp"
#include "core/util/fs.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace kiln::slots {

using util::le32;
using util::le64;
using util::put32;
using util::put64;

namespace {

void
read_exact(int fd, unsigned char* out, std::size_t size, std::uint64_t offset, const std::string& subject)
{
  if (!read_at(fd, out, size, offset)) {
    throw Error(subject, "cannot read " + std::to_string(size) + " bytes at offset " + std::to_string(offset));
  }
}

void
write_exact(int fd, const std::vector<unsigned char>& data, std::uint64_t offset, const std::string& subject)
{
  util::pwrite_full(fd, reinterpret_cast<const char*>(data.data()), data.size(), offset,
                    subject + ": the partition table");
}

void
flush(int fd, const std::string& subject)
{
  if (::fsync(fd) != 0) {
    throw Error(subject, "fsync of the partition table failed: " + errno_text(errno));
  }
}

} // namespace

bool
GptEntry::used() const noexcept
{
  return std::any_of(type.begin(), type.end(), [](unsigned char c) { return c != 0; });
}

std::string
GptEntry::label() const
{
  std::string s;
  for (std::size_t c = 0; c + 1 < name.size(); c += 2) {
    unsigned unit = static_cast<unsigned>(name[c]) | static_cast<unsigned>(name[c + 1]) << 8;
    if (unit == 0) {
      break;
    }
    s += unit < 0x80 ? static_cast<char>(unit) : '?';
  }
  return s;
}

std::uint64_t
GptTable::entry_sectors() const
{
  std::uint64_t bytes = static_cast<std::uint64_t>(entries.size()) * entry_size;
  return (bytes + sector_size - 1) / sector_size;
}

GptTable
parse_gpt_table(const std::vector<unsigned char>& sector, const std::vector<unsigned char>& entries,
                std::uint32_t sector_size, const std::string& subject)
{
  if (sector.size() < 92 || std::memcmp(sector.data(), k_gpt_signature, sizeof k_gpt_signature) != 0) {
    throw Error(subject, "no GPT header");
  }
  GptTable t;
  t.sector_size = sector_size;
  t.revision = le32(&sector[8]);
  t.header_size = le32(&sector[12]);
  if (t.header_size < 92 || t.header_size > sector.size()) {
    throw Error(subject, "the GPT header has a bad size");
  }
  std::vector<unsigned char> copy(sector.begin(), sector.begin() + t.header_size);
  std::memset(&copy[16], 0, 4);
  if (crc32(copy.data(), copy.size()) != le32(&sector[16])) {
    throw Error(subject, "the GPT header fails its CRC32");
  }
  t.my_lba = le64(&sector[24]);
  t.alternate_lba = le64(&sector[32]);
  t.first_usable = le64(&sector[40]);
  t.last_usable = le64(&sector[48]);
  std::copy(&sector[56], &sector[72], t.disk_guid.begin());
  t.entries_lba = le64(&sector[72]);
  std::uint32_t count = le32(&sector[80]);
  t.entry_size = le32(&sector[84]);
  if (count > k_gpt_max_entries || t.entry_size < 128 || t.entry_size > 4096 || t.entry_size % 8 != 0) {
    throw Error(subject, "the GPT header has an implausible entry array");
  }
  if (entries.size() < static_cast<std::size_t>(count) * t.entry_size) {
    throw Error(subject, "the GPT entry array is short");
  }
  if (crc32(entries.data(), static_cast<std::size_t>(count) * t.entry_size) != le32(&sector[88])) {
    throw Error(subject, "the GPT partition entries fail their CRC32");
  }
  t.header_extra.assign(sector.begin() + 92, sector.begin() + t.header_size);
  for (std::uint32_t i = 0; i < count; ++i) {
    const unsigned char* e = &entries[static_cast<std::size_t>(i) * t.entry_size];
    GptEntry entry;
    std::copy(e, e + 16, entry.type.begin());
    std::copy(e + 16, e + 32, entry.unique.begin());
    entry.first_lba = le64(e + 32);
    entry.last_lba = le64(e + 40);
    entry.attributes = le64(e + 48);
    std::copy(e + 56, e + 128, entry.name.begin());
    entry.rest.assign(e + 128, e + t.entry_size);
    t.entries.push_back(std::move(entry));
  }
  return t;
}

std::vector<unsigned char>
entry_bytes(const GptTable& t)
{
  std::vector<unsigned char> out(t.entries.size() * t.entry_size, 0);
  for (std::size_t i = 0; i < t.entries.size(); ++i) {
    const GptEntry& entry = t.entries[i];
    unsigned char* e = &out[i * t.entry_size];
    std::copy(entry.type.begin(), entry.type.end(), e);
    std::copy(entry.unique.begin(), entry.unique.end(), e + 16);
    put64(e + 32, entry.first_lba);
    put64(e + 40, entry.last_lba);
    put64(e + 48, entry.attributes);
    std::copy(entry.name.begin(), entry.name.end(), e + 56);
    std::copy(entry.rest.begin(), entry.rest.begin() + std::min<std::size_t>(entry.rest.size(), t.entry_size - 128),
              e + 128);
  }
  return out;
}

std::vector<unsigned char>
header_sector(const GptTable& t, bool backup)
{
  std::vector<unsigned char> s(t.sector_size, 0);
  std::memcpy(s.data(), k_gpt_signature, sizeof k_gpt_signature);
  put32(&s[8], t.revision);
  put32(&s[12], t.header_size);
  put64(&s[24], backup ? t.alternate_lba : t.my_lba);
  put64(&s[32], backup ? t.my_lba : t.alternate_lba);
  put64(&s[40], t.first_usable);
  put64(&s[48], t.last_usable);
  std::copy(t.disk_guid.begin(), t.disk_guid.end(), &s[56]);
  put64(&s[72], backup ? t.alternate_lba - t.entry_sectors() : t.entries_lba);
  put32(&s[80], static_cast<std::uint32_t>(t.entries.size()));
  put32(&s[84], t.entry_size);
  std::vector<unsigned char> entries = entry_bytes(t);
  put32(&s[88], crc32(entries.data(), entries.size()));
  std::copy(t.header_extra.begin(), t.header_extra.end(), &s[92]);
  put32(&s[16], crc32(s.data(), t.header_size));
  return s;
}

GrowPlan
plan_gpt_growth(const GptTable& primary, std::uint64_t disk_sectors, std::string_view label, const std::string& subject)
{
  const std::uint64_t entry_sectors = primary.entry_sectors();
  if (disk_sectors < primary.alternate_lba + 1 || disk_sectors < entry_sectors + 3) {
    throw Error(subject, "the disk (" + std::to_string(disk_sectors) +
                           " sectors) is smaller than its partition table "
                           "says (backup header at LBA " +
                           std::to_string(primary.alternate_lba) + "): shrunk or truncated; refusing to touch it");
  }
  const std::uint64_t last_usable = disk_sectors - 2 - entry_sectors;
  if (last_usable < primary.last_usable) {
    throw Error(subject, "the disk is smaller than its partition table's last usable LBA " +
                           std::to_string(primary.last_usable) + ": shrunk; refusing to touch it");
  }
  std::size_t index = primary.entries.size();
  for (std::size_t i = 0; i < primary.entries.size(); ++i) {
    if (primary.entries[i].used() && primary.entries[i].label() == label) {
      if (index != primary.entries.size()) {
        throw Error(subject, "two partitions are labelled " + std::string(label) + " (" + std::to_string(index + 1) +
                               " and " + std::to_string(i + 1) + ")");
      }
      index = i;
    }
  }
  if (index == primary.entries.size()) {
    throw Error(subject, "no partition labelled " + std::string(label) + ": not a kiln A/B disk");
  }
  const GptEntry& part = primary.entries[index];
  for (std::size_t i = 0; i < primary.entries.size(); ++i) {
    const GptEntry& other = primary.entries[i];
    if (i != index && other.used() && other.last_lba >= part.first_lba) {
      throw Error(subject, std::string(label) + " (partition " + std::to_string(index + 1) +
                             ") is not the last partition: partition " + std::to_string(i + 1) + " (" + other.label() +
                             ") lies behind it; refusing to grow it");
    }
  }
  const std::uint64_t align = std::max<std::uint64_t>(1, k_partition_alignment / primary.sector_size);
  std::uint64_t end = (last_usable + 1) / align * align;
  end = end > 0 ? end - 1 : 0;
  end = std::max(end, part.last_lba);

  GrowPlan plan;
  plan.partition = static_cast<unsigned>(index + 1);
  plan.old_last_lba = part.last_lba;
  plan.new_last_lba = end;
  plan.old_last_usable = primary.last_usable;
  plan.new_last_usable = last_usable;
  plan.old_backup_lba = primary.alternate_lba;
  plan.table = primary;
  plan.changed = primary.alternate_lba != disk_sectors - 1 || primary.last_usable != last_usable ||
                 part.last_lba != end || primary.my_lba != 1;
  if (!plan.changed) {
    return plan;
  }
  GptTable& t = plan.table;
  t.my_lba = 1;
  t.alternate_lba = disk_sectors - 1;
  t.last_usable = last_usable;
  t.entries[index].last_lba = end;
  std::vector<unsigned char> entries = entry_bytes(t);
  entries.resize(entry_sectors * t.sector_size, 0);
  plan.backup_writes = {{t.alternate_lba - entry_sectors, entries}, {t.alternate_lba, header_sector(t, true)}};
  plan.primary_writes = {{t.entries_lba, entries}, {1, header_sector(t, false)}};
  return plan;
}

GptTable
read_primary_table(int fd, std::uint32_t sector_size, const std::string& subject)
{
  std::vector<unsigned char> sector(sector_size);
  read_exact(fd, sector.data(), sector.size(), sector_size, subject);
  if (std::memcmp(sector.data(), k_gpt_signature, sizeof k_gpt_signature) != 0) {
    throw Error(subject, "no primary GPT header at LBA 1");
  }
  std::uint32_t count = le32(&sector[80]);
  std::uint32_t entry_size = le32(&sector[84]);
  if (count > k_gpt_max_entries || entry_size < 128 || entry_size > 4096) {
    throw Error(subject, "the primary GPT header has an implausible entry array");
  }
  std::vector<unsigned char> entries(static_cast<std::size_t>(count) * entry_size);
  read_exact(fd, entries.data(), entries.size(), le64(&sector[72]) * sector_size, subject);
  GptTable t = parse_gpt_table(sector, entries, sector_size, subject + " (primary GPT)");
  if (t.my_lba != 1) {
    throw Error(subject, "the primary GPT header names LBA " + std::to_string(t.my_lba) + " as its own");
  }
  return t;
}

void
write_gpt_growth(int fd, const GrowPlan& plan, const std::string& subject)
{
  if (!plan.changed) {
    return;
  }
  const std::uint32_t ss = plan.table.sector_size;
  for (const auto& w : plan.backup_writes) {
    write_exact(fd, w.bytes, w.lba * ss, subject);
  }
  flush(fd, subject);
  for (const auto& w : plan.primary_writes) {
    write_exact(fd, w.bytes, w.lba * ss, subject);
  }
  flush(fd, subject);
  // The old backup header now lies inside the grown partition: no stale table there.
  if (plan.old_backup_lba != plan.table.alternate_lba && plan.old_backup_lba > plan.table.first_usable) {
    write_exact(fd, std::vector<unsigned char>(ss, 0), plan.old_backup_lba * ss, subject);
    flush(fd, subject);
  }
}

} // namespace kiln::slots
