#include "core/bundle/bundle.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/bundle/members.hpp"
#include "core/crypto/sha256.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace kiln::bundle {

namespace {

using json = nlohmann::json;

using detail::k_chunk;

std::string
archive_message(struct archive* a)
{
  return archive::error_message(a, "libarchive error");
}

// pread of exactly `size` bytes at `offset`; short reads past the end are errors.
void
pread_exact(int fd, char* buffer, std::size_t size, std::uint64_t offset, const std::string& subject)
{
  std::size_t got = util::pread_full(fd, buffer, size, offset, subject);
  if (got != size) {
    throw Error(subject, "unexpected end of file at byte " + std::to_string(offset + got));
  }
}

// Calls `sink` with the image's mapped bytes in bmap order.
void
for_each_mapped_chunk(int fd, const bmap::Bmap& map, const std::string& subject,
                      const std::function<void(const char*, std::size_t)>& sink)
{
  std::vector<char> buffer(k_chunk);
  for (const auto& range : map.ranges) {
    std::uint64_t offset = map.offset_of(range);
    std::uint64_t left = map.length_of(range);
    while (left > 0) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
      pread_exact(fd, buffer.data(), n, offset, subject);
      sink(buffer.data(), n);
      offset += n;
      left -= n;
    }
  }
}

} // namespace

fs::path
bundle_path(const fs::path& dir, const std::string& name)
{
  return dir / (name + std::string(slots::k_bundle_extension));
}

BundleInfo
write_bundle(const fs::path& rootfs_image, const fs::path& out_path, manifest::Manifest base,
             const crypto::PrivateKey* key)
{
  const std::string image_subject = rootfs_image.string();
  std::error_code ec;
  fs::path target = fs::is_directory(out_path, ec) ? bundle_path(out_path, base.name) : out_path;
  const std::string subject = target.string();

  BundleInfo info;
  info.path = target;
  info.bmap = bmap::generate(rootfs_image);
  std::string bmap_text = bmap::render(info.bmap);
  info.bmap = bmap::parse(bmap_text, image_subject); // carries the file checksum now

  util::Fd image = util::open_file(rootfs_image, O_RDONLY);
  crypto::Sha256 data_hash;
  for_each_mapped_chunk(image.get(), info.bmap, image_subject,
                        [&](const char* data, std::size_t size) { data_hash.update(data, size); });
  const std::uint64_t data_size = info.bmap.mapped_bytes();

  if (base.kiln_version.empty()) {
    base.kiln_version = KILN_VERSION;
  }
  base.files = {
    {std::string(slots::k_bundle_bmap), std::string(k_role_bmap), "bmap", crypto::sha256_hex(bmap_text),
     bmap_text.size()},
    {std::string(slots::k_bundle_data), std::string(k_role_data), "packed-ranges", data_hash.hex_digest(), data_size},
  };
  manifest::validate(base, subject);
  info.manifest_text = manifest::canonical_text(manifest::to_json(base));
  info.manifest = manifest::parse_manifest(info.manifest_text, subject);
  info.manifest_sha256 = crypto::sha256_hex(info.manifest_text);

  std::optional<std::string> signature_text;
  if (key != nullptr) {
    signature_text = detail::signature_text(info.manifest_text, *key, info.key_id);
  }

  auto copy_data = [&](const detail::DataSink& sink) {
    crypto::Sha256 again;
    for_each_mapped_chunk(image.get(), info.bmap, image_subject, [&](const char* data, std::size_t size) {
      again.update(data, size);
      sink(data, size);
    });
    // The image must not change between the two passes, or the manifest would lie.
    if (again.hex_digest() != info.manifest.files[1].sha256) {
      throw Error(image_subject, "changed while the bundle was written");
    }
  };
  info.size = detail::write_file(target, {info.manifest_text, signature_text, bmap_text, data_size, copy_data});
  return info;
}

crypto::Signature
parse_signature(std::string_view text, const std::string& subject)
{
  using crypto::Refusal;
  using crypto::VerificationError;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw VerificationError(Refusal::bad_signature, subject, std::string("malformed signature: ") + e.what());
  }
  auto field = [&](const char* name) {
    if (!j.is_object() || !j.contains(name) || !j[name].is_string()) {
      throw VerificationError(Refusal::bad_signature, subject,
                              std::string("malformed signature: no string field '") + name + "'");
    }
    return j[name].get<std::string>();
  };
  if (field("algorithm") != "ed25519") {
    throw VerificationError(Refusal::bad_signature, subject,
                            "unsupported signature algorithm '" + field("algorithm") + "' (kiln signs with ed25519)");
  }
  crypto::Signature sig;
  sig.key_id = field("key_id");
  if (!crypto::is_sha256_hex(sig.key_id)) {
    throw VerificationError(Refusal::bad_signature, subject, "malformed signature: key_id is not a key id");
  }
  auto bytes = crypto::base64_decode(field("signature"));
  if (!bytes || bytes->size() != crypto::k_ed25519_signature_size) {
    throw VerificationError(Refusal::bad_signature, subject, "malformed signature: not 64 bytes in base64");
  }
  sig.bytes = std::move(*bytes);
  return sig;
}

