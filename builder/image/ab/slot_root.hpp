// The root file system of an A/B slot (builder/core/slots/abi.hpp): what the "ab" stage
// writes into slot A after copying the finalized image's tree, through the editor
// interface (so it is unit-tested against the in-memory guest).
#pragma once

#include "image/edit/boot_kernel.hpp"
#include "image/edit/editor.hpp"

#include <functional>
#include <string>
#include <vector>

namespace kiln::ab {

using Kernel = edit::BootKernel;

// The kernel the slot boots (edit::newest_kernel). Throws Error("layout ab", ...) when
// the image has none.
Kernel find_kernel(edit::Editor& g);

struct SlotRoot {
  std::string root_fs; // xfs | ext4
  std::string data_fs; // kiln-data's
  bool grow_data = false; // install kiln-grow-data.service
  Kernel kernel;
  std::string old_fstab; // the image's own
};

// Writes the slot's /etc/fstab, /boot/vmlinuz and /boot/initrd.img (stable names that
// kiln's grub.cfg boots), the mount points of kiln-boot, the ESP and kiln-data, the
// state directories, and kiln-mark-good.service (plus kiln-grow-data.service) enabled.
// Returns every path it added, for labelling.
std::vector<std::string> prepare_slot_root(edit::Editor& g, const SlotRoot& slot);

// Labels the paths kiln added with the image's own policy when `wanted` (the recipe has
// a selinux step) and the image has SELinux enabled with a policy; when neither the
// image's setfiles nor the appliance's can, leaves /.autorelabel so the first boot
// relabels. `log` hears what happened.
void label_added_paths(edit::Editor& g, bool wanted, const std::vector<std::string>& paths,
                       const std::function<void(const std::string&)>& log);

// The /etc/fstab of an A/B slot: root from the kernel command line, kiln-boot, ESP and
// kiln-data by file system label, bind mounts for the state directories; the virtual and
// network file systems of the old fstab (tmpfs, proc, nfs...) are carried over.
std::string ab_fstab(const std::string& root_fs, const std::string& data_fs, const std::string& old_fstab);

// The state directories that live on kiln-data, bind-mounted back into place.
const std::vector<std::string>& ab_data_dirs();

// kiln-mark-good.service: after multi-user.target, only on a kiln.slot= boot, runs
// `kiln-node mark-good --when-healthy` asking every 30 s for up to an hour, then gives
// up and leaves the slot unconfirmed, so GRUB's tries decide at the next boot.
const std::string& mark_good_unit_text();

// kiln-grow-data.service (installed when ab.grow_data): a oneshot after the kiln-data
// mount and before kiln-dcos-install.service and docker.service, only on a kiln.slot=
// boot, runs `kiln-node grow-data` (partition and file system to the disk's end).
const std::string& grow_data_unit_text();

} // namespace kiln::ab
