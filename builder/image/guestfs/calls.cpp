// Handle's libguestfs calls: inspection, devices and file systems, files, maintenance.
// Each is the C call of the same name, its failure turned into kiln::Error at once.
#include "image/guestfs/handle_impl.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln::gfs {

namespace {

// libguestfs sends an upload's request before it opens the local file, and when that open
// fails the library and the daemon can end up waiting on each other with no deadline but
// the call's (seen once in a fresh ci/test: tar_in of a missing file, stuck in poll with
// the appliance idle). A local file that cannot be read is refused here, before the
// protocol is involved. `subject` names the call as its other errors do; the reason names
// the local file unless the subject does.
void
require_readable(std::string_view op, const std::string& local, const std::string& subject)
{
  util::Fd fd(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    const bool named = subject.rfind(local, 0) == 0;
    throw Error(subject_of(op, subject),
                "cannot read the local file" + (named ? std::string() : " " + local) + ": " + errno_text(errno));
  }
}

} // namespace

// --- inspection ------------------------------------------------------------------------

std::vector<std::string>
Handle::inspect_os()
{
  Impl& im = impl();
  return im.take_list(guestfs_inspect_os(im.g.get()), "inspect_os");
}

std::map<std::string, std::string>
Handle::inspect_mountpoints(const std::string& root)
{
  Impl& im = impl();
  return im.take_map(guestfs_inspect_get_mountpoints(im.g.get(), root.c_str()), "inspect_get_mountpoints", root);
}

std::string
Handle::inspect_get_type(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_type(im.g.get(), root.c_str()), "inspect_get_type", root);
}

std::string
Handle::inspect_get_distro(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_distro(im.g.get(), root.c_str()), "inspect_get_distro", root);
}

std::string
Handle::inspect_get_package_format(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_package_format(im.g.get(), root.c_str()), "inspect_get_package_format",
                        root);
}

std::string
Handle::inspect_get_package_management(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_package_management(im.g.get(), root.c_str()),
                        "inspect_get_package_management", root);
}

int
Handle::inspect_get_major_version(const std::string& root)
{
  Impl& im = impl();
  int v = guestfs_inspect_get_major_version(im.g.get(), root.c_str());
  im.check(v, "inspect_get_major_version", root);
  return v;
}

void
Handle::mount_os(const std::string& root, bool readonly, const std::string& prefix)
{
  mount_points(inspect_mountpoints(root), readonly, prefix);
}

