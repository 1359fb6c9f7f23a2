// The seam between the build's logic and the appliance: the file and command
// operations that recipe steps, the DC/OS stage, sysprep, SELinux labelling and the A/B
// slot root need inside a mounted guest. gfs::GuestfsEditor implements it over a
// libguestfs handle (image/guestfs/guestfs_editor.hpp); tests/support/fake_editor.hpp
// implements it in memory and records what ran, so that logic is unit-tested without
// launching an appliance. Paths are absolute paths inside the guest. Every failing
// operation throws Error naming the operation and the path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::edit {

struct CommandResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

class Editor {
public:
  virtual ~Editor() = default;

  // Queries. exists() follows symlinks; is_file() and is_dir() do not (a symlink to a
  // file is neither), as libguestfs' is-file and is-dir.
  virtual bool exists(const std::string& path) = 0;
  virtual bool is_file(const std::string& path) = 0;
  virtual bool is_dir(const std::string& path) = 0;
  virtual bool is_symlink(const std::string& path) = 0;
  virtual std::string readlink(const std::string& path) = 0;
  virtual std::string read_file(const std::string& path) = 0;
  // Sorted paths matching a shell pattern; directories end in '/'.
  virtual std::vector<std::string> glob(const std::string& pattern) = 0;
  // Copies a guest file to `local` on the build host.
  virtual void download(const std::string& remote, const std::string& local) = 0;

  // Changes. write() and upload() need the parent directory to exist.
  virtual void write(const std::string& path, const std::string& content) = 0;
  virtual void upload(const std::string& local, const std::string& remote) = 0;
  // Unpacks an uncompressed tar on the build host into `dir` (owners, modes, xattrs kept).
  virtual void tar_in(const std::string& local_tar, const std::string& dir) = 0;
  virtual void mkdir_p(const std::string& path) = 0;
  virtual void chmod(unsigned mode, const std::string& path) = 0;
  virtual void chown(std::uint32_t uid, std::uint32_t gid, const std::string& path) = 0;
  virtual void rm_rf(const std::string& path) = 0;
  virtual void rm_f(const std::string& path) = 0;
  virtual void ln_sf(const std::string& target, const std::string& link) = 0;
  virtual void truncate(const std::string& path) = 0;

  // Runs `script` with /bin/sh chrooted into the guest. Never throws for a non-zero exit.
  virtual CommandResult sh(const std::string& script) = 0;
  // Labels `path` (recursively) with the appliance's setfiles and the guest's `specfile`;
  // false, without throwing, when the appliance cannot label.
  virtual bool selinux_relabel(const std::string& specfile, const std::string& path) = 0;
};

} // namespace kiln::edit
