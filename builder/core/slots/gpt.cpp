#include "core/slots/gpt.hpp"

#include "core/slots/abi.hpp"

#include "core/util/bytes.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::slots {

using util::le32;
using util::le64;

namespace {

// Why two partitions overlap, or empty when none do.
std::string
overlap(const std::vector<Partition>& parts)
{
  std::vector<const Partition*> sorted;
  for (const auto& p : parts) {
    sorted.push_back(&p);
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first_lba < b->first_lba; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->first_lba <= sorted[i - 1]->last_lba) {
      return "partitions " + std::to_string(sorted[i - 1]->number) + " (" + sorted[i - 1]->label + ") and " +
             std::to_string(sorted[i]->number) + " (" + sorted[i]->label + ") overlap";
    }
  }
  return {};
}

// Parses the header at `lba` and its entries; returns an empty string when valid,
// else why not.
std::string
parse_at(int fd, Gpt& gpt, std::uint64_t lba)
{
  std::vector<unsigned char> sector(gpt.sector_size);
  if (!read_at(fd, sector.data(), sector.size(), lba * gpt.sector_size)) {
    return "cannot read the header at LBA " + std::to_string(lba);
  }
  if (std::memcmp(sector.data(), k_gpt_signature, sizeof k_gpt_signature) != 0) {
    return "no GPT header at LBA " + std::to_string(lba);
  }
  std::uint32_t header_size = le32(&sector[12]);
  if (header_size < 92 || header_size > gpt.sector_size) {
    return "GPT header at LBA " + std::to_string(lba) + " has a bad size";
  }
  std::uint32_t stored = le32(&sector[16]);
  std::memset(&sector[16], 0, 4);
  if (crc32(sector.data(), header_size) != stored) {
    return "GPT header at LBA " + std::to_string(lba) + " fails its CRC32";
  }
  if (le64(&sector[24]) != lba) {
    return "GPT header at LBA " + std::to_string(lba) + " names another LBA as its own";
  }
  std::uint64_t entries_lba = le64(&sector[72]);
  std::uint32_t count = le32(&sector[80]);
  std::uint32_t entry_size = le32(&sector[84]);
  std::uint32_t entries_crc = le32(&sector[88]);
  if (count > k_gpt_max_entries || entry_size < 128 || entry_size > 4096 || entry_size % 8 != 0) {
    return "GPT header at LBA " + std::to_string(lba) + " has an implausible entry array";
  }
  std::vector<unsigned char> entries(static_cast<std::size_t>(count) * entry_size);
  if (!read_at(fd, entries.data(), entries.size(), entries_lba * gpt.sector_size)) {
    return "cannot read the partition entries at LBA " + std::to_string(entries_lba);
  }
  if (crc32(entries.data(), entries.size()) != entries_crc) {
    return "GPT partition entries at LBA " + std::to_string(entries_lba) + " fail their CRC32";
  }
  std::uint64_t first_usable = le64(&sector[40]);
  std::uint64_t last_usable = le64(&sector[48]);
  gpt.disk_guid = guid_text(&sector[56]);
  gpt.partitions.clear();
  static const unsigned char zero[16] = {};
  for (std::uint32_t i = 0; i < count; ++i) {
    const unsigned char* e = &entries[static_cast<std::size_t>(i) * entry_size];
    if (std::memcmp(e, zero, 16) == 0) {
      continue; // unused entry
    }
    Partition p;
    p.number = i + 1;
    p.type_guid = guid_text(e);
    p.partuuid = guid_text(e + 16);
    p.first_lba = le64(e + 32);
    p.last_lba = le64(e + 40);
    for (int c = 0; c < 36; ++c) {
      unsigned unit = static_cast<unsigned>(e[56 + 2 * c]) | static_cast<unsigned>(e[57 + 2 * c]) << 8;
      if (unit == 0) {
        break;
      }
      p.label += unit < 0x80 ? static_cast<char>(unit) : '?';
    }
    if (p.last_lba < p.first_lba) {
      return "partition " + std::to_string(p.number) + " ends before it starts";
    }
    if (p.first_lba < first_usable || p.last_lba > last_usable) {
      return "partition " + std::to_string(p.number) + " (" + p.label + ") lies outside the usable LBAs " +
             std::to_string(first_usable) + "-" + std::to_string(last_usable);
    }
    p.offset = p.first_lba * gpt.sector_size;
    p.size = (p.last_lba - p.first_lba + 1) * gpt.sector_size;
    if (p.offset + p.size > gpt.disk_size) {
      return "partition " + std::to_string(p.number) + " (" + p.label + ") extends past the end of the disk";
    }
    gpt.partitions.push_back(std::move(p));
  }
  return overlap(gpt.partitions);
}

} // namespace

