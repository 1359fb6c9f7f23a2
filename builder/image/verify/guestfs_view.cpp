#include "image/verify/guestfs_view.hpp"

#include "core/dcos/bundle.hpp"
#include "core/util/error.hpp"
#include "core/util/runner.hpp"
#include "image/formats/qemu_img.hpp"

#include <algorithm>
#include <sstream>

namespace kiln::verify {

GuestfsView::GuestfsView(gfs::Handle& g, std::map<std::string, std::string> mounts, std::string package_format,
                         std::string name)
  : m_g(g), m_mounts(std::move(mounts)), m_package_format(std::move(package_format)), m_name(std::move(name))
{}

bool
GuestfsView::exists(const std::string& path)
{
  return m_g.exists(path);
}

bool
GuestfsView::is_file(const std::string& path)
{
  // The daemon resolves every component but the last in the guest's root; follow the
  // last one too, as the checks expect.
  return m_g.is_file(path) || (m_g.is_symlink(path) && m_g.exists(path) && !is_dir(path));
}

bool
GuestfsView::is_dir(const std::string& path)
{
  return m_g.is_dir(path) || (m_g.is_symlink(path) && m_g.exists(path) && m_g.is_dir(path + "/."));
}

bool
GuestfsView::is_symlink(const std::string& path)
{
  return m_g.is_symlink(path);
}

std::string
GuestfsView::readlink(const std::string& path)
{
  return m_g.readlink(path);
}

std::string
GuestfsView::read_file(const std::string& path)
{
  return m_g.read_file(path);
}

std::vector<std::string>
GuestfsView::list(const std::string& dir)
{
  if (!is_dir(dir)) {
    return {};
  }
  return m_g.ls(dir);
}

std::optional<std::string>
GuestfsView::package_version(const std::string& name)
{
  if (!m_packages) {
    // One query for the whole database: each command in the appliance costs a round trip.
    std::string script = m_package_format == "rpm"
                           ? "rpm -qa --qf '%{NAME}\\t%{VERSION}-%{RELEASE}\\n'"
                           : "dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\n'";
    gfs::CommandResult r = m_g.sh(script);
    if (r.exit_code != 0) {
      throw Error(m_name, "cannot read the " + m_package_format + " database: " + r.err);
    }
    m_packages.emplace();
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> f;
      std::istringstream ls(line);
      for (std::string x; std::getline(ls, x, '\t');) {
        f.push_back(x);
      }
      if (m_package_format != "rpm") {
        // dpkg: only installed packages ("ii "), epoch dropped.
        if (f.size() != 3 || f[0].rfind("ii", 0) != 0) {
          continue;
        }
        f.erase(f.begin());
        if (auto c = f[1].find(':'); c != std::string::npos) {
          f[1] = f[1].substr(c + 1);
        }
      }
      if (f.size() == 2) {
        (*m_packages)[f[0]] = f[1];
      }
    }
  }
  auto it = m_packages->find(name);
  return it == m_packages->end() ? std::nullopt : std::optional(it->second);
}

std::optional<dcos::Filesystem>
GuestfsView::filesystem_of(const std::string& path)
{
  const std::map<std::string, std::string>& mounts = m_mounts;
  std::vector<std::string> points;
  for (const auto& [mp, dev] : mounts) {
    points.push_back(mp);
  }
  auto mp = dcos::mountpoint_of(path, points);
  if (!mp) {
    return std::nullopt;
  }
  dcos::Filesystem f;
  f.mountpoint = *mp;
  f.device = mounts.at(*mp);
  f.type = m_g.vfs_type(f.device);
  if (f.type == "xfs") {
    if (!m_ftype.count(f.device)) {
      // The superblock is the device's first sector; read it with the guest's own
      // coreutils (the appliance's /dev is visible in the guest's root while it runs).
      gfs::CommandResult r = m_g.sh("head -c 512 " + f.device + " | od -An -v -tx1");
      std::optional<bool> ftype;
      if (r.exit_code == 0) {
        std::string bytes;
        std::istringstream in(r.out);
        for (std::string hex; in >> hex;) {
          bytes.push_back(static_cast<char>(std::stoi(hex, nullptr, 16)));
        }
        ftype = dcos::xfs_superblock_ftype(bytes);
      }
      m_ftype[f.device] = ftype;
    }
    f.ftype = m_ftype[f.device];
  }
  return f;
}

std::string
GuestfsView::describe() const
{
  return m_name;
}

std::vector<dcos::CheckResult>
verify_image(const std::filesystem::path& image, const ImageVerifyOptions& options)
{
  std::error_code ec;
  if (!std::filesystem::is_regular_file(image, ec)) {
    throw Error(image.string(), "no such image file");
  }
  // Reject a bad version before the appliance starts.
  (void)dcos::role_ports(options.checks.role, options.checks.version);
  gfs::HandleOptions h;
  h.log = options.log;
  gfs::Handle g(h);
  g.add_drive(image.string(), formats::image_info(util::system_runner(), image).format, true);
  g.launch();
  std::vector<std::string> roots = g.inspect_os();
  if (roots.size() != 1) {
    throw Error(image.string(), roots.empty() ? "no operating system found in the image"
                                              : "more than one operating system in the image");
  }
  // Read-write on the read-only drive: the queries' temporary files land in the
  // throwaway overlay, never in the image.
  std::map<std::string, std::string> mounts = g.inspect_mountpoints(roots.front());
  g.mount_points(mounts);
  GuestfsView view(g, mounts, g.inspect_get_package_format(roots.front()), image.filename().string());
  std::vector<dcos::CheckResult> results = dcos::run_checks(view, options.checks);
  g.umount_all();
  g.shutdown();
  return results;
}

} // namespace kiln::verify
