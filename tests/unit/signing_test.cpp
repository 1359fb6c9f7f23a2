#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/util/error.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace kiln {
namespace {

using crypto::Refusal;
using test::refusal_of;
using test::ScratchDir;
namespace fs = std::filesystem;

unsigned
file_mode(const fs::path& path)
{
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string
hex(std::string_view bytes)
{
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(digits[u >> 4]);
    out.push_back(digits[u & 15]);
  }
  return out;
}

// The reason of the Error that `body` throws ("" when none).
template <typename F>
std::string
error_reason(F&& body)
{
  try {
    body();
  } catch (const Error& e) {
    return e.reason();
  }
  return "";
}

TEST(signing, KeygenWritesPemFilesWithModes)
{
  ScratchDir dir;
  crypto::KeyPairFiles files = crypto::generate_keypair(dir.path(), "release-2024");
  EXPECT_EQ(files.private_key, dir / "release-2024.key");
  EXPECT_EQ(files.public_key, dir / "release-2024.pub");
  EXPECT_EQ(file_mode(files.private_key), 0600u);
  EXPECT_EQ(file_mode(files.public_key), 0644u);
  std::string key_pem = test::read_text(files.private_key);
  std::string pub_pem = test::read_text(files.public_key);
  EXPECT_EQ(key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u) << key_pem;
  EXPECT_EQ(pub_pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u) << pub_pem;
  EXPECT_TRUE(crypto::is_sha256_hex(files.key_id));
  EXPECT_EQ(crypto::key_id(crypto::load_public_key(files.public_key)), files.key_id);
  EXPECT_EQ(crypto::key_id(crypto::load_private_key(files.private_key).public_key()), files.key_id);
  // Only the two keys: no temporary files left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2);
}

TEST(signing, KeygenRefusesToOverwrite)
{
  ScratchDir dir;
  crypto::generate_keypair(dir.path(), "k");
  std::string before = test::read_text(dir / "k.key");
  EXPECT_EQ(error_reason([&] { crypto::generate_keypair(dir.path(), "k"); }),
            "already exists; refusing to overwrite a key");
  EXPECT_EQ(test::read_text(dir / "k.key"), before);
  // A lone public key blocks as well, and no private key appears beside it.
  test::write_text(dir / "p.pub", "x");
  EXPECT_THROW(crypto::generate_keypair(dir.path(), "p"), Error);
  EXPECT_FALSE(fs::exists(dir / "p.key"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 3);
}

TEST(signing, KeygenRejectsBadNames)
{
  ScratchDir dir;
  for (const char* name : {"", ".hidden", "a/b", "../k", "sp ace"}) {
    EXPECT_THROW(crypto::generate_keypair(dir.path(), name), UsageError) << name;
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(signing, SignAndVerify)
{
  crypto::PrivateKey key = crypto::generate_key();
  crypto::PublicKey pub = key.public_key();
  std::string sig = crypto::sign("manifest bytes", key);
  ASSERT_EQ(sig.size(), crypto::k_ed25519_signature_size);
  EXPECT_EQ(crypto::sign("manifest bytes", key), sig); // Ed25519 is deterministic
  EXPECT_TRUE(crypto::verify("manifest bytes", sig, pub));
  EXPECT_FALSE(crypto::verify("manifest bytes!", sig, pub));
  std::string flipped = sig;
  flipped[10] = static_cast<char>(flipped[10] ^ 1);
  EXPECT_FALSE(crypto::verify("manifest bytes", flipped, pub));
  EXPECT_FALSE(crypto::verify("manifest bytes", sig.substr(0, 63), pub));
  EXPECT_FALSE(crypto::verify("manifest bytes", "", pub));
  EXPECT_FALSE(crypto::verify("manifest bytes", sig, crypto::generate_key().public_key()));
}

TEST(signing, Rfc8032TestVector)
{
  // RFC 8032 section 7.1, TEST 1 (empty message), as a PKCS#8 PEM.
  const std::string pem = "-----BEGIN PRIVATE KEY-----\n"
                          "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                          "-----END PRIVATE KEY-----\n";
  crypto::PrivateKey key = crypto::private_key_from_pem(pem, "rfc8032");
  EXPECT_EQ(hex(crypto::sign("", key)), "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a"
                                        "33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  // The public key d75a9801...: its SubjectPublicKeyInfo PEM round-trips to the same id.
  std::string pub_pem = crypto::public_key_pem(key.public_key());
  EXPECT_NE(pub_pem.find("MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="), std::string::npos) << pub_pem;
  EXPECT_EQ(crypto::key_id(crypto::public_key_from_pem(pub_pem, "pub")), crypto::key_id(key.public_key()));
}

TEST(signing, LoadRejectsOtherKeyTypes)
{
  if (util::find_program("openssl").empty()) {
    GTEST_SKIP() << "openssl not installed";
  }
  ScratchDir dir;
  util::run_checked({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out",
                     (dir / "rsa.key").string()});
  util::run_checked(
    {"openssl", "pkey", "-in", (dir / "rsa.key").string(), "-pubout", "-out", (dir / "rsa.pub").string()});
  util::run_checked({"openssl", "genpkey", "-algorithm", "ED448", "-out", (dir / "ed448.key").string()});
  EXPECT_EQ(error_reason([&] { crypto::load_private_key(dir / "rsa.key"); }), "not an Ed25519 key (RSA)");
  EXPECT_EQ(error_reason([&] { crypto::load_public_key(dir / "rsa.pub"); }), "not an Ed25519 key (RSA)");
  EXPECT_EQ(error_reason([&] { crypto::load_private_key(dir / "ed448.key"); }), "not an Ed25519 key (ED448)");
}

TEST(signing, LoadErrorsAreClear)
{
  ScratchDir dir;
  crypto::KeyPairFiles files = crypto::generate_keypair(dir.path(), "k");
  test::write_text(dir / "garbage.pem", "hello\n");
  try {
    crypto::load_public_key(dir / "garbage.pem");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), (dir / "garbage.pem").string());
    EXPECT_EQ(e.reason().rfind("not a PEM public key: ", 0), 0u) << e.reason();
  }
  EXPECT_EQ(error_reason([&] { crypto::load_public_key(files.private_key); }),
            "this is a private key; only public keys (NAME.pub) belong here");
  EXPECT_EQ(error_reason([&] { crypto::load_private_key(files.public_key); }),
            "this is a public key; signing needs the private key (NAME.key)");
  EXPECT_EQ(error_reason([&] { crypto::load_private_key(dir / "absent.key"); }), "No such file or directory");
  test::write_text(dir / "enc.key",
                   "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
  EXPECT_NE(error_reason([&] { crypto::load_private_key(dir / "enc.key"); }).find("encrypted"), std::string::npos);
}

TEST(signing, Base64)
{
  for (std::string data : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"),
                           std::string("foob"), std::string(64, '\xff')}) {
    std::string text = crypto::base64_encode(data);
    EXPECT_EQ(text.size() % 4, 0u);
    auto back = crypto::base64_decode(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, data);
  }
  EXPECT_EQ(crypto::base64_encode("foob"), "Zm9vYg==");
  EXPECT_FALSE(crypto::base64_decode("Zm9vYg="));
  EXPECT_FALSE(crypto::base64_decode("Zm9v\nYg=="));
  EXPECT_FALSE(crypto::base64_decode("Zm=vYg=="));
  EXPECT_FALSE(crypto::base64_decode("Zm9vY==="));
  EXPECT_FALSE(crypto::base64_decode("Zm9v!g=="));
}

TEST(signing, RevocationListFormat)
{
  std::string a(64, 'a');
  std::string b(64, 'b');
  auto ids = crypto::parse_revocation_list(
    "# revoked keys\n\n" + a + "\n  " + std::string(64, 'B') + "   # leaked 2024-05\n", "revoked.list");
  EXPECT_EQ(ids, (std::set<std::string>{a, b}));
  try {
    crypto::parse_revocation_list("# x\n" + a + "\nnot-a-key\n", "revoked.list");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "revoked.list:3");
    EXPECT_NE(e.reason().find("not a key id"), std::string::npos);
  }
}

class signing_trust_store : public ::testing::Test {
protected:
  void SetUp() override
  {
    m_old = crypto::generate_keypair(m_dir.path(), "old");
    m_new = crypto::generate_keypair(m_dir.path(), "new");
    m_stranger = crypto::generate_keypair(m_dir.path(), "stranger");
    fs::create_directories(m_dir / "trust.d");
    fs::copy_file(m_old.public_key, m_dir / "trust.d/old.pem");
    fs::copy_file(m_new.public_key, m_dir / "trust.d/new.pem");
    test::write_text(m_dir / "trust.d/README", "not a key, ignored\n");
  }

  crypto::Signature signature_by(const crypto::KeyPairFiles& files, std::string_view data)
  {
    return {files.key_id, crypto::sign(data, crypto::load_private_key(files.private_key))};
  }

  ScratchDir m_dir;
  crypto::KeyPairFiles m_old, m_new, m_stranger;
};

TEST_F(signing_trust_store, AcceptsTrustedKeysAndNamesRefusals)
{
  crypto::TrustStore trust = crypto::TrustStore::load(m_dir / "trust.d");
  EXPECT_EQ(trust.size(), 2u);
  EXPECT_TRUE(trust.trusts(m_old.key_id));
  EXPECT_FALSE(trust.trusts(m_stranger.key_id));
  EXPECT_EQ(trust.verify("m", "data", signature_by(m_new, "data")), m_new.key_id);
  EXPECT_EQ(trust.verify("m", "data", signature_by(m_old, "data")), m_old.key_id);

  EXPECT_EQ(refusal_of([&] { trust.verify("m", "data", std::nullopt); }), Refusal::not_signed);
  EXPECT_EQ(refusal_of([&] { trust.verify("m", "data", signature_by(m_stranger, "data")); }), Refusal::unknown_key);
  EXPECT_EQ(refusal_of([&] { trust.verify("m", "data2", signature_by(m_new, "data")); }), Refusal::bad_signature);
  // A signature by a stranger that claims a trusted key's id is a bad signature.
  crypto::Signature forged = signature_by(m_stranger, "data");
  forged.key_id = m_new.key_id;
  EXPECT_EQ(refusal_of([&] { trust.verify("m", "data", forged); }), Refusal::bad_signature);
  try {
    trust.verify("m", "data", signature_by(m_stranger, "data"));
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "m");
    EXPECT_EQ(e.reason().rfind("signed by unknown key " + m_stranger.key_id, 0), 0u) << e.reason();
  }
}

TEST_F(signing_trust_store, RevocationListRefusesKeysStillPresent)
{
  test::write_text(m_dir / "trust.d/revoked.list", "# rotated out\n" + m_old.key_id + "\n");
  crypto::TrustStore trust = crypto::TrustStore::load(m_dir / "trust.d");
  EXPECT_TRUE(trust.revoked(m_old.key_id));
  EXPECT_FALSE(trust.trusts(m_old.key_id));
  EXPECT_EQ(refusal_of([&] { trust.verify("m", "data", signature_by(m_old, "data")); }), Refusal::revoked_key);
  EXPECT_EQ(trust.verify("m", "data", signature_by(m_new, "data")), m_new.key_id);
}

TEST_F(signing_trust_store, LoadErrorsNameTheFile)
{
  fs::create_directories(m_dir / "empty.d");
  EXPECT_NE(error_reason([&] { crypto::TrustStore::load(m_dir / "empty.d"); }).find("no trusted keys"),
            std::string::npos);
  EXPECT_THROW(crypto::TrustStore::load(m_dir / "absent.d"), Error);
  fs::copy_file(m_stranger.private_key, m_dir / "trust.d/oops.pem");
  try {
    crypto::TrustStore::load(m_dir / "trust.d");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), (m_dir / "trust.d/oops.pem").string());
  }
  fs::remove(m_dir / "trust.d/oops.pem");
  test::write_text(m_dir / "trust.d/revoked.list", "zz\n");
  EXPECT_THROW(crypto::TrustStore::load(m_dir / "trust.d"), Error);
}

} // namespace
} // namespace kiln
