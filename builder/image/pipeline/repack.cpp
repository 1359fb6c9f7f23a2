#include "image/pipeline/repack.hpp"

#include "core/util/error.hpp"
#include "image/ab/host_fs.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/formats/stable_ids.hpp"
#include "image/fsimage/ext4_image.hpp"
#include "image/fsimage/ext4_to_tar.hpp"
#include "image/fsimage/fat_times.hpp"

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

namespace {

constexpr const char* k_kept = " kept as the appliance wrote it, not reproducible: ";

// The ext4 file system in `original` re-made from its tree, same UUID, label and
// geometry, as a new file in `scratch` (returned).
fs::path
remake_ext4(util::Runner& runner, const fs::path& original, const fs::path& scratch, std::int64_t epoch,
            std::uint64_t partition_size, const std::string& subject)
{
  const fs::path tree = scratch / "repack-tree.tar";
  const fs::path remade = scratch / "repack-remade.raw";
  fsimage::Ext4Geometry geometry = fsimage::read_ext4_geometry(original);
  fsimage::ext4_to_tar(original, tree);

  fsimage::Ext4Params params;
  params.size = geometry.blocks * geometry.block_size;
  if (params.size > partition_size) {
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
  return remade;
}

} // namespace

RepackResult
repack_file_systems(util::Runner& runner, const fs::path& disk, const std::string& format,
                    const std::vector<RepackTarget>& targets, std::int64_t epoch, const fs::path& scratch)
{
  RepackResult result;
  for (const auto& t : targets) {
    const std::string what = t.mountpoint + " (" + t.device + ", " + t.type + ")";
    if (t.type != "ext4" && t.type != "vfat") {
      result.kept.push_back(what + k_kept + "neither ext4 nor vfat");
      continue;
    }
    if (!t.span || t.span->drive != 0) {
      result.kept.push_back(what + k_kept + "not a partition of the image's disk");
      continue;
    }
    const std::string subject = "reproducible " + t.mountpoint;
    const fs::path original = scratch / "repack-original.raw";
    formats::DiskSpan span{disk, format, t.span->offset, t.span->size};
    formats::read_span(runner, subject, span, original);
    fs::path replacement = original;
    if (t.type == "vfat") {
      fsimage::set_fat_times(original, epoch);
      result.pinned.push_back(what);
    } else {
      replacement = remake_ext4(runner, original, scratch, epoch, t.span->size, subject);
      fs::remove(original);
      result.remade.push_back(what);
    }
    const std::uint64_t size = fs::file_size(replacement); // a partition's tail past its file system stays
    span.size = std::min<std::uint64_t>(size, span.size);
    if (format == "raw") {
      ab::replace_range(replacement, disk, span.offset, span.size); // plain writes: an appliance may hold it
    } else {
      formats::write_span(runner, subject, replacement, span);
    }
    fs::remove(replacement);
  }
  return result;
}

void
say_repacked(const BuildOptions& options, const RepackResult& r, const std::string& indent,
             const std::string& notice_prefix)
{
  for (const auto& f : r.remade) {
    say(options, indent + "file systems: " + f + " re-made from its tree");
  }
  for (const auto& f : r.pinned) {
    say(options, indent + "file systems: " + f + " times set to the epoch");
  }
  for (const auto& f : r.kept) {
    notice_sink(options)(notice_prefix + "file systems: " + f);
  }
}

} // namespace kiln::build
