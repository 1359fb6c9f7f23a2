// edit::Editor over a launched libguestfs handle with the guest mounted: each operation
// is the libguestfs call of the same name.
#pragma once

#include "image/edit/editor.hpp"
#include "image/guestfs/guestfs.hpp"

namespace kiln::gfs {

class GuestfsEditor final : public edit::Editor {
public:
  explicit GuestfsEditor(Handle& g) : m_g(g) {}

  bool exists(const std::string& path) override { return m_g.exists(path); }
  bool is_file(const std::string& path) override { return m_g.is_file(path); }
  bool is_dir(const std::string& path) override { return m_g.is_dir(path); }
  bool is_symlink(const std::string& path) override { return m_g.is_symlink(path); }
  std::string readlink(const std::string& path) override { return m_g.readlink(path); }
  std::string read_file(const std::string& path) override { return m_g.read_file(path); }
  void download(const std::string& remote, const std::string& local) override { m_g.download(remote, local); }
  std::vector<std::string> glob(const std::string& pattern) override { return m_g.glob(pattern); }
  void write(const std::string& path, const std::string& content) override { m_g.write(path, content); }
  void upload(const std::string& local, const std::string& remote) override { m_g.upload(local, remote); }
  void tar_in(const std::string& local_tar, const std::string& dir) override { m_g.tar_in(local_tar, dir); }
  void mkdir_p(const std::string& path) override { m_g.mkdir_p(path); }
  void chmod(unsigned mode, const std::string& path) override { m_g.chmod(mode, path); }
  void chown(std::uint32_t uid, std::uint32_t gid, const std::string& path) override { m_g.chown(uid, gid, path); }
  void rm_rf(const std::string& path) override { m_g.rm_rf(path); }
  void rm_f(const std::string& path) override { m_g.rm_f(path); }
  void ln_sf(const std::string& target, const std::string& link) override { m_g.ln_sf(target, link); }
  void truncate(const std::string& path) override { m_g.truncate(path); }
  edit::CommandResult sh(const std::string& script) override { return m_g.sh(script); }
  bool selinux_relabel(const std::string& specfile, const std::string& path) override
  {
    return m_g.selinux_relabel(specfile, path);
  }

private:
  Handle& m_g;
};

} // namespace kiln::gfs