std::string
guid_text(const unsigned char* p)
{
  static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s += '-';
    }
    unsigned char b = p[order[i]];
    s += hex[b >> 4];
    s += hex[b & 0xf];
  }
  return s;
}

bool
read_at(int fd, void* buffer, std::size_t size, std::uint64_t offset)
{
  auto* out = static_cast<char*>(buffer);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::uint32_t
crc32(const void* data, std::size_t size, std::uint32_t crc)
{
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) {
        c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      }
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  }
  return ~crc;
}

std::uint64_t
device_size(int fd, const std::string& subject)
{
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw Error(subject, "stat failed: " + errno_text(errno));
  }
  if (S_ISBLK(st.st_mode)) {
    std::uint64_t size = 0;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      throw Error(subject, "cannot read the device size: " + errno_text(errno));
    }
    return size;
  }
  if (S_ISREG(st.st_mode)) {
    return static_cast<std::uint64_t>(st.st_size);
  }
  throw Error(subject, "neither a block device nor a disk image file");
}

Gpt
read_gpt(const fs::path& disk)
{
  const std::string subject = disk.string();
  util::Fd fd = util::open_file(disk, O_RDONLY);
  Gpt gpt;
  gpt.disk = disk;
  gpt.disk_size = device_size(fd.get(), subject);
  struct stat st {};
  ::fstat(fd.get(), &st);
  gpt.block_device = S_ISBLK(st.st_mode);
  std::vector<std::uint32_t> sizes;
  if (gpt.block_device) {
    int logical = 0;
    if (::ioctl(fd.get(), BLKSSZGET, &logical) == 0 && logical > 0) {
      sizes.push_back(static_cast<std::uint32_t>(logical));
    }
  }
  for (std::uint32_t s : {512u, 4096u}) {
    if (std::find(sizes.begin(), sizes.end(), s) == sizes.end()) {
      sizes.push_back(s);
    }
  }
  std::string why;
  for (std::uint32_t size : sizes) {
    gpt.sector_size = size;
    if (gpt.disk_size < 3ull * size) {
      continue;
    }
    std::string primary = parse_at(fd.get(), gpt, 1);
    if (primary.empty()) {
      return gpt;
    }
    std::string backup = parse_at(fd.get(), gpt, gpt.disk_size / size - 1);
    if (backup.empty()) {
      gpt.from_backup = true;
      return gpt;
    }
    if (why.empty() || primary.rfind("no GPT header", 0) != 0) {
      why = primary + "; backup: " + backup;
    }
  }
  throw Error(subject, "no valid GPT partition table (" + why + ")");
}

const Partition*
Gpt::find_label(std::string_view label) const noexcept
{
  for (const auto& p : partitions) {
    if (p.label == label) {
      return &p;
    }
  }
  return nullptr;
}

const Partition&
Gpt::by_label(std::string_view label) const
{
  const Partition* found = nullptr;
  for (const auto& p : partitions) {
    if (p.label == label) {
      if (found != nullptr) {
        throw Error(disk.string(), "two partitions are labelled " + std::string(label) + " (" +
                                     std::to_string(found->number) + " and " + std::to_string(p.number) + ")");
      }
      found = &p;
    }
  }
  if (found == nullptr) {
    throw Error(disk.string(), "no partition labelled " + std::string(label) + ": not a kiln A/B disk");
  }
  return *found;
}

} // namespace kiln::slots

namespace kiln::slots {

Gpt
read_ab_gpt(const fs::path& disk)
{
  Gpt gpt = read_gpt(disk);
  const Partition& a = gpt.by_label(k_part_a);
  const Partition& b = gpt.by_label(k_part_b);
  if (a.size != b.size) {
    throw Error(disk.string(), "slots of different sizes (" + std::string(k_part_a) + " " + std::to_string(a.size) +
                                 " bytes, " + std::string(k_part_b) + " " + std::to_string(b.size) +
                                 "): not a kiln A/B layout");
  }
  return gpt;
}

} // namespace kiln::slots
