// Ed25519 signing keys, signatures and the trust store that decides which keys a
// node accepts. Plain keys only (no X.509): nothing here reads a clock or knows
// about expiry, so a signature verifies the same way today and in ten years.
//
// Key files: NAME.key is a PKCS#8 PEM private key (mode 0600), NAME.pub the
// SubjectPublicKeyInfo PEM public key (mode 0644); both work with `openssl pkey`.
// A key id is the lower-case hex sha256 of the DER SubjectPublicKeyInfo, i.e.
// `openssl pkey -pubin -in NAME.pub -outform DER | sha256sum`.
//
// Trust directory (e.g. /etc/kiln/trust.d): every `*.pem` file in it is a trusted
// public key (other files are ignored). Revocations live in DIR/revoked.list, in
// the same directory so that copying the directory copies its revocations:
//     # comment lines and blank lines are ignored
//     3f5a...e1   # one key id (64 hex digits) per line, optional trailing comment
// A revoked key is refused even when its *.pem file is still in the directory.
#pragma once

#include "core/util/error.hpp"

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

struct evp_pkey_st; // OpenSSL's EVP_PKEY

namespace kiln::crypto {

namespace fs = std::filesystem;

inline constexpr std::size_t k_ed25519_signature_size = 64;
inline constexpr const char* k_revocation_list_name = "revoked.list";

struct PkeyFree {
  void operator()(evp_pkey_st* key) const noexcept;
};

// An Ed25519 public key (move-only owner of an EVP_PKEY).
class PublicKey {
public:
  explicit PublicKey(std::unique_ptr<evp_pkey_st, PkeyFree> key) : m_key(std::move(key)) {}
  evp_pkey_st* get() const noexcept { return m_key.get(); }

private:
  std::unique_ptr<evp_pkey_st, PkeyFree> m_key;
};

// An Ed25519 private key (move-only owner of an EVP_PKEY).
class PrivateKey {
public:
  explicit PrivateKey(std::unique_ptr<evp_pkey_st, PkeyFree> key) : m_key(std::move(key)) {}
  evp_pkey_st* get() const noexcept { return m_key.get(); }
  // The matching public key.
  PublicKey public_key() const;

private:
  std::unique_ptr<evp_pkey_st, PkeyFree> m_key;
};

// Where generate_keypair() put the keys.
struct KeyPairFiles {
  fs::path private_key; // DIR/NAME.key
  fs::path public_key; // DIR/NAME.pub
  std::string key_id;
};

// A fresh random Ed25519 key (in memory only).
PrivateKey generate_key();

// Writes OUT_DIR/NAME.key (0600 from creation on) and OUT_DIR/NAME.pub (0644), each
// published atomically; refuses with Error when either already exists. NAME is
// [A-Za-z0-9._-]+ not starting with '.'; OUT_DIR must exist.
KeyPairFiles generate_keypair(const fs::path& out_dir, const std::string& name);

// PEM text of a key: PKCS#8 "PRIVATE KEY" / SubjectPublicKeyInfo "PUBLIC KEY".
std::string private_key_pem(const PrivateKey& key);
std::string public_key_pem(const PublicKey& key);

// Parse PEM text; throw Error(subject, reason) for non-PEM input, encrypted keys
// and keys of another type ("not an Ed25519 key (RSA)").
PrivateKey private_key_from_pem(std::string_view pem, const std::string& subject);
PublicKey public_key_from_pem(std::string_view pem, const std::string& subject);

// Read a PEM key file; errors name the path.
PrivateKey load_private_key(const fs::path& path);
PublicKey load_public_key(const fs::path& path);

// Lower-case hex sha256 of the DER SubjectPublicKeyInfo.
std::string key_id(const PublicKey& key);

// The 64-byte raw Ed25519 signature of `data` (PureEdDSA, the bytes themselves).
std::string sign(std::string_view data, const PrivateKey& key);

// True when `signature` is a valid signature of `data` by `key`; false for a bad or
// malformed signature. Never throws for bad input.
bool verify(std::string_view data, std::string_view signature, const PublicKey& key);

// Standard base64 (RFC 4648, padded, no line breaks). decode returns nullopt for
// anything that is not exactly that.
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

// Why verification refused a signed artefact. The names (refusal_name) are stable:
// `kiln verify-signature --json` prints them.
enum class Refusal {
  not_signed, // no signature at all
  unknown_key, // signed by a key the trust store does not hold
  revoked_key, // signed by a key listed in revoked.list
  bad_signature, // the signature does not match the content (tampered), or is malformed
  file_missing, // a file the manifest lists is absent
  file_size, // ... has another size
  file_digest, // ... has another sha256
};

std::string_view refusal_name(Refusal refusal);

// A verification refusal: an Error (exit status 1) that also says which kind.
class VerificationError : public Error {
public:
  VerificationError(Refusal refusal, std::string subject, std::string reason)
    : Error(std::move(subject), std::move(reason)), m_refusal(refusal)
  {}
  Refusal refusal() const noexcept { return m_refusal; }

private:
  Refusal m_refusal;
};

// A signature as carried beside a signed file: the signer's key id and the raw bytes.
struct Signature {
  std::string key_id;
  std::string bytes;
};

// The keys this host trusts, and the ones it revoked.
class TrustStore {
public:
  TrustStore() = default;

  // Loads DIR/*.pem and DIR/revoked.list (when present). Throws Error naming the bad
  // file for an unreadable directory, a file that is not an Ed25519 public key, a
  // malformed revocation line, or a directory without any key.
  static TrustStore load(const fs::path& dir);

  // Trusts `key`; `origin` (a file name) appears in messages. Returns the key id.
  std::string add_key(PublicKey key, std::string origin);
  // Revokes a key id (whether or not the key is in the store).
  void revoke(const std::string& id);

  bool trusts(const std::string& id) const { return m_keys.count(id) != 0 && !revoked(id); }
  bool revoked(const std::string& id) const { return m_revoked.count(id) != 0; }
  std::size_t size() const noexcept { return m_keys.size(); }
  const fs::path& dir() const noexcept { return m_dir; }

  // Checks `signature` over `data` and returns the id of the key that made it.
  // Throws VerificationError(not_signed | revoked_key | unknown_key | bad_signature)
  // with `subject` (the signed file) as its subject.
  std::string verify(const std::string& subject, std::string_view data,
                     const std::optional<Signature>& signature) const;

private:
  struct Entry {
    PublicKey key;
    std::string origin;
  };
  fs::path m_dir;
  std::map<std::string, Entry> m_keys;
  std::set<std::string> m_revoked;
};

// Parses revocation list text (format above); throws Error("SUBJECT:LINE", reason).
std::set<std::string> parse_revocation_list(std::string_view text, const std::string& subject);

} // namespace kiln::crypto
