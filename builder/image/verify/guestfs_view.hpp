// The FsView of `kiln verify` over an image opened with libguestfs: the checks in
// core/dcos run unchanged against it. Package versions come from the guest's own
// database (rpm -qa or dpkg-query, one query run in the appliance); the file system
// of a path from inspection's mount points, and XFS ftype from the device's superblock.
#pragma once

#include "core/dcos/checks.hpp"
#include "core/dcos/view.hpp"
#include "image/guestfs/guestfs.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace kiln::verify {

class GuestfsView : public dcos::FsView {
public:
  // `g` is launched with the guest's file systems mounted under / as `mounts` says
  // (mountpoint -> device).
  GuestfsView(gfs::Handle& g, std::map<std::string, std::string> mounts, std::string package_format, std::string name);
  bool exists(const std::string& path) override;
  bool is_file(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  bool is_symlink(const std::string& path) override;
  std::string readlink(const std::string& path) override;
  std::string read_file(const std::string& path) override;
  std::vector<std::string> list(const std::string& dir) override;
  std::optional<std::string> package_version(const std::string& name) override;
  std::optional<dcos::Filesystem> filesystem_of(const std::string& path) override;
  std::string describe() const override;

private:
  gfs::Handle& m_g;
  std::map<std::string, std::string> m_mounts;
  std::string m_package_format;
  std::string m_name;
  std::optional<std::map<std::string, std::string>> m_packages;
  std::map<std::string, std::optional<bool>> m_ftype; // device -> ftype
};

struct ImageVerifyOptions {
  dcos::VerifyOptions checks;
  std::function<void(const std::string&)> log;
};

// Opens `image` (never modified: the drive is read-only, writes of the queries land in
// a throwaway overlay) with ONE appliance launch and runs the checks.
std::vector<dcos::CheckResult> verify_image(const std::filesystem::path& image, const ImageVerifyOptions& options);

} // namespace kiln::verify
