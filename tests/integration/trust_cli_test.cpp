// kiln keygen / sign / verify-signature, run as the real binary, and interop with
// the openssl command-line tool in both directions.
#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace kiln {
namespace {

using nlohmann::json;
using test::ScratchDir;
namespace fs = std::filesystem;

class trust_cli : public ::testing::Test {
protected:
  void SetUp() override
  {
    fs::create_directories(m_dir / "out");
    test::write_text(m_dir / "out/node.img", std::string(8192, 'i'));
    test::write_text(m_dir / "out/node.vmlinuz", "kernel");
    manifest::Manifest m;
    m.name = "node";
    m.kiln_version = KILN_VERSION;
    m.libguestfs_version = "1.48.6";
    m.recipe_name = "agent";
    m.recipe_digest = crypto::sha256_hex("recipe");
    m.stages = {{"packages", crypto::sha256_hex("stage")}};
    m.files = {manifest::describe_file(m_dir / "out/node.img", "image", "raw"),
               manifest::describe_file(m_dir / "out/node.vmlinuz", "kernel", "bzImage")};
    m.packages = {{"bash", "4.2.46-34.el7", "x86_64"}};
    m_manifest = (m_dir / "out/node.manifest.json").string();
    manifest::write_manifest(m_manifest, m);
  }

