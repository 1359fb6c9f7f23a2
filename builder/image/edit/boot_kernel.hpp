// The kernel an image boots: the newest under /boot, by version as rpm orders them
// (util/version.hpp: CentOS 7's 3.10.0-1160.83.1.el7 is newer than 3.10.0-1160.el7),
// that has its initramfs (dracut's initramfs-V.img on EL7, initrd.img-V on Debian);
// rescue kernels skipped. The A/B slot's /boot links and the PXE output take this one.
#pragma once

#include "image/edit/editor.hpp"

#include <optional>
#include <string>

namespace kiln::edit {

struct BootKernel {
  std::string version; // 3.10.0-1160.83.1.el7.x86_64
  std::string kernel; // file name in /boot: vmlinuz-VERSION
  std::string initrd; // initramfs-VERSION.img or initrd.img-VERSION
};

std::optional<BootKernel> newest_kernel(Editor& g);

} // namespace kiln::edit