void
Handle::mount_points(const std::map<std::string, std::string>& points, bool readonly, const std::string& prefix)
{
  std::vector<std::pair<std::string, std::string>> order(points.begin(), points.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  for (const auto& [mountpoint, device] : order) {
    const std::string at = prefix.empty() ? mountpoint : mountpoint == "/" ? prefix : prefix + mountpoint;
    if (readonly) {
      mount_ro(device, at);
    } else {
      mount(device, at);
    }
  }
}

// --- devices and filesystems -------------------------------------------------------------

std::vector<std::string>
Handle::list_devices()
{
  Impl& im = impl();
  return im.take_list(guestfs_list_devices(im.g.get()), "list_devices");
}

std::vector<std::string>
Handle::list_partitions()
{
  Impl& im = impl();
  return im.take_list(guestfs_list_partitions(im.g.get()), "list_partitions");
}

std::map<std::string, std::string>
Handle::list_filesystems()
{
  Impl& im = impl();
  return im.take_map(guestfs_list_filesystems(im.g.get()), "list_filesystems");
}

void
Handle::part_disk(const std::string& device, const std::string& parttype)
{
  Impl& im = impl();
  im.check(guestfs_part_disk(im.g.get(), device.c_str(), parttype.c_str()), "part_disk", device);
}

void
Handle::mkfs(const std::string& fstype, const std::string& device, const MkfsOptions& options)
{
  Impl& im = impl();
  struct guestfs_mkfs_opts_argv optargs {};
  if (!options.features.empty()) {
    // libguestfs passes this as `-O LIST`, which only mke2fs understands.
    if (fstype != "ext2" && fstype != "ext3" && fstype != "ext4") {
      throw Error(subject_of("mkfs", device), "filesystem features are only supported for ext2/3/4, not " + fstype);
    }
    optargs.bitmask |= GUESTFS_MKFS_OPTS_FEATURES_BITMASK;
    optargs.features = options.features.c_str();
  }
  if (!options.label.empty()) {
    optargs.bitmask |= GUESTFS_MKFS_OPTS_LABEL_BITMASK;
    optargs.label = options.label.c_str();
  }
  if (options.blocksize > 0) {
    optargs.bitmask |= GUESTFS_MKFS_OPTS_BLOCKSIZE_BITMASK;
    optargs.blocksize = options.blocksize;
  }
  im.check(guestfs_mkfs_opts_argv(im.g.get(), fstype.c_str(), device.c_str(), &optargs), "mkfs", device);
}

void
Handle::mount(const std::string& device, const std::string& mountpoint)
{
  Impl& im = impl();
  im.check(guestfs_mount(im.g.get(), device.c_str(), mountpoint.c_str()), "mount", device);
}

void
Handle::mount_ro(const std::string& device, const std::string& mountpoint)
{
  Impl& im = impl();
  im.check(guestfs_mount_ro(im.g.get(), device.c_str(), mountpoint.c_str()), "mount_ro", device);
}

void
Handle::umount_all()
{
  Impl& im = impl();
  im.check(guestfs_umount_all(im.g.get()), "umount_all");
}

void
Handle::blockdev_flushbufs(const std::string& device)
{
  Impl& im = impl();
  im.check(guestfs_blockdev_flushbufs(im.g.get(), device.c_str()), "blockdev_flushbufs", device);
}

std::string
Handle::vfs_type(const std::string& device)
{
  Impl& im = impl();
  return im.take_string(guestfs_vfs_type(im.g.get(), device.c_str()), "vfs_type", device);
}

std::string
Handle::vfs_uuid(const std::string& device)
{
  Impl& im = impl();
  return im.take_string(guestfs_vfs_uuid(im.g.get(), device.c_str()), "vfs_uuid", device);
}

void
Handle::set_uuid(const std::string& device, const std::string& uuid)
{
  Impl& im = impl();
  im.check(guestfs_set_uuid(im.g.get(), device.c_str(), uuid.c_str()), "set_uuid", device);
}

std::map<std::string, std::string>
Handle::tune2fs_l(const std::string& device)
{
  Impl& im = impl();
  return im.take_map(guestfs_tune2fs_l(im.g.get(), device.c_str()), "tune2fs_l", device);
}

std::optional<Handle::PartitionSpan>
Handle::partition_span(const std::string& device)
{
  std::vector<std::string> parts = list_partitions();
  if (std::find(parts.begin(), parts.end(), device) == parts.end()) {
    return std::nullopt;
  }
  Impl& im = impl();
  const int number = guestfs_part_to_partnum(im.g.get(), device.c_str());
  im.check(number, "part_to_partnum", device);
  const std::string disk = im.take_string(guestfs_part_to_dev(im.g.get(), device.c_str()), "part_to_dev", device);
  std::vector<std::string> disks = list_devices();
  auto at = std::find(disks.begin(), disks.end(), disk);
  if (at == disks.end()) {
    throw Error(subject_of("part_to_dev", device), "its disk " + disk + " is not among the drives");
  }
  struct guestfs_partition_list* list = guestfs_part_list(im.g.get(), disk.c_str());
  im.check(list == nullptr ? -1 : 0, "part_list", disk);
  std::unique_ptr<struct guestfs_partition_list, decltype(&guestfs_free_partition_list)> owner(
    list, &guestfs_free_partition_list);
  for (std::uint32_t i = 0; i < list->len; ++i) {
    if (list->val[i].part_num == number) {
      return PartitionSpan{static_cast<std::size_t>(at - disks.begin()),
                           static_cast<std::uint64_t>(list->val[i].part_start),
                           static_cast<std::uint64_t>(list->val[i].part_size)};
    }
  }
  throw Error(subject_of("part_list", disk), "no partition " + std::to_string(number));
}

void
Handle::pwrite_device(const std::string& device, const std::string& content, std::uint64_t offset)
{
  Impl& im = impl();
  const int n = guestfs_pwrite_device(im.g.get(), device.c_str(), content.data(), content.size(),
                                      static_cast<std::int64_t>(offset));
  im.check(n, "pwrite_device", device);
  if (static_cast<std::size_t>(n) != content.size()) {
    throw Error(subject_of("pwrite_device", device),
                "wrote " + std::to_string(n) + " of " + std::to_string(content.size()) + " bytes");
  }
}

// --- files ---------------------------------------------------------------------------------

bool
Handle::exists(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_exists(im.g.get(), path.c_str()), "exists", path);
}

