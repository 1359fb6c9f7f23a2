// core/bundle: the .kbundle writer, signing an unsigned bundle, and the streaming
// reader (local files and a loopback HTTP server with a dropped connection).
#include "core/archive/archive.hpp"
#include "core/bundle/bundle.hpp"
#include "core/bundle/sign.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/sparse_image.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <set>
#include <unistd.h>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

using test::packed;
using test::sparse_image;

manifest::Manifest
base()
{
  return test::small_manifest("slot-image");
}

std::string
read_all_data(bundle::Reader& reader)
{
  std::string data;
  std::vector<char> buffer(70000);
  while (std::size_t n = reader.read_data(buffer.data(), buffer.size())) {
    data.append(buffer.data(), n);
  }
  return data;
}

TEST(bundle, writes_members_in_order_and_reads_them_back_verified)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto key = crypto::generate_key();
  bundle::BundleInfo info = bundle::write_bundle(image, dir.path(), base(), &key);
  EXPECT_EQ(info.path, dir / "slot-image.kbundle");
  EXPECT_EQ(info.size, fs::file_size(info.path));
  auto entries = archive::list(info.path);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "manifest.json");
  EXPECT_EQ(entries[1].name, "manifest.json.sig");
  EXPECT_EQ(entries[2].name, "rootfs.bmap");
  EXPECT_EQ(entries[3].name, "rootfs.data");
  EXPECT_EQ(entries[3].size, info.bmap.mapped_bytes());
  EXPECT_EQ(info.bmap.image_size, (8u << 20) - 1); // the last block is short
  EXPECT_EQ(info.manifest_sha256, crypto::sha256_hex(info.manifest_text));
  EXPECT_EQ(info.manifest.files.size(), 2u);

  crypto::TrustStore trust;
  trust.add_key(key.public_key(), "test");
  bundle::Reader reader(info.path.string());
  EXPECT_EQ(reader.manifest_text(), info.manifest_text);
  ASSERT_TRUE(reader.signature_text().has_value());
  bundle::Verified v = reader.verify(&trust);
  EXPECT_EQ(v.key_id, info.key_id);
  EXPECT_EQ(v.manifest_sha256, info.manifest_sha256);
  EXPECT_EQ(v.bmap.ranges, info.bmap.ranges);
  EXPECT_EQ(read_all_data(reader), packed(image, info.bmap));

  // The same inputs give the same bytes.
  fs::path again = dir / "again.kbundle";
  bundle::write_bundle(image, again, base(), &key);
  EXPECT_EQ(crypto::sha256_file(again), crypto::sha256_file(info.path));
}

TEST(bundle, unsigned_bundle_reads_without_trust_and_is_refused_with_it)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto info = bundle::write_bundle(image, dir / "u.kbundle", base(), nullptr);
  EXPECT_EQ(archive::list(info.path).size(), 3u);
  bundle::Reader reader(info.path.string());
  EXPECT_FALSE(reader.signature_text().has_value());
  crypto::TrustStore trust;
  trust.add_key(crypto::generate_key().public_key(), "other");
  EXPECT_EQ(test::refusal_of([&] { reader.verify(&trust); }), crypto::Refusal::not_signed);
  bundle::Reader plain(info.path.string());
  plain.verify(nullptr);
  EXPECT_EQ(read_all_data(plain).size(), info.bmap.mapped_bytes());
}

TEST(bundle, nothing_appears_when_writing_fails)
{
  ScratchDir dir;
  manifest::Manifest m = base();
  m.recipe_digest = "not-a-digest";
  fs::path image = sparse_image(dir.path());
  EXPECT_NE(
    test::error_of([&] { bundle::write_bundle(image, dir / "bad.kbundle", m, nullptr); }).reason().find("recipe"),
    std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "bad.kbundle"));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().extension(), ".img") << e.path(); // no temporary left behind
  }
}

TEST(bundle, streams_over_http_and_resumes_after_a_drop)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto key = crypto::generate_key();
  auto info = bundle::write_bundle(image, dir.path(), base(), &key);
  test::HttpServer server(dir.path());
  bundle::SourceOptions options;
  options.retry_delay_ms = 10;
  bundle::Reader reader(server.url("/drop/150000/slot-image.kbundle"), options);
  crypto::TrustStore trust;
  trust.add_key(key.public_key(), "test");
  reader.verify(&trust);
  EXPECT_EQ(read_all_data(reader), packed(image, info.bmap));
  EXPECT_EQ(reader.resumes(), 1);

  // A server that ignores Range: the reader skips what it already delivered.
  auto stream = bundle::open_stream(server.url("/norange/slot-image.kbundle"), 5000, 1000, options);
  std::string got(1000, '\0');
  std::size_t done = 0;
  while (done < got.size()) {
    std::size_t n = stream->read(got.data() + done, got.size() - done);
    ASSERT_GT(n, 0u);
    done += n;
  }
  EXPECT_EQ(got, test::read_text(info.path).substr(5000, 1000));

  // Missing sources: read_small may accept them; a 5xx after its retries is an error.
  EXPECT_FALSE(bundle::read_small(server.url("/files/nothing"), 100, true, options).has_value());
  options.retries = 1;
  EXPECT_NE(test::error_of([&] { bundle::read_small(server.url("/status/503/x"), 100, true, options); })
              .reason()
              .find("HTTP 503"),
            std::string::npos);
}