// ---------------------------------------------------------------------------------
// Reader

struct Reader::Impl {
  std::string source;
  std::unique_ptr<Stream> stream;
  archive::ReadHandle archive;
  std::vector<char> buffer = std::vector<char>(k_chunk);
  std::exception_ptr stream_error; // thrown by the stream inside a libarchive callback
  std::string manifest_text;
  std::optional<std::string> signature_text;
  std::string bmap_text;
  std::uint64_t data_size = 0;
  std::uint64_t data_read = 0;
  crypto::Sha256 data_hash;
  std::string expected_data_sha256; // set by verify()
  bool hash_data = true; // off: the caller feeds the digest (defer_data_digest)
  bool finished = false;

  std::string member(std::string_view name) const { return source + ":" + std::string(name); }

  static la_ssize_t on_read(struct archive*, void* opaque, const void** out)
  {
    auto* self = static_cast<Impl*>(opaque);
    try {
      std::size_t n = self->stream->read(self->buffer.data(), self->buffer.size());
      *out = self->buffer.data();
      return static_cast<la_ssize_t>(n);
    } catch (...) {
      self->stream_error = std::current_exception();
      return -1;
    }
  }

  [[noreturn]] void fail(const std::string& what)
  {
    if (stream_error) {
      std::rethrow_exception(stream_error);
    }
    throw Error(source, what + ": " + archive_message(archive.get()));
  }

  // The next member's header; nullptr at the end of the archive.
  archive_entry* next()
  {
    archive_entry* entry = nullptr;
    int rc = archive_read_next_header(archive.get(), &entry);
    if (rc == ARCHIVE_EOF) {
      return nullptr;
    }
    if (rc < ARCHIVE_WARN) {
      fail("not a slot bundle (an uncompressed tar)");
    }
    return entry;
  }

  void expect_regular(archive_entry* entry)
  {
    std::string name = archive_entry_pathname(entry) != nullptr ? archive_entry_pathname(entry) : "";
    if (archive_entry_filetype(entry) != AE_IFREG || !archive_entry_size_is_set(entry)) {
      throw Error(member(name), "not a regular file member");
    }
  }

  std::string read_member(archive_entry* entry, std::size_t limit)
  {
    expect_regular(entry);
    std::string name = archive_entry_pathname(entry);
    auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
    if (size > limit) {
      throw Error(member(name), "too large (" + std::to_string(size) + " bytes)");
    }
    std::string text(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < text.size()) {
      la_ssize_t n = archive_read_data(archive.get(), text.data() + done, text.size() - done);
      if (n < 0) {
        fail("reading " + name);
      }
      if (n == 0) {
        throw Error(member(name), "truncated");
      }
      done += static_cast<std::size_t>(n);
    }
    return text;
  }
};

Reader::Reader(const std::string& source, const SourceOptions& options) : m_impl(std::make_unique<Impl>())
{
  Impl& d = *m_impl;
  d.source = source;
  d.stream = open_stream(source, 0, std::nullopt, options);
  d.archive.reset(archive_read_new());
  if (!d.archive) {
    throw Error(source, "cannot create a libarchive reader");
  }
  archive_read_support_format_tar(d.archive.get());
  if (archive_read_open(d.archive.get(), &d, nullptr, &Impl::on_read, nullptr) != ARCHIVE_OK) {
    d.fail("not a slot bundle (an uncompressed tar)");
  }
  auto name_of = [](archive_entry* e) -> std::string {
    return archive_entry_pathname(e) != nullptr ? archive_entry_pathname(e) : "";
  };
  auto expect = [&](archive_entry* e, std::string_view want, std::string_view alternative = {}) {
    if (e == nullptr) {
      throw Error(source, "not a slot bundle: ends before member " + std::string(want));
    }
    std::string got = name_of(e);
    if (got != want && (alternative.empty() || got != alternative)) {
      throw Error(source, "not a slot bundle: member '" + got + "' where " + std::string(want) +
                            (alternative.empty() ? "" : " or " + std::string(alternative)) + " belongs");
    }
    return got;
  };
  archive_entry* e = d.next();
  expect(e, slots::k_bundle_manifest);
  d.manifest_text = d.read_member(e, k_manifest_limit);
  e = d.next();
  if (expect(e, slots::k_bundle_signature, slots::k_bundle_bmap) == slots::k_bundle_signature) {
    d.signature_text = d.read_member(e, k_signature_limit);
    e = d.next();
    expect(e, slots::k_bundle_bmap);
  }
  d.bmap_text = d.read_member(e, k_bmap_limit);
  e = d.next();
  expect(e, slots::k_bundle_data);
  d.expect_regular(e);
  d.data_size = static_cast<std::uint64_t>(archive_entry_size(e));
}

Reader::~Reader() = default;

