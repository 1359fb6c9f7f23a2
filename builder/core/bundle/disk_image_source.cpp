// A whole-disk image as a VerifiedSource: the manifest, its signature and the bmap are
// small files read and verified up front; the image itself is read one ranged request
// per mapped range, so its holes are never transferred and a dropped connection
// resumes inside the range.
#include "core/bundle/verified_source.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"

#include <algorithm>

namespace kiln::bundle {

namespace {

using crypto::Refusal;
using crypto::VerificationError;

// The names the files go by: the image's, and the defaults beside it.
struct Names {
  std::string image_file; // the image's file name (as the manifest lists it)
  std::string bmap; // source of the bmap
  std::string manifest; // source of the manifest
};

Names
names_of(const DiskImageFiles& files)
{
  const std::string& source = files.image;
  Names n;
  n.image_file = source.substr(source.find_last_of('/') + 1);
  std::string dir_prefix = source.substr(0, source.size() - n.image_file.size());
  std::string stem = n.image_file.substr(0, n.image_file.find_last_of('.'));
  n.bmap = files.bmap.empty() ? source + ".bmap" : files.bmap;
  n.manifest = files.manifest.empty() ? dir_prefix + stem + ".manifest.json" : files.manifest;
  return n;
}

// Manifest, signature, bmap: every check before the image is opened.
Verified
verify_files(const Names& names, const SourceOptions& options, const crypto::TrustStore* trust)
{
  Verified result;
  const std::string& manifest_source = names.manifest;
  std::string manifest_text = *read_small(manifest_source, k_manifest_limit, false, options);
  if (trust != nullptr) {
    const std::string sig_source = manifest_source + ".sig";
    auto sig_text = read_small(sig_source, k_signature_limit, true, options);
    std::optional<crypto::Signature> sig;
    if (sig_text) {
      sig = parse_signature(*sig_text, sig_source);
    }
    if (!sig) {
      throw VerificationError(Refusal::not_signed, manifest_source, "not signed: no " + sig_source);
    }
    result.key_id = trust->verify(manifest_source, manifest_text, sig);
  }
  result.manifest = manifest::parse_manifest(manifest_text, manifest_source);
  result.manifest_sha256 = crypto::sha256_hex(manifest_text);

  const std::string& bmap_source = names.bmap;
  std::string bmap_name = bmap_source.substr(bmap_source.find_last_of('/') + 1);
  const manifest::File* image_file = nullptr;
  const manifest::File* bmap_file = nullptr;
  for (const auto& f : result.manifest.files) {
    if (f.name == names.image_file) {
      image_file = &f;
    }
    if (f.name == bmap_name && f.role == k_role_bmap) {
      bmap_file = &f;
    }
  }
  if (image_file == nullptr || bmap_file == nullptr) {
    throw VerificationError(Refusal::file_missing, manifest_source,
                            "does not list both " + names.image_file + " and " + bmap_name);
  }
  std::string bmap_text = *read_small(bmap_source, k_bmap_limit, false, options);
  std::string bmap_digest = crypto::sha256_hex(bmap_text);
  if (bmap_digest != bmap_file->sha256 || bmap_text.size() != bmap_file->size) {
    throw VerificationError(Refusal::file_digest, bmap_source,
                            "sha256 " + bmap_digest + ", but the manifest lists " + bmap_file->sha256);
  }
  result.bmap = bmap::parse(bmap_text, bmap_source);
  if (result.bmap.image_size != image_file->size) {
    throw VerificationError(Refusal::file_size, bmap_source,
                            "maps an image of " + std::to_string(result.bmap.image_size) +
                              " bytes, but the manifest lists " + names.image_file + " with " +
                              std::to_string(image_file->size));
  }
  return result;
}

class DiskImageSource final : public VerifiedSource {
public:
  DiskImageSource(const DiskImageFiles& files, const SourceOptions& options, const crypto::TrustStore* trust)
    : m_source(files.image), m_options(options), m_verified(verify_files(names_of(files), options, trust))
  {}

  const std::string& source() const override { return m_source; }
  const Verified& verified() const override { return m_verified; }

  // One ranged request per mapped range, opened when the previous one is used up.
  void read_mapped(char* buffer, std::size_t size) override
  {
    const bmap::Bmap& map = m_verified.bmap;
    std::size_t done = 0;
    while (done < size) {
      if (m_range_left == 0) {
        if (m_index == map.ranges.size()) {
          throw Error(m_source, "read past the bmap's mapped ranges");
        }
        const bmap::Range& range = map.ranges[m_index++];
        m_range_left = map.length_of(range);
        if (m_stream) {
          m_resumes_before += m_stream->resumes();
        }
        m_stream = open_stream(m_source, map.offset_of(range), m_range_left, m_options);
      }
      std::size_t n =
        m_stream->read(buffer + done, static_cast<std::size_t>(std::min<std::uint64_t>(size - done, m_range_left)));
      if (n == 0) {
        throw Error(m_source, "ends early");
      }
      done += n;
      m_range_left -= n;
    }
  }

  // Each range's request is bounded by the range's length: nothing can follow.
  void finish() override {}

  int resumes() const override { return m_resumes_before + (m_stream ? m_stream->resumes() : 0); }

private:
  std::string m_source;
  SourceOptions m_options;
  Verified m_verified;
  std::size_t m_index = 0; // the next range to open
  std::unique_ptr<Stream> m_stream; // the current range's
  std::uint64_t m_range_left = 0;
  int m_resumes_before = 0; // of the ranges done
};

} // namespace

std::unique_ptr<VerifiedSource>
open_disk_image(const DiskImageFiles& files, const SourceOptions& options, const crypto::TrustStore* trust)
{
  return std::make_unique<DiskImageSource>(files, options, trust);
}

} // namespace kiln::bundle