  // `kiln keygen`; returns the key id it printed.
  std::string keygen(const std::string& name)
  {
    auto r = test::run_kiln({"keygen", "--out", (m_dir / "keys").string(), "--name", name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const auto& line : test::lines(r.out)) {
      if (line.rfind("key id:", 0) == 0) {
        return line.substr(line.find_last_of(' ') + 1);
      }
    }
    ADD_FAILURE() << "no key id in: " << r.out;
    return "";
  }
  std::string key(const std::string& name) const { return (m_dir / "keys" / (name + ".key")).string(); }
  std::string pub(const std::string& name) const { return (m_dir / "keys" / (name + ".pub")).string(); }
  void trust(const std::string& name)
  {
    fs::create_directories(m_dir / "trust.d");
    fs::copy_file(pub(name), m_dir / "trust.d" / (name + ".pem"), fs::copy_options::overwrite_existing);
  }
  util::RunResult sign(const std::string& name) { return test::run_kiln({"sign", m_manifest, "--key", key(name)}); }
  util::RunResult verify(const std::vector<std::string>& extra = {})
  {
    std::vector<std::string> args{"verify-signature", m_manifest, "--trust", (m_dir / "trust.d").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_kiln(args);
  }

  ScratchDir m_dir;
  std::string m_manifest;
};

// Exit status 1 and exactly one stderr line `kiln: error: ...` containing `reason`.
void
expect_refusal(const util::RunResult& r, const std::string& reason)
{
  EXPECT_EQ(r.exit_code, 1) << r.err;
  auto err = test::lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_EQ(err[0].rfind("kiln: error: ", 0), 0u) << err[0];
  EXPECT_NE(err[0].find(reason), std::string::npos) << "want '" << reason << "' in: " << err[0];
}

bool
have_openssl()
{
  return !util::find_program("openssl").empty();
}

TEST_F(trust_cli, KeygenMakesPrivateKey0600AndRefusesOverwrite)
{
  std::string id = keygen("release");
  EXPECT_TRUE(crypto::is_sha256_hex(id)) << id;
  struct stat st {};
  ASSERT_EQ(::stat(key("release").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(pub("release").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  std::string before = test::read_text(key("release"));
  auto r = test::run_kiln({"keygen", "--out", (m_dir / "keys").string(), "--name", "release"});
  expect_refusal(r, "already exists; refusing to overwrite a key");
  EXPECT_EQ(test::read_text(key("release")), before);
  auto usage = test::run_kiln({"keygen", "--out", (m_dir / "keys").string(), "--name", "../evil"});
  EXPECT_EQ(usage.exit_code, 2) << usage.err;
}

TEST_F(trust_cli, GoodSignatureVerifies)
{
  std::string id = keygen("release");
  trust("release");
  auto s = sign("release");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find(id), std::string::npos) << s.out;
  EXPECT_TRUE(fs::exists(m_manifest + ".sig"));
  EXPECT_EQ(fs::file_size(m_manifest + ".sig.bin"), 64u);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("good signature by key " + id), std::string::npos) << v.out;
  EXPECT_EQ(v.err, "");
  auto j = verify({"--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json out = json::parse(j.out);
  EXPECT_EQ(out["ok"], true);
  EXPECT_EQ(out["key_id"], id);
  EXPECT_EQ(out["files"], 2);
}

TEST_F(trust_cli, Refusals)
{
  std::string id = keygen("release");
  keygen("stranger");
  trust("release");
  expect_refusal(verify(), "not signed: no signature file node.manifest.json.sig");

  ASSERT_EQ(sign("stranger").exit_code, 0);
  expect_refusal(verify(), "signed by unknown key");

  ASSERT_EQ(sign("release").exit_code, 0);
  test::write_text(m_dir / "trust.d/revoked.list", "# leaked\n" + id + "\n");
  expect_refusal(verify(), "signed by revoked key " + id);
  auto j = verify({"--json"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(json::parse(j.out)["refusal"], "revoked_key");
  fs::remove(m_dir / "trust.d/revoked.list");
  ASSERT_EQ(verify().exit_code, 0);

  std::string text = test::read_text(m_manifest);
  std::string tampered = text;
  tampered.replace(tampered.find("\"x86_64\""), 8, "\"i686\"  ");
  test::write_text(m_manifest, tampered);
  expect_refusal(verify(), "bad signature");
  test::write_text(m_manifest, text);

  test::write_text(m_dir / "out/node.vmlinuz", "kernEl");
  expect_refusal(verify(), "node.vmlinuz: sha256 ");
  test::write_text(m_dir / "out/node.vmlinuz", "kernel");

  fs::remove(m_dir / "out/node.img");
  expect_refusal(verify(), "node.img: missing (listed in node.manifest.json)");
  j = verify({"--json"});
  EXPECT_EQ(json::parse(j.out)["refusal"], "file_missing");
}

TEST_F(trust_cli, KeyRotation)
{
  keygen("old");
  keygen("new");
  trust("old");
  trust("new");
  ASSERT_EQ(sign("old").exit_code, 0);
  std::string old_sig = test::read_text(m_manifest + ".sig");
  EXPECT_EQ(verify().exit_code, 0);
  ASSERT_EQ(sign("new").exit_code, 0);
  EXPECT_EQ(verify().exit_code, 0);
  // The old key leaves the trust directory: new signatures still pass, old ones are refused.
  fs::remove(m_dir / "trust.d/old.pem");
  EXPECT_EQ(verify().exit_code, 0);
  test::write_text(m_manifest + ".sig", old_sig);
  expect_refusal(verify(), "signed by unknown key");
}

TEST_F(trust_cli, SignRefusesOtherKeyTypes)
{
  if (!have_openssl()) {
    GTEST_SKIP() << "openssl not installed";
  }
  util::run_checked({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out",
                     (m_dir / "rsa.key").string()});
  expect_refusal(test::run_kiln({"sign", m_manifest, "--key", (m_dir / "rsa.key").string()}),
                 "not an Ed25519 key (RSA)");
  EXPECT_FALSE(fs::exists(m_manifest + ".sig"));
}

TEST_F(trust_cli, OpensslVerifiesKilnSignature)
{
  if (!have_openssl()) {
    GTEST_SKIP() << "openssl not installed";
  }
  keygen("release");
  ASSERT_EQ(sign("release").exit_code, 0);
  std::vector<std::string> check{"openssl",
                                 "pkeyutl",
                                 "-verify",
                                 "-pubin",
                                 "-inkey",
                                 pub("release"),
                                 "-rawin",
                                 "-in",
                                 m_manifest,
                                 "-sigfile",
                                 m_manifest + ".sig.bin"};
  auto ok = util::run(check);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("Signature Verified Successfully"), std::string::npos) << ok.out;
  std::string text = test::read_text(m_manifest);
  text[text.find("agent")] = 'A';
  test::write_text(m_manifest, text);
  auto bad = util::run(check);
  EXPECT_NE(bad.exit_code, 0) << bad.out;
}

TEST_F(trust_cli, KilnVerifiesOpensslSignature)
{
  if (!have_openssl()) {
    GTEST_SKIP() << "openssl not installed";
  }
  std::string id = keygen("release");
  trust("release");
  // Sign with the openssl tool and build the .sig file from standard tools' output.
  util::run_checked({"openssl", "pkeyutl", "-sign", "-inkey", key("release"), "-rawin", "-in", m_manifest, "-out",
                     (m_dir / "raw.sig").string()});
  auto digest = util::run_checked(
    {"sh", "-c", "openssl pkey -pubin -in \"$1\" -outform DER | openssl dgst -sha256 -r", "sh", pub("release")});
  std::string openssl_id = digest.out.substr(0, 64);
  EXPECT_EQ(openssl_id, id) << "key id is the sha256 of the DER SubjectPublicKeyInfo";
  auto b64 = util::run_checked({"openssl", "base64", "-A", "-in", (m_dir / "raw.sig").string()});
  std::string signature = b64.out.substr(0, b64.out.find_last_not_of("\n") + 1);
  json sig = {{"algorithm", "ed25519"}, {"key_id", openssl_id}, {"signature", signature}};
  test::write_text(m_manifest + ".sig", sig.dump());
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("good signature by key " + id), std::string::npos) << v.out;
  // And the openssl signature over other bytes is refused.
  test::write_text(m_manifest, test::read_text(m_manifest) + " ");
  expect_refusal(verify(), "bad signature");
}

// Writes `text` as the manifest with a valid signature over exactly these bytes, as a
// signer would who signs whatever it is handed (kiln sign itself refuses such text).
void
write_signed(const std::string& manifest, const std::string& text, const std::string& key_file)
{
  crypto::PrivateKey k = crypto::load_private_key(key_file);
  test::write_text(manifest, text);
  json sig = {{"algorithm", "ed25519"},
              {"key_id", crypto::key_id(k.public_key())},
              {"signature", crypto::base64_encode(crypto::sign(text, k))}};
  test::write_text(manifest + ".sig", sig.dump());
}

TEST_F(trust_cli, DuplicateFilesKeyIsRefused)
{
  keygen("release");
  trust("release");
  std::string text = test::read_text(m_manifest);
  ASSERT_EQ(text.substr(text.size() - 2), "}\n");
  // The listed files first, then a second, empty "files": a lenient parser keeps the last.
  std::string doubled = text.substr(0, text.size() - 3) + ",\n  \"files\": []\n}\n";
  write_signed(m_manifest, doubled, key("release"));
  test::write_text(m_dir / "out/node.img", "tampered");
  expect_refusal(verify(), "not in canonical form");
  EXPECT_EQ(test::run_kiln({"sign", m_manifest, "--key", key("release")}).exit_code, 1);
}

TEST_F(trust_cli, OtherSpellingsAndEmptyFileListsAreRefused)
{
  keygen("release");
  trust("release");
  json j = json::parse(test::read_text(m_manifest));
  write_signed(m_manifest, j.dump(), key("release")); // same content, compact spelling
  expect_refusal(verify(), "not in canonical form");
  j["files"] = json::array();
  write_signed(m_manifest, manifest::canonical_text(j), key("release"));
  expect_refusal(verify(), "lists no file: nothing to verify");
}

TEST_F(trust_cli, TrustDirectoryTakesKeygensPubFiles)
{
  std::string id = keygen("release");
  fs::create_directories(m_dir / "trust.d");
  fs::copy_file(pub("release"), m_dir / "trust.d/release.pub");
  ASSERT_EQ(sign("release").exit_code, 0);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("good signature by key " + id + ", 2 file(s) verified"), std::string::npos) << v.out;
}

TEST_F(trust_cli, KeyFilesWithTwoKeysAreRefused)
{
  keygen("release");
  keygen("other");
  fs::create_directories(m_dir / "trust.d");
  test::write_text(m_dir / "trust.d/both.pem", test::read_text(pub("release")) + test::read_text(pub("other")));
  ASSERT_EQ(sign("release").exit_code, 0);
  expect_refusal(verify(), "holds more than one PEM block");
  test::write_text(m_dir / "two.key", test::read_text(key("other")) + test::read_text(key("release")));
  expect_refusal(test::run_kiln({"sign", m_manifest, "--key", (m_dir / "two.key").string()}),
                 "holds more than one PEM block");
}

// Manifest names are [A-Za-z0-9._-]{1,64} (kiln-node stores them in the 1 KiB grubenv):
// anything else is refused when signing and when reading, even under a good signature.
TEST_F(trust_cli, ManifestNamesOutsideTheRuleAreRefusedWhenSigningAndReading)
{
  keygen("release");
  trust("release");
  json j = json::parse(test::read_text(m_manifest));
  for (const std::string& bad : {std::string(800, 'n'), std::string(65, 'n'), std::string("node v2"),
                                 std::string("node/../x"), std::string("n\u00e9"), std::string("..")}) {
    j["name"] = bad;
    test::write_text(m_manifest, manifest::canonical_text(j));
    auto r = sign("release");
    expect_refusal(r, "name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
    EXPECT_EQ(r.err.find(std::string(65, 'n')), std::string::npos) << "a long name is not echoed";
    write_signed(m_manifest, manifest::canonical_text(j), key("release"));
    expect_refusal(verify(), "name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  j["name"] = std::string(64, 'n');
  test::write_text(m_manifest, manifest::canonical_text(j));
  ASSERT_EQ(sign("release").exit_code, 0);
  EXPECT_EQ(verify().exit_code, 0) << verify().err;
}

} // namespace
} // namespace kiln
