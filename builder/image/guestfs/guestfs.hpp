// A thin, move-only C++ wrapper over the libguestfs C API: one RAII handle, every
// failing call turned into kiln::Error("guestfs OP SUBJECT", last_error) at once,
// appliance messages forwarded to a log callback, and a decision about KVM that
// kiln makes itself (a probe, then a fallback to TCG on a failed launch).
// libguestfs headers stay inside guestfs.cpp.
#pragma once

#include "image/edit/editor.hpp"
#include "image/guestfs/accel_probe.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::gfs {

struct HandleOptions {
  bool network = false; // appliance networking (off unless a recipe asks)
  int memsize_mb = 0; // 0: libguestfs default
  int smp = 0; // 0: libguestfs default
  // Deadlines: a launch under TCG (0: derived from the probe's TCG boot, tcg_launch_
  // deadline), and every other call (a guest command included). A KVM launch has its own,
  // derived from the probe too (kvm_launch_deadline).
  std::chrono::seconds launch_timeout{0};
  std::chrono::seconds call_timeout{3600};
  std::function<void(const std::string&)> log; // appliance/library messages, one line each
  // What the user must see even when the log is not shown: the library's warnings and the
  // KVM fallback, one line each. Unset: they go to the log.
  std::function<void(const std::string&)> notice;
  std::function<void(std::uint64_t, std::uint64_t)> progress; // long transfers (upload, tar_in, ...)
};

struct Stat {
  std::uint32_t mode = 0; // including the file type bits
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
};

// A guest command's status and output (the editor interface's type).
using CommandResult = edit::CommandResult;

struct MkfsOptions {
  std::string label;
  std::string features; // ext2/3/4 only: mke2fs -O list, e.g. "^metadata_csum,^64bit"
  int blocksize = 0;
};

class Handle {
public:
  // Creates a handle (environment variables ignored, errors not printed by libguestfs).
  explicit Handle(HandleOptions options = {});
  Handle(Handle&&) noexcept;
  Handle& operator=(Handle&&) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle(); // closes; never throws; call shutdown() on success paths to see write-back errors

  void add_drive(const std::string& path, const std::string& format, bool readonly = false);
  // Launches the appliance with the accelerator probe_acceleration() chose. If a KVM launch
  // fails or does not come up within kvm_launch_deadline(), stops it, relaunches once with
  // TCG, remembers that for this machine and reports it once through the notice callback.
  // Never relaunches after a signal.
  void launch();
  // Flushes and stops the appliance; throws if write-back failed.
  void shutdown();
  // The accelerator the last launch used.
  Accel accel() const;

  // Inspection.
  std::vector<std::string> inspect_os();
  std::map<std::string, std::string> inspect_mountpoints(const std::string& root); // mountpoint -> device
  std::string inspect_get_type(const std::string& root);
  std::string inspect_get_distro(const std::string& root);
  std::string inspect_get_package_format(const std::string& root); // rpm, deb, ...
  std::string inspect_get_package_management(const std::string& root); // yum, dnf, apt, ...
  int inspect_get_major_version(const std::string& root);
  // Mounts every filesystem of `root` at its mountpoint under `prefix` (shortest first).
  void mount_os(const std::string& root, bool readonly = false, const std::string& prefix = "");
  // The same for mount points known beforehand (mountpoint -> device), without inspection.
  void mount_points(const std::map<std::string, std::string>& points, bool readonly = false,
                    const std::string& prefix = "");

  // Devices and filesystems.
  std::vector<std::string> list_devices();
  std::vector<std::string> list_partitions();
  std::map<std::string, std::string> list_filesystems(); // device -> type
  void part_disk(const std::string& device, const std::string& parttype); // mbr | gpt
  void mkfs(const std::string& fstype, const std::string& device, const MkfsOptions& options = {});
  void mount(const std::string& device, const std::string& mountpoint);
  void mount_ro(const std::string& device, const std::string& mountpoint);
  void umount_all();
  std::string vfs_type(const std::string& device);
  // Drops the appliance kernel's buffers of a device, so that it reads again what the host
  // wrote into the drive's file since (blockdev --flushbufs).
  void blockdev_flushbufs(const std::string& device);
  std::string vfs_uuid(const std::string& device);
  void set_uuid(const std::string& device, const std::string& uuid); // the file system's
  std::map<std::string, std::string> tune2fs_l(const std::string& device);
  // Where a partition lies: its disk's index among the drives (0: the first added), its
  // byte offset and size. nullopt when `device` is no partition (a whole disk, an LVM
  // volume).
  struct PartitionSpan {
    std::size_t drive = 0;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
  };
  std::optional<PartitionSpan> partition_span(const std::string& device);
  // Writes `content` (at most 2 MiB: one call) at `offset` of `device`.
  void pwrite_device(const std::string& device, const std::string& content, std::uint64_t offset);

  // Files (paths inside the mounted guest).
  bool exists(const std::string& path);
  bool is_file(const std::string& path);
  bool is_dir(const std::string& path);
  bool is_symlink(const std::string& path);
  Stat lstat(const std::string& path);
  std::string readlink(const std::string& path);
  std::string read_file(const std::string& path);
  void write(const std::string& path, const std::string& content);
  void upload(const std::string& local, const std::string& remote);
  void download(const std::string& remote, const std::string& local);
  // Unpacks an uncompressed tar file into `dir`, keeping xattrs, SELinux labels and ACLs.
  void tar_in(const std::string& local_tar, const std::string& dir);
  // The tree beneath `dir` into a local tar: numeric owners, xattrs, SELinux labels, ACLs.
  void tar_out(const std::string& dir, const std::string& local_tar);
  // `cp -a src dest` inside the appliance: ownership, modes, times, hard links, sparse files
  // and every xattr (the appliance runs without SELinux, so security.selinux is copied as a
  // plain xattr, and /etc/xattr.conf skips none kiln needs).
  void cp_a(const std::string& src, const std::string& dest);
  void mkdir_p(const std::string& path);
  void chmod(unsigned mode, const std::string& path);
  void chown(std::uint32_t uid, std::uint32_t gid, const std::string& path);
  void rm_rf(const std::string& path);
  void rm_f(const std::string& path);
  void ln_sf(const std::string& target, const std::string& link);
  void truncate(const std::string& path);
  std::vector<std::string> ls(const std::string& dir);
  std::vector<std::string> glob(const std::string& pattern); // glob_expand
  std::string getxattr(const std::string& path, const std::string& name); // "" when absent

  // Runs `script` with /bin/sh in the guest (chroot /sysroot). Never throws for a non-zero
  // exit: the status, stdout and stderr are returned.
  CommandResult sh(const std::string& script);

  // Free space: fstrim where supported, else zero_free_space.
  void trim(const std::string& mountpoint);
  // setfiles with the guest's own file_contexts; false (without throwing) when the appliance
  // cannot relabel (no setfiles), so the caller can fall back to /.autorelabel.
  bool selinux_relabel(const std::string& specfile, const std::string& path);

  std::string version(); // "1.48.6"

private:
  struct Impl;
  // The live state; throws Error for a moved-from handle.
  Impl& impl() const;
  std::unique_ptr<Impl> m_impl;
};

// libguestfs version string without launching an appliance.
std::string library_version();

} // namespace kiln::gfs
