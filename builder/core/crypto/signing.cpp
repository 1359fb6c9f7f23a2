#include "core/crypto/signing.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/fs.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <unistd.h>
#include <vector>

namespace kiln::crypto {

void
PkeyFree::operator()(evp_pkey_st* key) const noexcept
{
  EVP_PKEY_free(key);
}

namespace {

struct BioFree {
  void operator()(BIO* bio) const noexcept { BIO_free_all(bio); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const noexcept { EVP_PKEY_CTX_free(ctx); }
};

using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// Drains the OpenSSL error queue into one line ("LIB: REASON; ...").
std::string
openssl_errors()
{
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    const char* lib = ERR_lib_error_string(code);
    const char* reason = ERR_reason_error_string(code);
    std::string item;
    if (reason != nullptr) {
      item = lib != nullptr ? std::string(lib) + ": " + reason : std::string(reason);
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof(buf));
      item = buf;
    }
    if (text.find(item) == std::string::npos) {
      text += (text.empty() ? "" : "; ") + item;
    }
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

BioPtr
memory_bio_for(std::string_view data, const std::string& subject)
{
  if (data.size() > static_cast<std::size_t>(INT_MAX)) {
    throw Error(subject, "key file too large");
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) {
    throw Error(subject, "cannot create OpenSSL memory BIO: " + openssl_errors());
  }
  return bio;
}

std::string
bio_contents(BIO* bio)
{
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

// Never prompt on the terminal for a passphrase: kiln runs unattended.
int
no_passphrase(char*, int, int, void*)
{
  return -1;
}

std::string
key_type_name(const EVP_PKEY* key)
{
  const char* name = EVP_PKEY_get0_type_name(key);
  return name != nullptr ? name : "unknown type";
}

void
require_ed25519(const EVP_PKEY* key, const std::string& subject)
{
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
    throw Error(subject, "not an Ed25519 key (" + key_type_name(key) + ")");
  }
}

bool
valid_key_name(const std::string& name)
{
  return !name.empty() && name.front() != '.' && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

// Publishes `data` at `target` with `mode` (set before any byte is written) and
// without ever replacing an existing file: the data goes to a temporary file that
// is then hard-linked to the target, which fails if the target exists.
void
publish_new_file(const fs::path& target, std::string_view data, unsigned mode)
{
  util::AtomicFile file(target, mode);
  file.write(data);
  if (::fsync(file.fd()) != 0) {
    throw Error(target.string(), "fsync failed: " + errno_text(errno));
  }
  if (::link(file.temp_path().c_str(), target.c_str()) != 0) {
    int err = errno;
    if (err == EEXIST) {
      throw Error(target.string(), "already exists; refusing to overwrite a key");
    }
    throw Error(target.string(), "cannot create: " + errno_text(err));
  }
  // `file` is not committed: its destructor removes the temporary name.
}

std::string
trim(std::string_view text)
{
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

} // namespace

PublicKey
PrivateKey::public_key() const
{
  // Round-trip through DER: the result holds no private material.
  int size = i2d_PUBKEY(m_key.get(), nullptr);
  if (size <= 0) {
    throw Error("key", "cannot encode public key: " + openssl_errors());
  }
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PUBKEY(m_key.get(), &out) != size) {
    throw Error("key", "cannot encode public key: " + openssl_errors());
  }
  const auto* in = reinterpret_cast<const unsigned char*>(der.data());
  PkeyPtr pub(d2i_PUBKEY(nullptr, &in, size));
  if (!pub) {
    throw Error("key", "cannot decode public key: " + openssl_errors());
  }
  return PublicKey(std::move(pub));
}

PrivateKey
generate_key()
{
  ERR_clear_error();
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    throw Error("keygen", "cannot initialise Ed25519 key generation: " + openssl_errors());
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    throw Error("keygen", "Ed25519 key generation failed: " + openssl_errors());
  }
  return PrivateKey(PkeyPtr(raw));
}

KeyPairFiles
generate_keypair(const fs::path& out_dir, const std::string& name)
{
  if (!valid_key_name(name)) {
    throw UsageError(name, "invalid key name (use letters, digits, '.', '_' and '-', not starting with '.')");
  }
  KeyPairFiles files{out_dir / (name + ".key"), out_dir / (name + ".pub"), {}};
  for (const auto& path : {files.private_key, files.public_key}) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(path, ec))) {
      throw Error(path.string(), "already exists; refusing to overwrite a key");
    }
  }
  PrivateKey key = generate_key();
  PublicKey pub = key.public_key();
  files.key_id = key_id(pub);
  publish_new_file(files.private_key, private_key_pem(key), 0600);
  try {
    publish_new_file(files.public_key, public_key_pem(pub), 0644);
  } catch (...) {
    ::unlink(files.private_key.c_str()); // ours: created just above
    throw;
  }
  util::fsync_dir(util::parent_dir(files.private_key));
  return files;
}

