// The A/B partition table of kiln's small test disks, as an sfdisk script (abi.hpp's
// order and PARTLABELs, kiln-data the rest of the disk), and a disk image file made
// with it.
#pragma once

#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <filesystem>
#include <string>

namespace kiln::test {

inline std::string
ab_sfdisk_script(unsigned slot_mib)
{
  return "label: gpt\n"
         "size=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=kiln-bios\n"
         "size=2MiB, type=U, name=kiln-esp\n"
         "size=8MiB, name=kiln-boot\n"
         "size=" +
         std::to_string(slot_mib) +
         "MiB, name=kiln-a\n"
         "size=" +
         std::to_string(slot_mib) +
         "MiB, name=kiln-b\n"
         "name=kiln-data\n";
}

// `path` made `size` (truncate's syntax) and partitioned by `script` (sfdisk).
inline std::filesystem::path
partitioned_disk(const std::filesystem::path& path, const std::string& size, const std::string& script)
{
  require_program("sfdisk", "fdisk");
  util::run_checked({"truncate", "-s", size, path.string()});
  util::RunOptions o;
  o.stdin_data = script;
  util::run_checked({"sfdisk", "-q", path.string()}, o);
  return path;
}

} // namespace kiln::test
