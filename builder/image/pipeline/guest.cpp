#include "image/pipeline/guest.hpp"

#include "core/util/error.hpp"

namespace kiln::build {

steps::GuestInfo
inspect_guest(gfs::Handle& g, const std::string& subject)
{
  std::vector<std::string> roots = g.inspect_os();
  if (roots.size() != 1) {
    throw Error(subject, roots.empty() ? "no operating system found" : "more than one operating system");
  }
  steps::GuestInfo info;
  info.root = roots.front();
  info.distro = g.inspect_get_distro(info.root);
  info.package_format = g.inspect_get_package_format(info.root);
  info.package_manager = g.inspect_get_package_management(info.root);
  info.major_version = g.inspect_get_major_version(info.root);
  info.mounts = g.inspect_mountpoints(info.root);
  return info;
}

steps::GuestInfo
known_or_inspected(gfs::Handle& g, const std::optional<steps::GuestInfo>& known, const std::string& subject)
{
  if (known && !known->root.empty() && known->mounts.count("/") != 0) {
    return *known;
  }
  return inspect_guest(g, subject);
}

} // namespace kiln::build
