#include "core/bundle/sign.hpp"

#include "core/bundle/members.hpp"
#include "core/util/error.hpp"

#include <vector>

namespace kiln::bundle {

BundleInfo
sign_bundle(const fs::path& unsigned_bundle, const fs::path& out_path, const crypto::PrivateKey& key)
{
  // Absolute, so that no local name is ever taken for a URL.
  Reader reader(fs::absolute(unsigned_bundle).string());
  if (reader.signature_text()) {
    throw Error(reader.source(), "already signed (it has a manifest.json.sig member); sign an unsigned bundle");
  }
  Verified verified = reader.verify(nullptr);

  std::error_code ec;
  BundleInfo info;
  info.path = fs::is_directory(out_path, ec) ? bundle_path(out_path, verified.manifest.name) : out_path;
  info.manifest_text = reader.manifest_text();
  info.manifest_sha256 = verified.manifest_sha256;
  info.manifest = std::move(verified.manifest);
  info.bmap = std::move(verified.bmap);
  std::string signature = detail::signature_text(info.manifest_text, key, info.key_id);

  // read_data checks rootfs.data's size and digest, and that nothing follows it.
  auto copy_data = [&](const detail::DataSink& sink) {
    std::vector<char> buffer(detail::k_chunk);
    while (std::size_t n = reader.read_data(buffer.data(), buffer.size())) {
      sink(buffer.data(), n);
    }
  };
  info.size =
    detail::write_file(info.path, {info.manifest_text, signature, reader.bmap_text(), reader.data_size(), copy_data});
  return info;
}

} // namespace kiln::bundle
