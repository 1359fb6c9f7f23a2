#include "core/bundle/members.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/manifest/manifest.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace kiln::bundle::detail {

namespace {

void
check_write(struct archive* a, int rc, const std::string& subject)
{
  if (rc < ARCHIVE_WARN) {
    throw Error(subject, archive::error_message(a, "libarchive error"));
  }
}

void
write_member_header(struct archive* a, std::string_view name, std::uint64_t size, const std::string& subject)
{
  archive::EntryHandle e(archive_entry_new());
  archive_entry_set_pathname(e.get(), std::string(name).c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_mtime(e.get(), 0, 0);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
  check_write(a, archive_write_header(a, e.get()), subject);
}

void
write_member_bytes(struct archive* a, const char* data, std::size_t size, const std::string& subject)
{
  while (size > 0) {
    la_ssize_t n = archive_write_data(a, data, size);
    if (n <= 0) {
      throw Error(subject, archive::error_message(a, "libarchive error"));
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void
write_member(struct archive* a, std::string_view name, std::string_view content, const std::string& subject)
{
  write_member_header(a, name, content.size(), subject);
  write_member_bytes(a, content.data(), content.size(), subject);
}

} // namespace

std::string
signature_text(std::string_view manifest_text, const crypto::PrivateKey& key, std::string& key_id)
{
  std::string signature = crypto::sign(manifest_text, key);
  key_id = crypto::key_id(key.public_key());
  nlohmann::json sig = {{"algorithm", "ed25519"}, {"key_id", key_id}, {"signature", crypto::base64_encode(signature)}};
  return manifest::canonical_text(sig);
}

std::uint64_t
write_file(const fs::path& target, const Members& members)
{
  const std::string subject = target.string();
  util::AtomicFile out(target, 0644);
  {
    archive::WriteHandle a(archive_write_new());
    check_write(a.get(), archive_write_set_format_pax_restricted(a.get()), subject);
    check_write(a.get(), archive_write_open_fd(a.get(), out.fd()), subject);
    write_member(a.get(), slots::k_bundle_manifest, members.manifest_text, subject);
    if (members.signature_text) {
      write_member(a.get(), slots::k_bundle_signature, *members.signature_text, subject);
    }
    write_member(a.get(), slots::k_bundle_bmap, members.bmap_text, subject);
    write_member_header(a.get(), slots::k_bundle_data, members.data_size, subject);
    std::uint64_t written = 0;
    members.fill_data([&](const char* data, std::size_t size) {
      write_member_bytes(a.get(), data, size, subject);
      written += size;
    });
    // libarchive would pad a short member with zeros: a lie the manifest's digest exposes
    // only on a node.
    if (written != members.data_size) {
      throw Error(subject,
                  "rootfs.data got " + std::to_string(written) + " of " + std::to_string(members.data_size) + " bytes");
    }
    check_write(a.get(), archive_write_close(a.get()), subject);
  }
  std::uint64_t size = 0;
  struct stat st {};
  if (::fstat(out.fd(), &st) == 0) {
    size = static_cast<std::uint64_t>(st.st_size);
  }
  out.commit();
  return size;
}

} // namespace kiln::bundle::detail
