// A read-only view of an image's root file system, as the checks of `kiln verify`
// need it. Paths are absolute paths in the image; symbolic links resolve inside the
// image (an absolute target means the image's root, never the host's). Core holds the
// interface and a plain-directory implementation (unit tests, unpacked trees); the
// libguestfs-backed view of an image file lives in builder/image/verify.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::dcos {

// The file system that holds a path.
struct Filesystem {
  std::string mountpoint; // in the image
  std::string device; // what it was mounted from (informational)
  std::string type; // xfs, ext4, ...
  std::optional<bool> ftype; // XFS only: directory entries carry the file type (ftype=1)
};

class FsView {
public:
  virtual ~FsView() = default;
  // Following symbolic links.
  virtual bool exists(const std::string& path) = 0;
  virtual bool is_file(const std::string& path) = 0;
  virtual bool is_dir(const std::string& path) = 0;
  // Not following: the entry itself.
  virtual bool is_symlink(const std::string& path) = 0;
  virtual std::string readlink(const std::string& path) = 0;
  // Contents of a regular file (following links); throws Error when it cannot.
  virtual std::string read_file(const std::string& path) = 0;
  // Names in a directory (following links to it); empty when it is not one.
  virtual std::vector<std::string> list(const std::string& dir) = 0;
  // The version of an installed package from the image's own package database (rpm or
  // dpkg), "VERSION-RELEASE" without epoch; nullopt when not installed.
  virtual std::optional<std::string> package_version(const std::string& name) = 0;
  // The file system holding `path`; nullopt when the view cannot tell.
  virtual std::optional<Filesystem> filesystem_of(const std::string& path) = 0;
  // What is being checked, for messages ("image.qcow2", a directory).
  virtual std::string describe() const = 0;
};

// The tree under a host directory. Package versions come from dpkg's status file, or
// from `rpm --root DIR` when the tree has an rpm database and the host has rpm.
// `mounts` lets tests say which file system holds which path.
class DirView : public FsView {
public:
  explicit DirView(std::filesystem::path root, std::map<std::string, Filesystem> mounts = {});
  bool exists(const std::string& path) override;
  bool is_file(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  bool is_symlink(const std::string& path) override;
  std::string readlink(const std::string& path) override;
  std::string read_file(const std::string& path) override;
  std::vector<std::string> list(const std::string& dir) override;
  std::optional<std::string> package_version(const std::string& name) override;
  std::optional<Filesystem> filesystem_of(const std::string& path) override;
  std::string describe() const override;

  // The host path `path` resolves to inside the root (links followed); nullopt when a
  // component is missing or the links loop.
  std::optional<std::filesystem::path> resolve(const std::string& path, bool follow_last = true) const;

private:
  std::filesystem::path m_root;
  std::map<std::string, Filesystem> m_mounts;
};

// Version of a package in dpkg's status file text (Status "install ok installed").
std::optional<std::string> dpkg_status_version(const std::string& status, const std::string& name);

// XFS: whether the superblock (the first 512 bytes of the device) says ftype=1.
// nullopt when the bytes are not an XFS superblock.
std::optional<bool> xfs_superblock_ftype(const std::string& superblock);

// Longest-prefix match of `path` among mount points.
std::optional<std::string> mountpoint_of(const std::string& path, const std::vector<std::string>& mountpoints);

// Compares version strings the way `sort -V` orders them (numeric runs numerically).
int compare_versions(const std::string& a, const std::string& b);

} // namespace kiln::dcos