std::string
private_key_pem(const PrivateKey& key)
{
  ERR_clear_error();
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw Error("key", "cannot encode private key: " + openssl_errors());
  }
  return bio_contents(bio.get());
}

std::string
public_key_pem(const PublicKey& key)
{
  ERR_clear_error();
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    throw Error("key", "cannot encode public key: " + openssl_errors());
  }
  return bio_contents(bio.get());
}

namespace {

// PEM readers take the first block and ignore the rest: a file with two keys would
// silently mean the first one. One key per file.
void
require_single_pem_block(std::string_view pem, const std::string& subject)
{
  std::size_t first = pem.find("-----BEGIN ");
  if (first != std::string_view::npos && pem.find("-----BEGIN ", first + 1) != std::string_view::npos) {
    throw Error(subject, "holds more than one PEM block; a key file holds exactly one key");
  }
}

// The public key files a trust directory takes: NAME.pem, and NAME.pub as kiln keygen writes it.
bool
is_trust_key_file(const fs::path& path)
{
  return path.extension() == ".pem" || path.extension() == ".pub";
}

} // namespace

PrivateKey
private_key_from_pem(std::string_view pem, const std::string& subject)
{
  require_single_pem_block(pem, subject);
  if (pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos) {
    throw Error(subject, "encrypted private keys are not supported (kiln cannot ask for a passphrase)");
  }
  ERR_clear_error();
  BioPtr bio = memory_bio_for(pem, subject);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    std::string detail = openssl_errors();
    if (pem.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos) {
      throw Error(subject, "this is a public key; signing needs the private key (NAME.key)");
    }
    throw Error(subject, "not a PEM private key: " + detail);
  }
  require_ed25519(key.get(), subject);
  return PrivateKey(std::move(key));
}

PublicKey
public_key_from_pem(std::string_view pem, const std::string& subject)
{
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    throw Error(subject, "this is a private key; only public keys (NAME.pub) belong here");
  }
  require_single_pem_block(pem, subject);
  ERR_clear_error();
  BioPtr bio = memory_bio_for(pem, subject);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    throw Error(subject, "not a PEM public key: " + openssl_errors());
  }
  require_ed25519(key.get(), subject);
  return PublicKey(std::move(key));
}

PrivateKey
load_private_key(const fs::path& path)
{
  return private_key_from_pem(util::read_file(path), path.string());
}

PublicKey
load_public_key(const fs::path& path)
{
  return public_key_from_pem(util::read_file(path), path.string());
}

std::string
key_id(const PublicKey& key)
{
  ERR_clear_error();
  int size = i2d_PUBKEY(key.get(), nullptr);
  if (size <= 0) {
    throw Error("key", "cannot encode public key: " + openssl_errors());
  }
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PUBKEY(key.get(), &out) != size) {
    throw Error("key", "cannot encode public key: " + openssl_errors());
  }
  return sha256_hex(der);
}

std::string
sign(std::string_view data, const PrivateKey& key)
{
  require_ed25519(key.get(), "signing key");
  ERR_clear_error();
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    throw Error("sign", "cannot initialise Ed25519 signing: " + openssl_errors());
  }
  std::string signature(k_ed25519_signature_size, '\0');
  std::size_t size = signature.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      size != k_ed25519_signature_size) {
    throw Error("sign", "Ed25519 signing failed: " + openssl_errors());
  }
  return signature;
}

