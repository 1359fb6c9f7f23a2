#include "image/ab/disk_layout.hpp"

#include "core/crypto/sha256.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"

namespace kiln::ab {

namespace {

constexpr std::uint64_t k_mib = 1ull << 20;
constexpr std::uint64_t k_default_data_size = 4ull << 30;

// GPT partition types.
constexpr const char* k_type_bios = "21686148-6449-6E6F-744E-656564454649";
constexpr const char* k_type_esp = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
// Plain "Linux filesystem data" for the rest: the discoverable root/var types would let
// systemd-gpt-auto-generator mount partitions kiln mounts itself.
constexpr const char* k_type_linux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

} // namespace

const Part&
Layout::at(std::string_view name) const
{
  for (const auto& p : parts) {
    if (p.name == name) {
      return p;
    }
  }
  throw Error("layout ab", "no partition " + std::string(name));
}

std::uint64_t
round_mib(std::uint64_t bytes)
{
  return (bytes + k_mib - 1) / k_mib * k_mib;
}

std::string
derived_guid(const std::string& key, const std::string& what)
{
  std::string h = crypto::sha256_hex("kiln-guid:" + key + ":" + what).substr(0, 32);
  h[12] = '4';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

Layout
plan_layout(const recipe::AbLayout& ab, const std::string& key, std::uint64_t slot_size)
{
  Layout l;
  l.disk_guid = derived_guid(key, "disk");
  std::uint64_t at = k_mib; // first-lba 2048: the GPT and alignment
  auto add = [&](std::string_view name, const char* type, std::uint64_t size) {
    l.parts.push_back({std::string(name), type, at, size, derived_guid(key, std::string(name))});
    at += size;
  };
  add(slots::k_part_bios, k_type_bios, k_mib);
  add(slots::k_part_esp, k_type_esp, round_mib(ab.esp_size));
  add(slots::k_part_boot, k_type_linux, round_mib(ab.boot_size));
  add(slots::k_part_a, k_type_linux, slot_size);
  add(slots::k_part_b, k_type_linux, slot_size);
  add(slots::k_part_data, k_type_linux, round_mib(ab.data_size != 0 ? ab.data_size : k_default_data_size));
  l.disk_size = at + k_mib; // the backup GPT
  return l;
}

std::string
sfdisk_script(const Layout& l)
{
  std::string script = "label: gpt\nlabel-id: " + l.disk_guid + "\nfirst-lba: 2048\nunit: sectors\n\n";
  for (const auto& p : l.parts) {
    script += "start=" + std::to_string(p.start / 512) + ", size=" + std::to_string(p.size / 512) + ", type=" + p.type +
              ", uuid=" + p.guid + ", name=\"" + p.name + "\"\n";
  }
  return script;
}

} // namespace kiln::ab
