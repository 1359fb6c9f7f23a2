#include "image/edit/boot_kernel.hpp"

#include "core/util/version.hpp"

#include <algorithm>
#include <vector>

namespace kiln::edit {

std::optional<BootKernel>
newest_kernel(Editor& g)
{
  const std::string prefix = "/boot/vmlinuz-";
  std::vector<std::string> versions;
  for (const auto& path : g.glob(prefix + "*")) {
    if (path.find("rescue") == std::string::npos && path.back() != '/') {
      versions.push_back(path.substr(prefix.size()));
    }
  }
  std::sort(versions.begin(), versions.end(),
            [](const auto& a, const auto& b) { return util::rpm_version_compare(a, b) > 0; });
  for (const auto& version : versions) { // newest first
    for (const auto& initrd : {"initramfs-" + version + ".img", "initrd.img-" + version}) {
      if (g.is_file("/boot/" + initrd)) {
        return BootKernel{version, "vmlinuz-" + version, initrd};
      }
    }
  }
  return std::nullopt;
}

} // namespace kiln::edit
