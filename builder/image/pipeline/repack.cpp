#include "image/pipeline/repack.hpp"

#include "core/util/error.hpp"
#include "image/ab/host_fs.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/formats/stable_ids.hpp"
#include "image/fsimage/ext4_image.hpp"
#include "image/fsimage/ext4_to_tar.hpp"

#include <algorithm>
#include <ctime>

namespace kiln::build {

namespace fs = std::filesystem;

std::vector<RepackTarget>
repack_targets(gfs::Handle& g, const steps::GuestInfo& guest)
{
  std::vector<RepackTarget> out;
  for (const auto& [mountpoint, device] : guest.mounts) {
    out.push_back({device, mountpoint, g.vfs_type(device), g.partition_span(device)});
  }
  return out;
}

std::int64_t
file_system_epoch(const std::optional<std::int64_t>& source_date_epoch)
{
  return source_date_epoch ? *source_date_epoch : static_cast<std::int64_t>(std::time(nullptr));
}

std::string
hash_seed_for(const std::string& uuid)
{
  return fsimage::uuid_text(formats::stable_uuid("ext4 hash seed", uuid).data());
}

RepackResult
repack_file_systems(util::Runner& runner, const fs::path& disk, const std::string& format,
                    const std::vector<RepackTarget>& targets, std::int64_t epoch, const fs::path& scratch)
{
  RepackResult result;
  for (const auto& t : targets) {
    const std::string what = t.mountpoint + " (" + t.device + ", " + t.type + ")";
    if (t.type != "ext4") {
      result.kept.push_back(what + ": not ext4");
      continue;
    }
    if (!t.span || t.span->drive != 0) {
      result.kept.push_back(what + ": not a partition of the image's disk");
      continue;
    }
    const std::string subject = "reproducible " + t.mountpoint;
    const fs::path original = scratch / "repack-original.raw";
    const fs::path tree = scratch / "repack-tree.tar";
    const fs::path remade = scratch / "repack-remade.raw";
    formats::DiskSpan span{disk, format, t.span->offset, t.span->size};
    formats::read_span(runner, subject, span, original);
    fsimage::Ext4Geometry geometry = fsimage::read_ext4_geometry(original);
    fsimage::ext4_to_tar(original, tree);
    fs::remove(original);

    fsimage::Ext4Params params;
    params.size = geometry.blocks * geometry.block_size;
    if (params.size > t.span->size) {
      throw Error(subject, "the file system is larger than its partition");
    }
    params.label = geometry.label;
    params.uuid = geometry.uuid;
    params.hash_seed = hash_seed_for(geometry.uuid);
    params.epoch = std::max<std::int64_t>(epoch, 1); // mke2fs takes no fake time of 0
    params.block_size = geometry.block_size;
    params.inode_size = geometry.inode_size;
    params.inodes = geometry.inodes;
    fsimage::make_ext4_from_tar(runner, tree, remade, params);
    fs::remove(tree);
    span.size = params.size; // a partition's tail past its file system stays as it is
    if (format == "raw") {
      ab::replace_range(remade, disk, span.offset, span.size); // plain writes: an appliance may hold it
    } else {
      formats::write_span(runner, subject, remade, span);
    }
    fs::remove(remade);
    result.remade.push_back(what);
  }
  return result;
}

} // namespace kiln::build
