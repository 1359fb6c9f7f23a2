// The A/B whole disk's partition table (abi.hpp order: bios, esp, boot, a, b, data):
// sizes rounded to MiB, 1 MiB aligned, disk and partition GUIDs derived from the stage
// key (so the same key gives the same table), and the sfdisk script that writes it.
#pragma once

#include "core/recipe/model.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::ab {

struct Part {
  std::string name; // PARTLABEL
  std::string type; // GPT type GUID
  std::uint64_t start = 0; // bytes
  std::uint64_t size = 0;
  std::string guid;
};

struct Layout {
  std::string disk_guid;
  std::uint64_t disk_size = 0;
  std::vector<Part> parts;
  const Part& at(std::string_view name) const; // throws for an unknown name
};

std::uint64_t round_mib(std::uint64_t bytes);

// Derived, stable GUID (lower case, RFC 4122 version 4 layout) for `what` under `key`.
std::string derived_guid(const std::string& key, const std::string& what);

// The table for `ab` with slots of `slot_size` bytes (a data size of 0 means 4 GiB).
Layout plan_layout(const recipe::AbLayout& ab, const std::string& key, std::uint64_t slot_size);

// sfdisk's input for the table (sectors of 512 bytes, first-lba 2048).
std::string sfdisk_script(const Layout& layout);

} // namespace kiln::ab
