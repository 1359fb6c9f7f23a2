#include "image/verify/image_tree.hpp"

#include "core/util/error.hpp"
#include "core/util/runner.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/guestfs/guestfs.hpp"

#include <algorithm>
#include <cctype>

namespace kiln::verify {

namespace fs = std::filesystem;

namespace {

// Whether `device` (/dev/sda1, /dev/sda) is on drive `drive` (/dev/sda), not another
// whose name starts the same way (/dev/sdab).
bool
on_drive(const std::string& device, const std::string& drive)
{
  if (device.rfind(drive, 0) != 0) {
    return false;
  }
  return device.size() == drive.size() || std::isdigit(static_cast<unsigned char>(device[drive.size()])) != 0;
}

// Where image `i` (on `drive`) mounts: its operating system's mount points, else its one
// file system at /.
std::map<std::string, std::string>
mounts_of(gfs::Handle& g, const std::vector<std::string>& roots, const std::string& drive, const fs::path& image)
{
  std::vector<std::string> mine;
  std::copy_if(roots.begin(), roots.end(), std::back_inserter(mine),
               [&](const std::string& r) { return on_drive(r, drive); });
  if (mine.size() > 1) {
    throw Error(image.string(), "more than one operating system in the image");
  }
  if (mine.size() == 1) {
    return g.inspect_mountpoints(mine.front());
  }
  std::vector<std::string> filesystems;
  for (const auto& [device, type] : g.list_filesystems()) {
    if (on_drive(device, drive) && type != "swap" && type != "unknown" && !type.empty()) {
      filesystems.push_back(device);
    }
  }
  if (filesystems.size() != 1) {
    throw Error(image.string(), filesystems.empty()
                                  ? "no file system found"
                                  : "no operating system found, and " + std::to_string(filesystems.size()) +
                                      " file systems: cannot tell which is the root");
  }
  return {{"/", filesystems.front()}};
}

} // namespace

std::vector<archive::Tree>
image_trees(const std::vector<fs::path>& images, const ImageTreeOptions& options)
{
  gfs::HandleOptions h;
  h.log = options.log;
  gfs::Handle g(h);
  for (const auto& image : images) {
    std::error_code ec;
    if (!fs::is_regular_file(image, ec)) {
      throw Error(image.string(), "no such image file");
    }
    g.add_drive(image.string(), formats::image_info(util::system_runner(), image).format, true);
  }
  g.launch();
  const std::vector<std::string> drives = g.list_devices();
  const std::vector<std::string> roots = g.inspect_os();
  std::vector<archive::Tree> trees;
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::map<std::string, std::string> mounts = mounts_of(g, roots, drives.at(i), images[i]);
    // Read-write on the read-only drive: the journal replay of a file system not cleanly
    // unmounted lands in the throwaway overlay, never in the image.
    g.mount_points(mounts);
    const fs::path tar = options.scratch / ("tree-" + std::to_string(i) + ".tar");
    g.tar_out("/", tar.string());
    g.umount_all();
    trees.push_back(archive::read_tree(tar, images[i].string()));
    fs::remove(tar);
  }
  g.shutdown();
  return trees;
}

} // namespace kiln::verify