bool
Handle::is_file(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_is_file(im.g.get(), path.c_str()), "is_file", path);
}

bool
Handle::is_dir(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_is_dir(im.g.get(), path.c_str()), "is_dir", path);
}

bool
Handle::is_symlink(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_is_symlink(im.g.get(), path.c_str()), "is_symlink", path);
}

Stat
Handle::lstat(const std::string& path)
{
  Impl& im = impl();
  std::unique_ptr<struct guestfs_statns, FreeStatns> st(guestfs_lstatns(im.g.get(), path.c_str()));
  if (!st) {
    im.fail("lstat", path);
  }
  Stat out;
  out.mode = static_cast<std::uint32_t>(st->st_mode);
  out.uid = static_cast<std::uint32_t>(st->st_uid);
  out.gid = static_cast<std::uint32_t>(st->st_gid);
  out.size = static_cast<std::uint64_t>(st->st_size);
  return out;
}

std::string
Handle::readlink(const std::string& path)
{
  Impl& im = impl();
  return im.take_string(guestfs_readlink(im.g.get(), path.c_str()), "readlink", path);
}

std::string
Handle::read_file(const std::string& path)
{
  Impl& im = impl();
  size_t size = 0;
  StringPtr data(guestfs_read_file(im.g.get(), path.c_str(), &size));
  if (!data) {
    im.fail("read_file", path);
  }
  return std::string(data.get(), size);
}

void
Handle::write(const std::string& path, const std::string& content)
{
  Impl& im = impl();
  im.check(guestfs_write(im.g.get(), path.c_str(), content.data(), content.size()), "write", path);
}

void
Handle::upload(const std::string& local, const std::string& remote)
{
  Impl& im = impl();
  require_readable("upload", local, remote);
  im.check(guestfs_upload(im.g.get(), local.c_str(), remote.c_str()), "upload", remote);
}

void
Handle::download(const std::string& remote, const std::string& local)
{
  Impl& im = impl();
  im.check(guestfs_download(im.g.get(), remote.c_str(), local.c_str()), "download", remote);
}

void
Handle::tar_in(const std::string& local_tar, const std::string& dir)
{
  Impl& im = impl();
  require_readable("tar_in", local_tar, local_tar + " -> " + dir);
  struct guestfs_tar_in_opts_argv optargs {};
  optargs.bitmask =
    GUESTFS_TAR_IN_OPTS_XATTRS_BITMASK | GUESTFS_TAR_IN_OPTS_SELINUX_BITMASK | GUESTFS_TAR_IN_OPTS_ACLS_BITMASK;
  optargs.xattrs = 1;
  optargs.selinux = 1;
  optargs.acls = 1;
  im.check(guestfs_tar_in_opts_argv(im.g.get(), local_tar.c_str(), dir.c_str(), &optargs), "tar_in",
           local_tar + " -> " + dir);
}

