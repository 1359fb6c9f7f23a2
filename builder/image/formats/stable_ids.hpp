// The fields qemu-img stamps into a container from the clock or a random source, set
// from the build's identity instead, so that the same final layer always gives the same
// bytes (README, "Reproducible builds"):
//   vmdk  the descriptor's content id (CID=, random in qemu 7.2's block/vmdk.c, drawn
//         twice: at create and again at the first write, each printed as "%x"), and the
//         stale text vmdk_write_cid leaves past the descriptor's end when the second is
//         shorter;
//   vhd   the footer's time stamp (time(NULL)), unique id (random) and, from those, its
//         checksum (block/vpc.c). A fixed VHD has its footer only at the end; a dynamic
//         one also at offset 0: both copies are set.
// qcow2 and raw need nothing: qemu-img writes them from the content alone.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kiln::formats {

// Bytes derived from an identity (a stage key, a file system UUID) for one purpose: the
// sha256 of both. Everything kiln would otherwise draw at random comes from here.
std::array<unsigned char, 32> stable_bytes(const std::string& purpose, const std::string& identity);

// An RFC 4122 name-based (version 5 layout) UUID from stable_bytes.
std::array<unsigned char, 16> stable_uuid(const std::string& purpose, const std::string& identity);

// The CID for `identity` (8 hex digits, never ffffffff or fffffffe, which VMware reads
// as "no parent" and "invalid").
std::string vmdk_cid(const std::string& identity);

// A VMDK descriptor's sectors (`area`) made independent of what qemu drew: its text (up
// to the first NUL) with CID= set from `identity` and parentCID=ffffffff, then zeros to
// the area's end, whatever qemu left past the text. Throws Error("VMDK descriptor", ...)
// for a text that is not qemu's (no header line, not one CID or parentCID of 1 to 8 hex
// digits, a parent image) or that leaves no room.
std::string canonical_vmdk_descriptor(const std::string& area, const std::string& identity);

// Rewrites a VMDK's embedded descriptor as canonical_vmdk_descriptor. Throws
// Error(path, ...) when the file is no VMDK with such a descriptor.
void pin_vmdk(const std::filesystem::path& path, const std::string& identity);

// Sets the footer's time stamp (`epoch`, seconds since 1970; none: the VHD epoch
// 2000-01-01), its unique id (from `identity`) and its checksum. Throws Error(path, ...)
// when the file has no valid VHD footer.
void pin_vhd(const std::filesystem::path& path, const std::string& identity, std::optional<std::int64_t> epoch);

// Pins `file` by its format ("vmdk", "vhd"; every other format: nothing to do).
void pin_output(const std::filesystem::path& file, const std::string& format, const std::string& identity,
                std::optional<std::int64_t> epoch);

} // namespace kiln::formats
