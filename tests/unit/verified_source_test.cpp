// core/bundle/verified_source: the whole-disk image trio (image, bmap, signed manifest)
// verified before a byte of the image is read, and its mapped data read range by range.
#include "core/bundle/verified_source.hpp"

#include "core/bmap/bmap.hpp"
#include "core/bundle/bundle.hpp"
#include "core/crypto/sha256.hpp"
#include "core/manifest/manifest.hpp"
#include "support/sparse_image.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

// DIR/rootfs.img as kiln build names a whole-disk image: rootfs.img.bmap and
// rootfs.manifest.json (listing both) beside it, the manifest signed with `key`.
struct Trio {
  explicit Trio(const fs::path& dir) : image(test::sparse_image(dir))
  {
    bmap::write_bmap_file(image, bmap);
    manifest::Manifest m = test::small_manifest("rootfs");
    m.kiln_version = KILN_VERSION; // write_bundle fills it in; a plain manifest must name it
    m.files = {manifest::describe_file(image, "image", "raw"), manifest::describe_file(bmap, "bmap", "bmap")};
    manifest::write_manifest(manifest, m);
    key_id = manifest::sign_manifest(manifest, key);
    trust.add_key(key.public_key(), "test");
  }

  std::unique_ptr<bundle::VerifiedSource> open() const
  {
    return bundle::open_disk_image({image.string(), "", ""}, {}, &trust);
  }

  fs::path image;
  fs::path bmap = image.string() + ".bmap";
  fs::path manifest = manifest::manifest_path(image.parent_path(), "rootfs");
  crypto::PrivateKey key = crypto::generate_key();
  std::string key_id;
  crypto::TrustStore trust;
};

// The VerificationError opening `trio` throws (a test failure when it throws none).
crypto::VerificationError
refusal_opening(const Trio& trio)
{
  return test::thrown_by<crypto::VerificationError>([&] { trio.open(); },
                                                    crypto::VerificationError(crypto::Refusal::not_signed, "", ""));
}

TEST(verified_source, good_disk_image_is_accepted_and_reads_its_mapped_ranges)
{
  ScratchDir dir;
  Trio trio(dir.path());
  auto source = trio.open();
  EXPECT_EQ(source->source(), trio.image.string());
  EXPECT_EQ(source->name(), "rootfs");
  EXPECT_EQ(source->verified().key_id, trio.key_id);
  EXPECT_EQ(source->verified().manifest_sha256, crypto::sha256_file(trio.manifest));
  bmap::Bmap map = bmap::read_bmap_file(trio.bmap);
  EXPECT_EQ(source->verified().bmap.ranges, map.ranges);
  EXPECT_EQ(source->verified().bmap.image_size, fs::file_size(trio.image));

  // In pieces that straddle the ranges, as the write engine asks.
  std::string want = test::packed(trio.image, map);
  std::string got(want.size(), '\0');
  for (std::size_t at = 0; at < got.size(); at += 70000) {
    source->read_mapped(got.data() + at, std::min<std::size_t>(70000, got.size() - at));
  }
  source->finish();
  EXPECT_EQ(got, want);
  char more = 0;
  EXPECT_NE(test::error_of([&] { source->read_mapped(&more, 1); }).reason().find("past the bmap's mapped ranges"),
            std::string::npos);

  // Without a trust store the signature is not checked (and no signer named).
  auto unchecked = bundle::open_disk_image({trio.image.string(), "", ""}, {}, nullptr);
  EXPECT_EQ(unchecked->verified().key_id, "");
}

// A slot bundle's whole-data digest is computed from what the consumer hands back
// (bmap::write_mapped does it on its writing thread, beside the reads): a consumer that
// hands back everything passes finish(), one that hands back a different byte does not.
TEST(verified_source, a_bundles_data_digest_is_taken_from_what_the_consumer_hands_back)
{
  ScratchDir dir;
  fs::path image = test::sparse_image(dir.path());
  bundle::BundleInfo info = bundle::write_bundle(image, dir / "s.kbundle", test::small_manifest("slot"), nullptr);
  auto read_all = [&](bool flip_one) {
    auto source = bundle::open_slot_bundle(info.path.string(), {}, nullptr);
    std::string data(source->verified().bmap.mapped_bytes(), '\0');
    source->read_mapped(data.data(), data.size());
    if (flip_one) {
      data[data.size() / 2] ^= 1;
    }
    for (std::size_t at = 0; at < data.size(); at += 4096) {
      source->consumed(data.data() + at, std::min<std::size_t>(4096, data.size() - at));
    }
    source->finish();
  };
  read_all(false);
  crypto::VerificationError e = test::thrown_by<crypto::VerificationError>(
    [&] { read_all(true); }, crypto::VerificationError(crypto::Refusal::not_signed, "", ""));
  EXPECT_EQ(e.refusal(), crypto::Refusal::file_digest);
  EXPECT_NE(e.reason().find("but manifest.json lists"), std::string::npos) << e.reason();
}

TEST(verified_source, tampered_bmap_is_refused)
{
  ScratchDir dir;
  Trio trio(dir.path());
  std::ofstream(trio.bmap, std::ios::app) << "<!-- tampered -->\n";
  crypto::VerificationError e = refusal_opening(trio);
  EXPECT_EQ(e.refusal(), crypto::Refusal::file_digest);
  EXPECT_EQ(e.subject(), trio.bmap.string());
  EXPECT_NE(e.reason().find("but the manifest lists"), std::string::npos) << e.reason();
}

TEST(verified_source, missing_signature_is_refused_when_one_is_required)
{
  ScratchDir dir;
  Trio trio(dir.path());
  fs::remove(manifest::signature_path(trio.manifest));
  crypto::VerificationError e = refusal_opening(trio);
  EXPECT_EQ(e.refusal(), crypto::Refusal::not_signed);
  EXPECT_EQ(e.reason(), "not signed: no " + trio.manifest.string() + ".sig");
  // Not required: accepted.
  EXPECT_EQ(bundle::open_disk_image({trio.image.string(), "", ""}, {}, nullptr)->name(), "rootfs");
}

TEST(verified_source, manifest_over_the_limit_is_refused)
{
  ScratchDir dir;
  Trio trio(dir.path());
  fs::resize_file(trio.manifest, bundle::k_manifest_limit + 1); // sparse: cheap to make
  Error e = test::error_of([&] { trio.open(); });
  EXPECT_EQ(e.subject(), trio.manifest.string());
  EXPECT_EQ(e.reason(), "larger than " + std::to_string(bundle::k_manifest_limit) + " bytes");
}

} // namespace
} // namespace kiln