bool
verify(std::string_view data, std::string_view signature, const PublicKey& key)
{
  if (signature.size() != k_ed25519_signature_size || key.get() == nullptr ||
      EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    return false;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  ERR_clear_error(); // a mismatch is an answer, not an error to report later
  return ok;
}

std::string
base64_encode(std::string_view data)
{
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string>
base64_decode(std::string_view text)
{
  if (text.size() % 4 != 0 || text.size() > static_cast<std::size_t>(INT_MAX)) {
    return std::nullopt;
  }
  std::size_t padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '=') {
      ++padding;
      if (i + 3 < text.size()) {
        return std::nullopt; // '=' only in the last two places
      }
    } else if (padding != 0 || !(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/')) {
      return std::nullopt;
    }
  }
  if (padding > 2) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<std::size_t>(n) < padding) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string_view
refusal_name(Refusal refusal)
{
  switch (refusal) {
    case Refusal::not_signed:
      return "not_signed";
    case Refusal::unknown_key:
      return "unknown_key";
    case Refusal::revoked_key:
      return "revoked_key";
    case Refusal::bad_signature:
      return "bad_signature";
    case Refusal::file_missing:
      return "file_missing";
    case Refusal::file_size:
      return "file_size";
    case Refusal::file_digest:
      return "file_digest";
  }
  return "unknown";
}

std::set<std::string>
parse_revocation_list(std::string_view text, const std::string& subject)
{
  std::set<std::string> ids;
  std::size_t line_no = 0;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    std::string id = trim(line.substr(0, line.find('#')));
    if (id.empty()) {
      continue;
    }
    std::transform(id.begin(), id.end(), id.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    if (!is_sha256_hex(id)) {
      throw Error(subject + ":" + std::to_string(line_no),
                  "not a key id (64 hex digits, as printed by `kiln keygen`): '" + trim(line) + "'");
    }
    ids.insert(std::move(id));
  }
  return ids;
}

TrustStore
TrustStore::load(const fs::path& dir)
{
  TrustStore store;
  store.m_dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(dir.string(), ec ? ec.message() : std::string("not a directory"));
  }
  std::vector<fs::path> pems;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (is_trust_key_file(it->path())) {
      pems.push_back(it->path());
    }
  }
  if (ec) {
    throw Error(dir.string(), "cannot read trust directory: " + ec.message());
  }
  std::sort(pems.begin(), pems.end());
  for (const auto& path : pems) {
    if (!fs::is_regular_file(path, ec)) {
      throw Error(path.string(), "not a regular file");
    }
    store.add_key(load_public_key(path), path.filename().string());
  }
  fs::path revocations = dir / k_revocation_list_name;
  if (fs::exists(fs::symlink_status(revocations, ec))) {
    for (const auto& id : parse_revocation_list(util::read_file(revocations), revocations.string())) {
      store.revoke(id);
    }
  }
  if (store.m_keys.empty()) {
    throw Error(dir.string(), "no trusted keys: the trust directory holds no *.pem or *.pub public key");
  }
  return store;
}

std::string
TrustStore::add_key(PublicKey key, std::string origin)
{
  std::string id = key_id(key);
  m_keys.insert_or_assign(id, Entry{std::move(key), std::move(origin)});
  return id;
}

void
TrustStore::revoke(const std::string& id)
{
  m_revoked.insert(id);
}

std::string
TrustStore::verify(const std::string& subject, std::string_view data, const std::optional<Signature>& signature) const
{
  if (!signature) {
    throw VerificationError(Refusal::not_signed, subject, "not signed");
  }
  const std::string& id = signature->key_id;
  std::string where = m_dir.empty() ? std::string("the trust store") : m_dir.string();
  if (revoked(id)) {
    std::string list = m_dir.empty() ? std::string("the revocation list") : (m_dir / k_revocation_list_name).string();
    throw VerificationError(Refusal::revoked_key, subject, "signed by revoked key " + id + " (listed in " + list + ")");
  }
  auto it = m_keys.find(id);
  if (it == m_keys.end()) {
    throw VerificationError(Refusal::unknown_key, subject,
                            "signed by unknown key " + id + " (not trusted by " + where + ")");
  }
  if (!crypto::verify(data, signature->bytes, it->second.key)) {
    throw VerificationError(Refusal::bad_signature, subject,
                            "bad signature: the content does not match the signature by key " + id + " (" +
                              it->second.origin + "); modified after signing?");
  }
  return id;
}

} // namespace kiln::crypto
