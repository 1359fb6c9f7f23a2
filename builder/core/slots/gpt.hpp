// GPT partition tables read natively: the primary header and its entry array, both
// checked against their CRC32s, else the backup header at the disk's last sector.
// kiln-node finds the A/B partitions by PARTLABEL (abi.hpp) on a block device, a loop
// device or a plain disk image file alike.
//
// Why not libblkid/libfdisk: kiln-node needs four fields of a format that fits on one
// page, on image files as much as on devices, in installer ramdisks where every
// shared library counts; a reader of ~150 lines with both CRC checks is smaller than
// the glue, and it reports exactly which check failed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::slots {

namespace fs = std::filesystem;

struct Partition {
  unsigned number = 0; // 1-based index in the entry array (the kernel's partition number)
  std::string label; // PARTLABEL (UTF-16LE name, ASCII here; other characters as '?')
  std::string partuuid; // unique partition GUID, lower case
  std::string type_guid; // lower case
  std::uint64_t first_lba = 0;
  std::uint64_t last_lba = 0;
  std::uint64_t offset = 0; // bytes from the disk's start
  std::uint64_t size = 0; // bytes
};

struct Gpt {
  fs::path disk;
  bool block_device = false;
  std::uint32_t sector_size = 512;
  std::uint64_t disk_size = 0;
  std::string disk_guid;
  bool from_backup = false; // the primary header or entries were damaged
  std::vector<Partition> partitions; // used entries only, in entry order

  // The partition with PARTLABEL `label`; throws Error(disk, ...) when there is none
  // or more than one.
  const Partition& by_label(std::string_view label) const;
  const Partition* find_label(std::string_view label) const noexcept;
};

// GPT's on-disk pieces, shared by the reader and gpt_grow: the header signature, the
// entry count bound, and a full pread (false on error or EOF). Little-endian fields:
// core/util/bytes.hpp.
inline constexpr char k_gpt_signature[8] = {'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'};
inline constexpr std::uint32_t k_gpt_max_entries = 1024;
bool read_at(int fd, void* buffer, std::size_t size, std::uint64_t offset);

// A GUID's 16 bytes as GPT stores them (mixed-endian: the first three fields little-
// endian) in the usual lower-case text form.
std::string guid_text(const unsigned char* p);

// CRC-32 (IEEE 802.3, reflected), as GPT uses.
std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

// Reads the GPT of `disk` (see the file comment). Throws Error(disk, reason).
Gpt read_gpt(const fs::path& disk);

// read_gpt for a kiln A/B disk: also refuses slots kiln-a and kiln-b of different
// sizes. (read_gpt itself refuses overlapping partitions and partitions outside the
// header's usable LBAs, in either copy.)
Gpt read_ab_gpt(const fs::path& disk);

// Size in bytes of a regular file or block device; throws Error.
std::uint64_t device_size(int fd, const std::string& subject);

} // namespace kiln::slots