const std::string&
Reader::source() const noexcept
{
  return m_impl->source;
}
const std::string&
Reader::manifest_text() const noexcept
{
  return m_impl->manifest_text;
}
const std::optional<std::string>&
Reader::signature_text() const noexcept
{
  return m_impl->signature_text;
}
const std::string&
Reader::bmap_text() const noexcept
{
  return m_impl->bmap_text;
}
std::uint64_t
Reader::data_size() const noexcept
{
  return m_impl->data_size;
}
int
Reader::resumes() const
{
  return m_impl->stream->resumes();
}

Verified
Reader::verify(const crypto::TrustStore* trust)
{
  using crypto::Refusal;
  using crypto::VerificationError;
  Impl& d = *m_impl;
  const std::string manifest_subject = d.member(slots::k_bundle_manifest);
  Verified result;
  if (trust != nullptr) {
    std::optional<crypto::Signature> sig;
    if (d.signature_text) {
      sig = parse_signature(*d.signature_text, d.member(slots::k_bundle_signature));
    }
    if (!sig) {
      throw VerificationError(Refusal::not_signed, d.source, "not signed: the bundle has no manifest.json.sig");
    }
    result.key_id = trust->verify(manifest_subject, d.manifest_text, sig);
  }
  result.manifest = manifest::parse_manifest(d.manifest_text, manifest_subject);
  result.manifest_sha256 = crypto::sha256_hex(d.manifest_text);
  const manifest::File* bmap_file = nullptr;
  const manifest::File* data_file = nullptr;
  for (const auto& f : result.manifest.files) {
    if (f.name == slots::k_bundle_bmap && f.role == k_role_bmap) {
      bmap_file = &f;
    } else if (f.name == slots::k_bundle_data && f.role == k_role_data) {
      data_file = &f;
    } else {
      throw Error(manifest_subject,
                  "lists '" + f.name + "' (role " + f.role + "); a slot bundle lists only rootfs.bmap and rootfs.data");
    }
  }
  if (bmap_file == nullptr || data_file == nullptr) {
    throw Error(manifest_subject, "does not list both rootfs.bmap (role bmap) and rootfs.data (role rootfs-data)");
  }
  const std::string bmap_subject = d.member(slots::k_bundle_bmap);
  if (d.bmap_text.size() != bmap_file->size) {
    throw VerificationError(Refusal::file_size, bmap_subject,
                            "size " + std::to_string(d.bmap_text.size()) + " bytes, but manifest.json lists " +
                              std::to_string(bmap_file->size));
  }
  std::string bmap_digest = crypto::sha256_hex(d.bmap_text);
  if (bmap_digest != bmap_file->sha256) {
    throw VerificationError(Refusal::file_digest, bmap_subject,
                            "sha256 " + bmap_digest + ", but manifest.json lists " + bmap_file->sha256);
  }
  result.bmap = bmap::parse(d.bmap_text, bmap_subject);
  const std::string data_subject = d.member(slots::k_bundle_data);
  if (d.data_size != data_file->size) {
    throw VerificationError(Refusal::file_size, data_subject,
                            "size " + std::to_string(d.data_size) + " bytes, but manifest.json lists " +
                              std::to_string(data_file->size));
  }
  if (d.data_size != result.bmap.mapped_bytes()) {
    throw VerificationError(Refusal::file_size, data_subject,
                            "size " + std::to_string(d.data_size) + " bytes, but rootfs.bmap maps " +
                              std::to_string(result.bmap.mapped_bytes()));
  }
  d.expected_data_sha256 = data_file->sha256;
  return result;
}

void
Reader::defer_data_digest()
{
  m_impl->hash_data = false;
}

void
Reader::hash_data(const char* data, std::size_t size)
{
  m_impl->data_hash.update(data, size);
}

std::size_t
Reader::read_data(char* buffer, std::size_t size)
{
  Impl& d = *m_impl;
  if (d.finished || size == 0) {
    return 0;
  }
  la_ssize_t n = archive_read_data(d.archive.get(), buffer, size);
  if (n < 0) {
    d.fail("reading rootfs.data");
  }
  if (n > 0) {
    if (d.hash_data) {
      d.data_hash.update(buffer, static_cast<std::size_t>(n));
    }
    d.data_read += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }
  d.finished = true;
  const std::string data_subject = d.member(slots::k_bundle_data);
  if (d.data_read != d.data_size) {
    throw Error(data_subject,
                "truncated: " + std::to_string(d.data_read) + " of " + std::to_string(d.data_size) + " bytes");
  }
  std::string digest = d.data_hash.hex_digest();
  if (!d.expected_data_sha256.empty() && digest != d.expected_data_sha256) {
    throw crypto::VerificationError(crypto::Refusal::file_digest, data_subject,
                                    "sha256 " + digest + ", but manifest.json lists " + d.expected_data_sha256);
  }
  if (archive_entry* extra = d.next(); extra != nullptr) {
    throw Error(d.source, std::string("not a slot bundle: unexpected member '") +
                            (archive_entry_pathname(extra) != nullptr ? archive_entry_pathname(extra) : "") +
                            "' after rootfs.data");
  }
  return 0;
}

} // namespace kiln::bundle