void
Handle::tar_out(const std::string& dir, const std::string& local_tar)
{
  Impl& im = impl();
  struct guestfs_tar_out_opts_argv optargs {};
  optargs.bitmask = GUESTFS_TAR_OUT_OPTS_NUMERICOWNER_BITMASK | GUESTFS_TAR_OUT_OPTS_XATTRS_BITMASK |
                    GUESTFS_TAR_OUT_OPTS_SELINUX_BITMASK | GUESTFS_TAR_OUT_OPTS_ACLS_BITMASK;
  optargs.numericowner = 1;
  optargs.xattrs = 1;
  optargs.selinux = 1;
  optargs.acls = 1;
  im.check(guestfs_tar_out_opts_argv(im.g.get(), dir.c_str(), local_tar.c_str(), &optargs), "tar_out",
           dir + " -> " + local_tar);
}

void
Handle::cp_a(const std::string& src, const std::string& dest)
{
  Impl& im = impl();
  im.check(guestfs_cp_a(im.g.get(), src.c_str(), dest.c_str()), "cp_a", src + " -> " + dest);
}

void
Handle::mkdir_p(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_mkdir_p(im.g.get(), path.c_str()), "mkdir_p", path);
}

void
Handle::chmod(unsigned mode, const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_chmod(im.g.get(), static_cast<int>(mode), path.c_str()), "chmod", path);
}

void
Handle::chown(std::uint32_t uid, std::uint32_t gid, const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_chown(im.g.get(), static_cast<int>(uid), static_cast<int>(gid), path.c_str()), "chown", path);
}

void
Handle::rm_rf(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_rm_rf(im.g.get(), path.c_str()), "rm_rf", path);
}

void
Handle::rm_f(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_rm_f(im.g.get(), path.c_str()), "rm_f", path);
}

void
Handle::ln_sf(const std::string& target, const std::string& link)
{
  Impl& im = impl();
  im.check(guestfs_ln_sf(im.g.get(), target.c_str(), link.c_str()), "ln_sf", link);
}

void
Handle::truncate(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_truncate(im.g.get(), path.c_str()), "truncate", path);
}

std::vector<std::string>
Handle::ls(const std::string& dir)
{
  Impl& im = impl();
  return im.take_list(guestfs_ls(im.g.get(), dir.c_str()), "ls", dir);
}

std::vector<std::string>
Handle::glob(const std::string& pattern)
{
  Impl& im = impl();
  return im.take_list(guestfs_glob_expand(im.g.get(), pattern.c_str()), "glob_expand", pattern);
}

std::string
Handle::getxattr(const std::string& path, const std::string& name)
{
  Impl& im = impl();
  size_t size = 0;
  StringPtr value(guestfs_getxattr(im.g.get(), path.c_str(), name.c_str(), &size));
  if (!value) {
    if (guestfs_last_errno(im.g.get()) == ENODATA) {
      return {};
    }
    im.fail("getxattr", path + " " + name);
  }
  return std::string(value.get(), size);
}

// --- maintenance ---------------------------------------------------------------------------

void
Handle::trim(const std::string& mountpoint)
{
  Impl& im = impl();
  struct guestfs_fstrim_argv optargs {};
  if (guestfs_fstrim_argv(im.g.get(), mountpoint.c_str(), &optargs) != -1) {
    return;
  }
  std::string fstrim_error = one_line(guestfs_last_error(im.g.get()));
  im.emit("fstrim " + mountpoint + " failed (" + fstrim_error + "); zeroing free space instead");
  im.check(guestfs_zero_free_space(im.g.get(), mountpoint.c_str()), "zero_free_space", mountpoint);
}

bool
Handle::selinux_relabel(const std::string& specfile, const std::string& path)
{
  Impl& im = impl();
  char group[] = "selinuxrelabel";
  char* groups[] = {group, nullptr};
  int available = guestfs_feature_available(im.g.get(), groups);
  if (available != 1) {
    return false;
  }
  struct guestfs_selinux_relabel_argv optargs {};
  optargs.bitmask = GUESTFS_SELINUX_RELABEL_FORCE_BITMASK;
  optargs.force = 1;
  im.check(guestfs_selinux_relabel_argv(im.g.get(), specfile.c_str(), path.c_str(), &optargs), "selinux_relabel", path);
  return true;
}

} // namespace kiln::gfs
