// kiln-node install: a signed whole-disk image onto a blank disk (PXE installer), the
// disk then given its own GUIDs.
#include "core/node/node.hpp"

#include "core/node/command_common.hpp"
#include "core/node/disk_lock.hpp"

#include "core/bundle/verified_source.hpp"

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
  // Everything that can refuse does so before the disk is opened.
  std::unique_ptr<bundle::VerifiedSource> source = bundle::open_disk_image(
    {options.source, options.bmap, options.manifest}, options.source_options, trust ? &*trust : nullptr);
  const bmap::Bmap& map = source->verified().bmap;

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

  // A disk being installed holds nothing worth comparing with: written straight.
  const WritePlan plan;
  bmap::WriteStats stats =
    write_and_verify(*source, io, options.progress, options.source, options.fault, plan, nullptr);
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
  const bundle::Verified& verified = source->verified();
  return InstallReport{options.disk.string(),
                       verified.manifest.name,
                       grown,
                       identity,
                       verified.manifest_sha256,
                       verified.key_id,
                       write_report(map, stats, plan.mode)};
}

} // namespace kiln::node
