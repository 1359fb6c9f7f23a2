// The one writer of a slot bundle's bytes (member order, headers, the signature
// document), shared by write_bundle (bundle.cpp) and sign_bundle (sign.cpp) so that the
// same members always give the same file. Internal to core/bundle.
#pragma once

#include "core/crypto/signing.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::bundle::detail {

namespace fs = std::filesystem;

inline constexpr std::size_t k_chunk = 1 << 20; // read and copy buffers of rootfs.data

// The manifest.json.sig member for the exact bytes `manifest_text` signed with `key`
// (Ed25519 is deterministic: the same bytes and key give the same text); sets `key_id`.
std::string signature_text(std::string_view manifest_text, const crypto::PrivateKey& key, std::string& key_id);

// Receives the next bytes of rootfs.data.
using DataSink = std::function<void(const char*, std::size_t)>;

struct Members {
  std::string_view manifest_text;
  std::optional<std::string_view> signature_text; // manifest.json.sig, when signed
  std::string_view bmap_text;
  std::uint64_t data_size = 0; // bytes of rootfs.data
  // Passes exactly data_size bytes of rootfs.data to its sink, in order; may throw.
  std::function<void(const DataSink&)> fill_data;
};

// Writes the bundle file `target` atomically (a temporary file beside it, renamed at the
// end; nothing appears on failure): the members in the format's order, each with owner
// 0:0, mode 0644 and mtime 0. Returns the file's size. Throws Error(target, reason).
std::uint64_t write_file(const fs::path& target, const Members& members);

} // namespace kiln::bundle::detail
