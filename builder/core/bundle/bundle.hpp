// Slot bundles (NAME.kbundle, see core/slots/abi.hpp): the unit kiln-node reimages a
// slot from. An uncompressed pax tar whose members come in exactly this order:
//   manifest.json      canonical kiln manifest; files rootfs.bmap (role bmap) and
//                      rootfs.data (role rootfs-data) with sha256 and size
//   manifest.json.sig  optional detached signature ({"algorithm","key_id","signature"})
//   rootfs.bmap        bmap 2.0 of the root file system image
//   rootfs.data        the bmap's mapped ranges concatenated in bmap order, each
//                      clipped at ImageSize: a packed sparse image
// The order lets a reader check the signature, the bmap digest and the bmap itself
// before it reads a byte of rootfs.data, and stream rootfs.data straight to a slot.
//
// The manifest's digest (sha256 of the manifest.json bytes) identifies a bundle: it is
// what kiln-node records as kiln_X_digest.
//
// Members are written with owner 0:0, mode 0644 and mtime 0, so the same image, base
// manifest and key give the same bundle bytes; sign_bundle (core/bundle/sign.hpp) gives
// those bytes from the unsigned bundle.
#pragma once

#include "core/bmap/bmap.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kiln::bundle {

namespace fs = std::filesystem;

inline constexpr std::string_view k_role_bmap = "bmap";
inline constexpr std::string_view k_role_data = "rootfs-data";

// DIR/NAME.kbundle.
fs::path bundle_path(const fs::path& dir, const std::string& name);

struct BundleInfo {
  fs::path path; // the bundle written
  std::string manifest_sha256; // sha256 of the manifest.json member (kiln_X_digest)
  std::string manifest_text; // that member's exact bytes
  std::string key_id; // signer; empty when unsigned
  manifest::Manifest manifest; // as written (files filled in)
  bmap::Bmap bmap; // the rootfs image's map
  std::uint64_t size = 0; // bytes of the .kbundle file
};

// Writes a bundle from the raw root file system image `rootfs_image` atomically (a
// temporary file beside the target, renamed at the end; nothing appears on failure).
// `out_path` is the bundle file, or an existing directory to write NAME.kbundle into.
// `base` supplies name, recipe name/digest (required by manifest validation), inputs,
// stages, packages, sbom and libguestfs_version; kiln_version defaults to this kiln's;
// its files are replaced by rootfs.bmap and rootfs.data. With `key` the manifest is
// signed (member manifest.json.sig). Throws Error(path, reason).
BundleInfo write_bundle(const fs::path& rootfs_image, const fs::path& out_path, manifest::Manifest base,
                        const crypto::PrivateKey* key);

// Parses a detached signature document ({"algorithm":"ed25519","key_id",...}); throws
// crypto::VerificationError(bad_signature) for a malformed one.
crypto::Signature parse_signature(std::string_view text, const std::string& subject);

// ---------------------------------------------------------------------------------
// Byte sources: a local file or an http(s)/file URL, read front to back.

struct SourceOptions {
  std::string ca_file; // extra CA bundle (PEM) instead of the system trust; TLS is always verified
  long connect_timeout_s = 30;
  long stall_timeout_s = 60; // no byte for this long: the connection counts as dropped
  int retries = 5; // reconnects after a dropped connection (each resumes with Range)
  long retry_delay_ms = 500; // doubled after every retry
};

// The first readable CA bundle among the well-known places of EL, Debian, SUSE and
// others (https sources use it when --ca-file is not given); empty when there is none.
std::string default_ca_file();
// Those places, comma-separated, for messages.
std::string well_known_ca_files_text();

// True for http://, https:// and file:// sources.
bool is_url(const std::string& source);

// A sequential reader of `source` from byte `offset` on, `length` bytes (or to the end).
// For URLs a dropped connection or stall is resumed with a Range request from the
// first byte not yet delivered, up to options.retries times; a server that ignores
// the Range is handled by discarding the bytes already delivered.
class Stream {
public:
  virtual ~Stream() = default;
  // Reads up to `size` bytes; 0 only at the end. Throws Error(source, reason).
  virtual std::size_t read(char* buffer, std::size_t size) = 0;
  // The bytes of the whole source when known (a local file, Content-Length), else 0.
  virtual std::uint64_t total_size() const = 0;
  // Connections resumed so far (tests and reports).
  virtual int resumes() const = 0;
};

std::unique_ptr<Stream> open_stream(const std::string& source, std::uint64_t offset = 0,
                                    std::optional<std::uint64_t> length = std::nullopt,
                                    const SourceOptions& options = {});

// The largest manifest, signature and bmap kiln-node reads, as bundle members or as the
// files beside a whole-disk image (core/bundle/verified_source.hpp): the same limits
// for both, so neither source accepts what the other refuses.
inline constexpr std::size_t k_manifest_limit = 64u << 20; // SBOMs of big images are large
inline constexpr std::size_t k_signature_limit = 64u << 10;
inline constexpr std::size_t k_bmap_limit = 256u << 20;

// The whole content of a small source (a manifest, a bmap, a signature), at most
// `limit` bytes; nullopt when it does not exist (no such file, HTTP 404) and
// `missing_ok`. Throws Error otherwise.
std::optional<std::string> read_small(const std::string& source, std::size_t limit, bool missing_ok,
                                      const SourceOptions& options = {});

// ---------------------------------------------------------------------------------
// Reading a bundle as a stream.

struct Verified {
  manifest::Manifest manifest;
  std::string manifest_sha256;
  std::string key_id; // empty when the signature was not checked
  bmap::Bmap bmap;
};

// Opens a bundle (a path or URL) and reads its leading members. The constructor
// reads manifest.json, manifest.json.sig (when present) and rootfs.bmap, and stops at
// the header of rootfs.data; nothing of rootfs.data is read until read_data().
// Member order, names and sizes are checked as the format demands (Error otherwise).
class Reader {
public:
  Reader(const std::string& source, const SourceOptions& options = {});
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& source() const noexcept;
  const std::string& manifest_text() const noexcept;
  const std::optional<std::string>& signature_text() const noexcept;
  const std::string& bmap_text() const noexcept;
  std::uint64_t data_size() const noexcept; // size of the rootfs.data member

  // Verifies before any data is read: the signature against `trust` (nullptr: not
  // checked, the signature member is ignored), then the
  // manifest (parse, name, files rootfs.bmap and rootfs.data), the bmap's bytes
  // against the manifest's sha256/size, the bmap itself (checksum, ranges), and that
  // rootfs.data's member size equals the manifest's size and the bmap's mapped bytes.
  // Throws crypto::VerificationError (not_signed, unknown_key, revoked_key,
  // bad_signature, file_size, file_digest) or Error for a malformed bundle.
  Verified verify(const crypto::TrustStore* trust);

  // Reads the next bytes of rootfs.data; 0 at its end. At the end the sha256 of all
  // of rootfs.data is compared with the manifest (after verify()): a mismatch throws
  // VerificationError(file_digest); trailing members after rootfs.data are an Error.
  std::size_t read_data(char* buffer, std::size_t size);

  // Moves the whole-data sha256 off read_data to hash_data, which the caller feeds with
  // every byte read_data gave, in order (the write engine does it on its writing thread
  // while its reading thread reads and checks the ranges). The end-of-data comparison
  // with the manifest stays where it is. Call before the first read_data.
  void defer_data_digest();
  void hash_data(const char* data, std::size_t size);

  // Connections resumed so far.
  int resumes() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace kiln::bundle
