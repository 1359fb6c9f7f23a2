#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"
#include "core/manifest/sbom.hpp"
#include "core/util/error.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <regex>
#include <set>

namespace kiln {
namespace {

using crypto::Refusal;
using nlohmann::json;
using test::refusal_of;
using test::ScratchDir;
namespace fs = std::filesystem;

const std::string k_digest_a(64, 'a');
const std::string k_digest_b(64, 'b');

std::vector<manifest::Package>
sample_packages()
{
  return {{"bash", "4.2.46-34.el7", "x86_64"},
          {"glibc", "2.17-326.el7_9", "x86_64"},
          {"glibc", "2.17-326.el7_9", "i686"},
          {"libstdc++", "4.8.5-44.el7", "x86_64"},
          {"shadow-utils", "2:4.6-5.el7", "x86_64"}};
}

// A build directory with two output files and a manifest listing them.
manifest::Manifest
sample_build(const fs::path& dir)
{
  test::write_text(dir / "node.img", std::string(4096, 'i'));
  test::write_text(dir / "node.bmap", "<bmap/>\n");
  manifest::Manifest m;
  m.name = "node";
  m.kiln_version = "0.1.0";
  m.libguestfs_version = "1.48.6";
  m.recipe_name = "dcos-agent";
  m.recipe_digest = k_digest_a;
  m.inputs = {{"base", "https://example.invalid/centos.qcow2", k_digest_b}, {"file", "/srv/unit.service", ""}};
  m.stages = {{"packages", k_digest_a}, {"overlay", k_digest_b}};
  m.files = {manifest::describe_file(dir / "node.img", "image", "raw"),
             manifest::describe_file(dir / "node.bmap", "bmap", "bmap")};
  m.packages = sample_packages();
  m.sbom = manifest::make_sbom(m.packages, {"node", k_digest_a, "2024-01-02T03:04:05Z", "0.1.0", "rpm"});
  return m;
}

std::string
error_reason(const std::function<void()>& body)
{
  try {
    body();
  } catch (const Error& e) {
    return e.reason();
  }
  return "";
}

TEST(manifest, DescribeFile)
{
  ScratchDir dir;
  test::write_text(dir / "k", "abc");
  manifest::File f = manifest::describe_file(dir / "k", "kernel", "bzImage");
  EXPECT_EQ(f.name, "k");
  EXPECT_EQ(f.size, 3u);
  EXPECT_EQ(f.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(manifest::describe_file(dir / "absent", "image", "raw"), Error);
}

TEST(manifest, CanonicalTextAndRoundTrip)
{
  ScratchDir dir;
  manifest::Manifest m = sample_build(dir.path());
  fs::path path = manifest::manifest_path(dir.path(), "node");
  EXPECT_EQ(path, dir / "node.manifest.json");
  manifest::write_manifest(path, m);
  std::string text = test::read_text(path);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.rfind("{\n  \"files\": [\n    {\n      \"format\": \"raw\",", 0), 0u) << text.substr(0, 80);
  // Top-level keys in sorted order.
  std::vector<std::string> keys{"files", "inputs",   "kiln_manifest", "kiln_version", "libguestfs_version",
                                "name",  "packages", "recipe",        "sbom",         "stages"};
  size_t last = 0;
  for (const auto& key : keys) {
    size_t at = text.find("\n  \"" + key + "\": ");
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_GT(at, last) << key;
    last = at;
  }
  manifest::Manifest back = manifest::read_manifest(path);
  EXPECT_EQ(manifest::to_json(back), manifest::to_json(m));
  // Canonical: parsing and re-serialising gives the same bytes.
  EXPECT_EQ(manifest::canonical_text(json::parse(text)), text);
  EXPECT_EQ(manifest::canonical_text(manifest::to_json(back)), text);
  // No sbom: the key is omitted.
  m.sbom = nullptr;
  EXPECT_FALSE(manifest::to_json(m).contains("sbom"));
}

TEST(manifest, RejectsUnsafeFileNames)
{
  ScratchDir dir;
  manifest::Manifest m = sample_build(dir.path());
  for (const char* name : {"", ".", "..", "../node.img", "sub/node.img", "/etc/passwd"}) {
    m.files[0].name = name;
    EXPECT_NE(error_reason([&] { manifest::write_manifest(dir / "x.manifest.json", m); }).find("files[0].name"),
              std::string::npos)
      << name;
  }
  EXPECT_FALSE(fs::exists(dir / "x.manifest.json"));
  m.files[0].name = "node.bmap";
  EXPECT_NE(error_reason([&] { manifest::validate(m, "m"); }).find("listed twice"), std::string::npos);
}

TEST(manifest, ParseErrorsNameTheField)
{
  ScratchDir dir;
  json j = manifest::to_json(sample_build(dir.path()));
  json bad = j;
  bad["files"][1].erase("sha256");
  EXPECT_EQ(error_reason([&] { manifest::from_json(bad, "m"); }), "files[1].sha256: missing");
  bad = j;
  bad["files"][0]["size"] = -1;
  EXPECT_EQ(error_reason([&] { manifest::from_json(bad, "m"); }), "files[0].size: expected a non-negative integer");
  bad = j;
  bad["stages"][0]["key"] = "XYZ";
  EXPECT_NE(error_reason([&] { manifest::from_json(bad, "m"); }).find("stages[0].key: not a sha256 digest"),
            std::string::npos);
  bad = j;
  bad["kiln_manifest"] = 2;
  EXPECT_NE(error_reason([&] { manifest::from_json(bad, "m"); }).find("not supported"), std::string::npos);
  bad.erase("kiln_manifest");
  EXPECT_EQ(error_reason([&] { manifest::from_json(bad, "m"); }), "not a kiln manifest (no kiln_manifest field)");
  EXPECT_NE(error_reason([&] { manifest::parse_manifest("{", "m"); }).find("not valid JSON"), std::string::npos);
}

class manifest_signed : public ::testing::Test {
protected:
  void SetUp() override
  {
    m_keys = crypto::generate_keypair(m_dir.path(), "release");
    fs::create_directories(m_dir / "trust.d");
    fs::copy_file(m_keys.public_key, m_dir / "trust.d/release.pem");
    fs::create_directories(m_dir / "out");
    m_manifest = manifest::manifest_path(m_dir / "out", "node");
    manifest::write_manifest(m_manifest, sample_build(m_dir / "out"));
  }

