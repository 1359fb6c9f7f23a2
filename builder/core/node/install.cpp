// kiln-node install: a signed whole-disk image onto a blank disk (PXE installer), the
// disk then given its own GUIDs.
#include "core/node/node.hpp"

#include "core/node/command_common.hpp"
#include "core/node/disk_lock.hpp"

#include "core/bmap/copy.hpp"
#include "core/crypto/sha256.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/node/dcos_version.hpp"
#include "core/node/disk.hpp"
#include "core/node/grow.hpp"
#include "core/node/health.hpp"
#include "core/node/identity.hpp"
#include "core/node/under_root.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kiln::node {

using namespace detail;

InstallReport
install(const InstallOptions& options)
{
  std::optional<crypto::TrustStore> trust = load_trust(options.verify_signature, options.trust_dir);
  const std::string& source = options.source;
  std::string file_name = source.substr(source.find_last_of('/') + 1);
  std::string dir_prefix = source.substr(0, source.size() - file_name.size());
  std::string stem = file_name.substr(0, file_name.find_last_of('.'));
  std::string bmap_source = options.bmap.empty() ? source + ".bmap" : options.bmap;
  std::string manifest_source = options.manifest.empty() ? dir_prefix + stem + ".manifest.json" : options.manifest;

  // Manifest, signature, bmap: all checked before the disk is opened.
  std::string manifest_text = *bundle::read_small(manifest_source, 64u << 20, false, options.source_options);
  std::string key_id;
  if (trust) {
    auto sig_text = bundle::read_small(manifest_source + ".sig", 64u << 10, true, options.source_options);
    std::optional<crypto::Signature> sig;
    if (sig_text) {
      sig = bundle::parse_signature(*sig_text, manifest_source + ".sig");
    }
    if (!sig) {
      throw crypto::VerificationError(crypto::Refusal::not_signed, manifest_source,
                                      "not signed: no " + manifest_source + ".sig");
    }
    key_id = trust->verify(manifest_source, manifest_text, sig);
  }
  manifest::Manifest m = manifest::parse_manifest(manifest_text, manifest_source);
  std::string bmap_name = bmap_source.substr(bmap_source.find_last_of('/') + 1);
  const manifest::File* image_file = nullptr;
  const manifest::File* bmap_file = nullptr;
  for (const auto& f : m.files) {
    if (f.name == file_name) {
      image_file = &f;
    }
    if (f.name == bmap_name && f.role == "bmap") {
      bmap_file = &f;
    }
  }
  if (image_file == nullptr || bmap_file == nullptr) {
    throw crypto::VerificationError(crypto::Refusal::file_missing, manifest_source,
                                    "does not list both " + file_name + " and " + bmap_name);
  }
  std::string bmap_text = *bundle::read_small(bmap_source, 256u << 20, false, options.source_options);
  if (crypto::sha256_hex(bmap_text) != bmap_file->sha256 || bmap_text.size() != bmap_file->size) {
    throw crypto::VerificationError(crypto::Refusal::file_digest, bmap_source,
                                    "sha256 " + crypto::sha256_hex(bmap_text) + ", but the manifest lists " +
                                      bmap_file->sha256);
  }
  bmap::Bmap map = bmap::parse(bmap_text, bmap_source);
  if (map.image_size != image_file->size) {
    throw crypto::VerificationError(crypto::Refusal::file_size, bmap_source,
                                    "maps an image of " + std::to_string(map.image_size) +
                                      " bytes, but the manifest lists " + file_name + " with " +
                                      std::to_string(image_file->size));
  }

  // The whole disk as one "partition".
  util::Fd probe = util::open_file(options.disk, O_RDONLY);
  slots::Gpt whole;
  whole.disk = options.disk;
  whole.disk_size = slots::device_size(probe.get(), options.disk.string());
  probe = util::Fd();
  if (map.image_size > whole.disk_size) {
    throw Error(options.disk.string(), "too small: " + std::to_string(whole.disk_size) + " bytes, the image needs " +
                                         std::to_string(map.image_size));
  }
  slots::Partition all;
  all.label = "disk";
  all.size = whole.disk_size;
  struct stat st {};
  ::stat(options.disk.c_str(), &st);
  int flags = O_RDWR | O_CLOEXEC | (S_ISBLK(st.st_mode) ? O_EXCL : 0);
  int fd = ::open(options.disk.c_str(), flags);
  if (fd < 0) {
    int err = errno;
    throw Error(options.disk.string(), err == EBUSY ? "in use (a partition is mounted?)" : errno_text(err));
  }
  ::close(fd); // the O_EXCL probe: nothing of this disk is mounted
  PartitionIo io(whole, all, true);

  // One ranged request per mapped range; a dropped connection resumes inside it.
  std::size_t index = 0;
  std::unique_ptr<bundle::Stream> stream;
  std::uint64_t range_left = 0;
  bmap::WriteStats stats = bmap::write_mapped(
    map, io,
    [&](char* buffer, std::size_t size) {
      std::size_t done = 0;
      while (done < size) {
        if (range_left == 0) {
          const bmap::Range& range = map.ranges.at(index++);
          range_left = map.length_of(range);
          stream = bundle::open_stream(source, map.offset_of(range), range_left, options.source_options);
        }
        std::size_t n =
          stream->read(buffer + done, static_cast<std::size_t>(std::min<std::uint64_t>(size - done, range_left)));
        if (n == 0) {
          throw Error(source, "ends early");
        }
        done += n;
        range_left -= n;
      }
    },
    write_options(io, options.progress, source, options.fault));
  io.sync();
  fault_point(options.fault, Fault::before_verify);
  bmap::verify_mapped(map, io);
  // A disk larger than the image: the backup GPT moves to its end and kiln-data grows
  // (the partition; its file system grows at first boot, kiln-grow-data.service). The
  // primary table is written last.
  std::optional<PartitionGrowth> grown;
  if (whole.disk_size > map.image_size) {
    slots::Gpt image_gpt = slots::read_gpt(options.disk);
    util::Fd rw = util::open_file(options.disk, O_RDWR | O_CLOEXEC);
    grown = grow_data_partition(rw.get(), options.disk, image_gpt.sector_size, whole.disk_size);
  }
  // The disk's own GUIDs, grub.cfg following (node/identity): every disk written from
  // this image differs from the image and from each other.
  IdentityReport identity = give_own_guids(options.disk, random_bytes16);
  if (S_ISBLK(st.st_mode)) {
    util::run({"blockdev", "--rereadpt", options.disk.string()}); // best effort: the new table
  }
  return InstallReport{options.disk.string(),   m.name, grown, identity, crypto::sha256_hex(manifest_text), key_id,
                       write_report(map, stats)};
}

} // namespace kiln::node
