// SHA-256 digests (OpenSSL EVP): incremental hashing, files and directory trees.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace kiln::crypto {

class Sha256 {
public:
  Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256();

  void update(std::string_view data);
  void update(const void* data, size_t size);
  // Lower-case hex digest; the object must not be updated afterwards.
  std::string hex_digest();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

std::string sha256_hex(std::string_view data);
// Digest of a file's content; throws Error(path, reason).
std::string sha256_file(const std::filesystem::path& path);
// Digest of a directory tree: every entry's relative path, type, permission bits,
// and content (files) or target (symlinks), in sorted order. Owners and times are
// not part of it: overlays are laid with the owner the recipe gives.
std::string sha256_tree(const std::filesystem::path& dir);

// True for exactly 64 lower-case hex digits.
bool is_sha256_hex(std::string_view text);

} // namespace kiln::crypto
