// The build manifest NAME.manifest.json: what an image was made from (kiln and
// libguestfs versions, recipe digest, inputs, stage keys), the files it consists
// of (with sha256 and size), its packages and an SPDX SBOM. The manifest is the
// one signed document of a build: its signature covers every listed file through
// their digests.
//
// Canonical form (what write_manifest writes and what is signed): JSON with sorted
// keys, 2-space indent, a trailing newline:
//   {
//     "files": [{"format": "raw", "name": "node.img", "role": "image", "sha256": HEX, "size": N}],
//     "inputs": [{"kind": "base", "sha256": HEX, "source": URL}],
//     "kiln_manifest": 1,
//     "kiln_version": "0.1.0",
//     "libguestfs_version": "1.48.6",
//     "name": "node",
//     "packages": [{"arch": "x86_64", "name": "bash", "version": "4.2.46-34.el7"}],
//     "recipe": {"digest": HEX, "name": "node"},
//     "sbom": {SPDX 2.3 document} (omitted when absent),
//     "stages": [{"key": HEX, "name": "packages"}]
//   }
// File names are relative to the manifest's directory: no '/', not "." or "..".
//
// Detached signature, beside the manifest:
//   NAME.manifest.json.sig      {"algorithm": "ed25519", "key_id": HEX, "signature": BASE64}
//                               (canonical JSON as above; BASE64 of the 64 raw bytes)
//   NAME.manifest.json.sig.bin  the same 64 raw bytes, so that this checks it:
//     openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in NAME.manifest.json
//                     -sigfile NAME.manifest.json.sig.bin
// The signature is over the manifest file's exact bytes. Only the .sig file is read
// by verification; the .sig.bin file is a convenience copy.
#pragma once

#include "core/crypto/signing.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::manifest {

namespace fs = std::filesystem;

inline constexpr int k_manifest_format = 1;

struct Input {
  std::string kind; // base, file, unit, overlay, package, firstboot
  std::string source; // URL or local path
  std::string sha256; // empty when unpinned
};

struct StageKey {
  std::string name;
  std::string key;
};

struct File {
  std::string name; // relative to the manifest's directory
  std::string role; // image, bmap, kernel, initramfs, ipxe, rootfs, sbom, ...
  std::string format; // raw, qcow2, bmap, cpio.gz, ...
  std::string sha256;
  std::uint64_t size = 0;
};

struct Package {
  std::string name;
  std::string version; // as the package manager prints it (rpm: [EPOCH:]VERSION-RELEASE)
  std::string arch;
};

struct Manifest {
  std::string name; // image name: the manifest is NAME.manifest.json
  // The image's monotonic version (recipe `version:`, signed with the rest): kiln-node
  // refuses a bundle older than the highest it installed. 0 (the field absent): none.
  std::uint64_t version = 0;
  std::string kiln_version;
  std::string libguestfs_version;
  std::string recipe_name;
  std::string recipe_digest;
  std::vector<Input> inputs;
  std::vector<StageKey> stages;
  std::vector<File> files;
  std::vector<Package> packages;
  nlohmann::json sbom; // SPDX document, or null for none
};

// DIR/NAME.manifest.json, and the signature files beside a manifest.
fs::path manifest_path(const fs::path& dir, const std::string& name);
fs::path signature_path(const fs::path& manifest);
fs::path raw_signature_path(const fs::path& manifest);

// Describes an existing file for the manifest (name = its file name; sha256 and size
// read from disk); throws Error(path, reason).
File describe_file(const fs::path& path, std::string role, std::string format);

// Image names (the manifest's "name", which kiln-node stores in the grubenv):
// [A-Za-z0-9._-]{1,64}, not "." or "..". Refused when writing, signing and reading.
inline constexpr std::size_t k_max_image_name = 64;
bool valid_image_name(std::string_view name);
// Why `name` is not a valid image name (quotes it only when short, printable and
// without spaces; otherwise gives its length).
std::string image_name_problem(std::string_view name);

// Checks the model (names, digests, required fields); throws Error(subject, reason)
// naming the first problem.
void validate(const Manifest& manifest, const std::string& subject);

// Model <-> JSON. from_json validates and throws Error(subject, reason).
nlohmann::json to_json(const Manifest& manifest);
Manifest from_json(const nlohmann::json& json, const std::string& subject);

// The canonical text (see above) and its parser.
std::string canonical_text(const nlohmann::json& json);
Manifest parse_manifest(std::string_view text, const std::string& subject);
Manifest read_manifest(const fs::path& path);

// Validates and writes the canonical text atomically. A signature of an earlier
// manifest at `path` no longer applies, so its .sig and .sig.bin files are removed.
void write_manifest(const fs::path& path, const Manifest& manifest);

// Signs the manifest file's bytes (it must parse as a manifest) and writes
// PATH.sig.bin and PATH.sig atomically. Returns the signing key's id.
std::string sign_manifest(const fs::path& path, const crypto::PrivateKey& key);

// Reads PATH.sig; nullopt when it does not exist. Throws VerificationError
// (bad_signature) when it exists but is malformed.
std::optional<crypto::Signature> read_signature(const fs::path& manifest);

struct Verified {
  std::string key_id;
  Manifest manifest;
};

// Checks the manifest's signature against `trust`, then every listed file (exists,
// size, sha256). Throws crypto::VerificationError naming the first problem, or Error
// for a malformed manifest.
Verified verify_manifest(const fs::path& path, const crypto::TrustStore& trust);

} // namespace kiln::manifest