TEST(bundle, a_byte_flipped_in_the_data_fails_the_whole_data_digest)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto info = bundle::write_bundle(image, dir.path(), base(), nullptr);
  std::string bytes = test::read_text(info.path);
  auto data_at = bytes.size() - 10240; // somewhere before the tar's end blocks
  auto pos = bytes.rfind(std::string(512, '\0'), data_at);
  ASSERT_NE(pos, std::string::npos);
  // Flip the first non-zero data byte from the end of the data member.
  std::size_t flip = bytes.find_last_not_of('\0', pos);
  bytes[flip] = static_cast<char>(bytes[flip] ^ 1);
  test::write_text(dir / "flipped.kbundle", bytes);
  bundle::Reader reader((dir / "flipped.kbundle").string());
  reader.verify(nullptr);
  EXPECT_EQ(test::refusal_of([&] { read_all_data(reader); }), crypto::Refusal::file_digest);
}

// Nothing but `keep` in `dir`: no output, no temporary left behind.
void
expect_only(const fs::path& dir, const std::set<std::string>& keep)
{
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_TRUE(keep.count(e.path().filename().string()) != 0) << e.path();
  }
}

TEST(sign_bundle, gives_the_bytes_write_bundle_gives_signed)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto key = crypto::generate_key();
  auto plain = bundle::write_bundle(image, dir / "unsigned.kbundle", base(), nullptr);
  auto direct = bundle::write_bundle(image, dir / "direct.kbundle", base(), &key);
  fs::create_directory(dir / "out");
  bundle::BundleInfo info = bundle::sign_bundle(plain.path, dir / "out", key);

  EXPECT_EQ(info.path, dir / "out" / "slot-image.kbundle");
  EXPECT_EQ(test::read_text(info.path), test::read_text(direct.path));
  EXPECT_EQ(info.size, fs::file_size(info.path));
  EXPECT_EQ(info.size, direct.size);
  EXPECT_EQ(info.manifest_text, plain.manifest_text);
  EXPECT_EQ(info.manifest_sha256, plain.manifest_sha256);
  EXPECT_EQ(info.manifest_sha256, direct.manifest_sha256);
  EXPECT_EQ(info.key_id, direct.key_id);
  EXPECT_EQ(info.bmap.ranges, direct.bmap.ranges);
  EXPECT_EQ(info.manifest.files.size(), 2u);

  // In place: the unsigned bundle becomes the signed one.
  bundle::sign_bundle(plain.path, plain.path, key);
  EXPECT_EQ(test::read_text(plain.path), test::read_text(direct.path));
}

TEST(sign_bundle, the_signed_bundle_verifies_against_a_trust_dir)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto key = crypto::generate_key();
  auto plain = bundle::write_bundle(image, dir / "unsigned.kbundle", base(), nullptr);
  auto info = bundle::sign_bundle(plain.path, dir / "signed.kbundle", key);
  EXPECT_EQ(archive::list(info.path).size(), 4u);

  fs::create_directory(dir / "trust.d");
  test::write_text(dir / "trust.d" / "build.pem", crypto::public_key_pem(key.public_key()));
  crypto::TrustStore trust = crypto::TrustStore::load(dir / "trust.d");
  bundle::Reader reader(info.path.string());
  bundle::Verified v = reader.verify(&trust);
  EXPECT_EQ(v.key_id, info.key_id);
  EXPECT_EQ(v.manifest_sha256, plain.manifest_sha256);
  EXPECT_EQ(read_all_data(reader), packed(image, info.bmap));

  // A key the trust dir does not hold is refused.
  auto other = bundle::sign_bundle(plain.path, dir / "other.kbundle", crypto::generate_key());
  bundle::Reader stranger(other.path.string());
  EXPECT_EQ(test::refusal_of([&] { stranger.verify(&trust); }), crypto::Refusal::unknown_key);
}

TEST(sign_bundle, refuses_a_signed_bundle_and_members_out_of_order)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto key = crypto::generate_key();
  auto signed_info = bundle::write_bundle(image, dir / "signed.kbundle", base(), &key);
  EXPECT_NE(test::error_of([&] { bundle::sign_bundle(signed_info.path, dir / "again.kbundle", key); })
              .reason()
              .find("already signed"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "again.kbundle"));

  // manifest.json, rootfs.data (no rootfs.bmap before it).
  auto plain = bundle::write_bundle(image, dir / "unsigned.kbundle", base(), nullptr);
  fs::create_directory(dir / "tree");
  for (const auto& e : archive::read_all(plain.path, 64u << 20)) {
    if (e.name != "rootfs.bmap") {
      test::write_text(dir / "tree" / e.name, e.data);
    }
  }
  archive::tar_directory(dir / "tree", dir / "disordered.kbundle", {});
  std::string reason =
    test::error_of([&] { bundle::sign_bundle(dir / "disordered.kbundle", dir / "out.kbundle", key); }).reason();
  EXPECT_NE(reason.find("not a slot bundle: member 'rootfs.data' where"), std::string::npos) << reason;
  EXPECT_FALSE(fs::exists(dir / "out.kbundle"));
}

TEST(sign_bundle, a_truncated_bundle_leaves_no_output)
{
  ScratchDir dir;
  fs::path image = sparse_image(dir.path());
  auto key = crypto::generate_key();
  auto plain = bundle::write_bundle(image, dir / "unsigned.kbundle", base(), nullptr);
  std::string bytes = test::read_text(plain.path);
  // Inside rootfs.data (about 300 kB of the file), and inside manifest.json.
  for (std::size_t cut : {bytes.size() / 2, std::size_t{700}}) {
    test::write_text(dir / "cut.kbundle", bytes.substr(0, cut));
    EXPECT_THROW(bundle::sign_bundle(dir / "cut.kbundle", dir / "out.kbundle", key), Error) << cut;
    EXPECT_FALSE(fs::exists(dir / "out.kbundle")) << cut;
    expect_only(dir.path(), {"rootfs.img", "unsigned.kbundle", "cut.kbundle"});
  }
}

} // namespace
} // namespace kiln