  std::string sign() { return manifest::sign_manifest(m_manifest, crypto::load_private_key(m_keys.private_key)); }
  crypto::TrustStore trust() { return crypto::TrustStore::load(m_dir / "trust.d"); }

  ScratchDir m_dir;
  crypto::KeyPairFiles m_keys;
  fs::path m_manifest;
};

TEST_F(manifest_signed, SignatureFilesAndVerification)
{
  EXPECT_EQ(sign(), m_keys.key_id);
  json sig = json::parse(test::read_text(manifest::signature_path(m_manifest)));
  EXPECT_EQ(manifest::signature_path(m_manifest), m_dir / "out/node.manifest.json.sig");
  EXPECT_EQ(sig.size(), 3u);
  EXPECT_EQ(sig["algorithm"], "ed25519");
  EXPECT_EQ(sig["key_id"], m_keys.key_id);
  std::string raw = test::read_text(manifest::raw_signature_path(m_manifest));
  EXPECT_EQ(raw.size(), 64u);
  EXPECT_EQ(sig["signature"], crypto::base64_encode(raw));
  EXPECT_EQ(test::read_text(manifest::signature_path(m_manifest)), manifest::canonical_text(sig));
  EXPECT_TRUE(crypto::verify(test::read_text(m_manifest), raw, crypto::load_public_key(m_keys.public_key)));

  manifest::Verified v = manifest::verify_manifest(m_manifest, trust());
  EXPECT_EQ(v.key_id, m_keys.key_id);
  EXPECT_EQ(v.manifest.files.size(), 2u);
}

TEST_F(manifest_signed, Refusals)
{
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::not_signed);
  sign();
  // A listed file: same size but other content, then another size, then gone.
  std::string image = test::read_text(m_dir / "out/node.img");
  test::write_text(m_dir / "out/node.img", std::string(4096, 'j'));
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::file_digest);
  test::write_text(m_dir / "out/node.img", image + "x");
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::file_size);
  fs::remove(m_dir / "out/node.img");
  try {
    manifest::verify_manifest(m_manifest, trust());
    FAIL() << "no error";
  } catch (const crypto::VerificationError& e) {
    EXPECT_EQ(e.refusal(), Refusal::file_missing);
    EXPECT_EQ(e.subject(), (m_dir / "out/node.img").string());
    EXPECT_EQ(e.reason(), "missing (listed in node.manifest.json)");
  }
  test::write_text(m_dir / "out/node.img", image);
  EXPECT_NO_THROW(manifest::verify_manifest(m_manifest, trust()));

  // The manifest itself, changed after signing.
  std::string text = test::read_text(m_manifest);
  std::string tampered = text;
  tampered.replace(tampered.find("0.1.0"), 5, "0.1.1");
  test::write_text(m_manifest, tampered);
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::bad_signature);
  test::write_text(m_manifest, text);

  // A stranger's key, then the trusted key revoked.
  crypto::KeyPairFiles stranger = crypto::generate_keypair(m_dir.path(), "stranger");
  manifest::sign_manifest(m_manifest, crypto::load_private_key(stranger.private_key));
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::unknown_key);
  sign();
  test::write_text(m_dir / "trust.d/revoked.list", m_keys.key_id + "\n");
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::revoked_key);
}

TEST_F(manifest_signed, MalformedSignatureFile)
{
  sign();
  fs::path sig_path = manifest::signature_path(m_manifest);
  json sig = json::parse(test::read_text(sig_path));
  for (auto edit : std::vector<std::function<void(json&)>>{
         [](json& s) { s["algorithm"] = "rsa"; },
         [](json& s) { s.erase("key_id"); },
         [](json& s) { s["signature"] = "AAAA"; },
         [](json& s) { s["signature"] = "not base64!"; },
       }) {
    json bad = sig;
    edit(bad);
    test::write_text(sig_path, bad.dump());
    EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::bad_signature)
      << bad.dump();
  }
  test::write_text(sig_path, "{");
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::bad_signature);
}

TEST_F(manifest_signed, RewritingRemovesStaleSignature)
{
  sign();
  manifest::Manifest m = manifest::read_manifest(m_manifest);
  m.libguestfs_version = "1.50.1";
  manifest::write_manifest(m_manifest, m);
  EXPECT_FALSE(fs::exists(manifest::signature_path(m_manifest)));
  EXPECT_FALSE(fs::exists(manifest::raw_signature_path(m_manifest)));
  EXPECT_EQ(refusal_of([&] { manifest::verify_manifest(m_manifest, trust()); }), Refusal::not_signed);
}

TEST_F(manifest_signed, RefusesToSignWhatIsNotAManifest)
{
  test::write_text(m_dir / "out/other.json", "{\"a\": 1}\n");
  EXPECT_THROW(manifest::sign_manifest(m_dir / "out/other.json", crypto::load_private_key(m_keys.private_key)), Error);
  EXPECT_FALSE(fs::exists(m_dir / "out/other.json.sig"));
}

// --- SBOM ---

TEST(manifest_sbom, DocumentShape)
{
  manifest::SbomOptions options{"node", k_digest_a, "2024-01-02T03:04:05Z", "0.1.0", "rpm"};
  json doc = manifest::make_sbom(sample_packages(), options);
  EXPECT_EQ(doc["spdxVersion"], "SPDX-2.3");
  EXPECT_EQ(doc["dataLicense"], "CC0-1.0");
  EXPECT_EQ(doc["SPDXID"], "SPDXRef-DOCUMENT");
  EXPECT_EQ(doc["name"], "node");
  EXPECT_EQ(doc["documentNamespace"], "https://kiln.invalid/spdx/" + k_digest_a);
  EXPECT_EQ(doc["creationInfo"]["created"], "2024-01-02T03:04:05Z");
  EXPECT_EQ(doc["creationInfo"]["creators"], json::array({"Tool: kiln-0.1.0"}));
  ASSERT_TRUE(doc["packages"].is_array());
  ASSERT_EQ(doc["packages"].size(), 5u);

  const std::regex id_pattern("SPDXRef-[A-Za-z0-9.-]+");
  std::set<std::string> ids{"SPDXRef-DOCUMENT"};
  for (const auto& p : doc["packages"]) {
    for (const char* field : {"SPDXID", "name", "versionInfo", "downloadLocation", "externalRefs"}) {
      EXPECT_TRUE(p.contains(field)) << field << " in " << p.dump();
    }
    std::string id = p["SPDXID"];
    EXPECT_TRUE(std::regex_match(id, id_pattern)) << id;
    EXPECT_TRUE(ids.insert(id).second) << "duplicate " << id;
    EXPECT_EQ(p["downloadLocation"], "NOASSERTION");
    ASSERT_EQ(p["externalRefs"].size(), 1u);
    EXPECT_EQ(p["externalRefs"][0]["referenceCategory"], "PACKAGE-MANAGER");
    EXPECT_EQ(p["externalRefs"][0]["referenceType"], "purl");
  }
  // Sorted by name, version, arch; the second glibc gets its arch as suffix.
  EXPECT_EQ(doc["packages"][0]["SPDXID"], "SPDXRef-Package-bash");
  EXPECT_EQ(doc["packages"][1]["SPDXID"], "SPDXRef-Package-glibc");
  EXPECT_EQ(doc["packages"][1]["externalRefs"][0]["referenceLocator"], "pkg:rpm/centos/glibc@2.17-326.el7_9?arch=i686");
  EXPECT_EQ(doc["packages"][2]["SPDXID"], "SPDXRef-Package-glibc-x86-64");
  EXPECT_EQ(doc["packages"][3]["SPDXID"], "SPDXRef-Package-libstdc--");
  EXPECT_EQ(doc["packages"][3]["externalRefs"][0]["referenceLocator"],
            "pkg:rpm/centos/libstdc%2B%2B@4.8.5-44.el7?arch=x86_64");
  EXPECT_EQ(doc["packages"][4]["externalRefs"][0]["referenceLocator"],
            "pkg:rpm/centos/shadow-utils@4.6-5.el7?arch=x86_64&epoch=2");

  ASSERT_EQ(doc["relationships"].size(), 5u);
  std::set<std::string> described;
  for (const auto& r : doc["relationships"]) {
    EXPECT_EQ(r["spdxElementId"], "SPDXRef-DOCUMENT");
    EXPECT_EQ(r["relationshipType"], "DESCRIBES");
    described.insert(r["relatedSpdxElement"].get<std::string>());
  }
  ids.erase("SPDXRef-DOCUMENT");
  EXPECT_EQ(described, ids);
}

TEST(manifest_sbom, ReproducibleAndOrderIndependent)
{
  manifest::SbomOptions options{"node", k_digest_b, "2024-01-02T03:04:05Z", "0.1.0", "deb"};
  auto packages = sample_packages();
  std::string first = manifest::canonical_text(manifest::make_sbom(packages, options));
  std::reverse(packages.begin(), packages.end());
  EXPECT_EQ(manifest::canonical_text(manifest::make_sbom(packages, options)), first);
  EXPECT_NE(first.find("pkg:deb/debian/shadow-utils@2%3A4.6-5.el7?arch=x86_64"), std::string::npos);
}

TEST(manifest_sbom, ClashingSanitisedNamesStayUnique)
{
  std::vector<manifest::Package> packages{
    {"a+b", "1", "noarch"}, {"a_b", "1", "noarch"}, {"a-b", "1", "noarch"}, {"a b", "1", "noarch"}};
  json doc = manifest::make_sbom(packages, {"x", k_digest_a, "2024-01-02T03:04:05Z", "0.1.0", "rpm"});
  std::set<std::string> ids;
  for (const auto& p : doc["packages"]) {
    EXPECT_TRUE(ids.insert(p["SPDXID"].get<std::string>()).second) << p["SPDXID"];
  }
  EXPECT_EQ(ids.size(), 4u);
}

TEST(manifest_sbom, RejectsBadOptions)
{
  auto packages = sample_packages();
  EXPECT_THROW(manifest::make_sbom(packages, {"n", k_digest_a, "2024-01-02 03:04:05", "0.1.0", "rpm"}), Error);
  EXPECT_THROW(manifest::make_sbom(packages, {"n", "nope", "2024-01-02T03:04:05Z", "0.1.0", "rpm"}), Error);
  EXPECT_THROW(manifest::make_sbom(packages, {"n", k_digest_a, "2024-01-02T03:04:05Z", "0.1.0", "apk"}), Error);
  EXPECT_EQ(manifest::spdx_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(manifest::spdx_time(1704164645), "2024-01-02T03:04:05Z");
}

} // namespace
} // namespace kiln
