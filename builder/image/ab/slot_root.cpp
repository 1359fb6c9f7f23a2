#include "image/ab/slot_root.hpp"

#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "image/edit/selinux.hpp"
#include "image/steps/units.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace kiln::ab {

namespace fs = std::filesystem;

namespace {

const char* const k_mark_good_service_text =
  "[Unit]\n"
  "Description=kiln: confirm the booted A/B slot once the node is healthy\n"
  "After=multi-user.target\n"
  "ConditionKernelCommandLine=kiln.slot\n"
  "\n"
  "[Service]\n"
  "# kiln-node asks for health every 30 s until it holds or the deadline (1 h) has passed;\n"
  "# then the unit fails and the slot stays in trial, so GRUB's tries decide at the next\n"
  "# boot. No Restart=: the retrying is kiln-node's. Not oneshot, so multi-user.target and\n"
  "# `systemctl is-system-running` do not wait for it.\n"
  "Type=simple\n"
  "RemainAfterExit=yes\n"
  "ExecStart=/usr/bin/kiln-node mark-good --when-healthy --deadline 3600 --interval 30\n"
  "\n"
  "[Install]\n"
  "WantedBy=multi-user.target\n";

const char* const k_grow_data_service_text =
  "[Unit]\n"
  "Description=kiln: grow kiln-data (partition and file system) to the end of the disk\n"
  "ConditionKernelCommandLine=kiln.slot\n"
  "RequiresMountsFor=/var/lib/kiln-data\n"
  "Before=kiln-dcos-install.service docker.service\n"
  "\n"
  "[Service]\n"
  "# Idempotent: once kiln-data reaches the disk's end it only says so. It runs at every\n"
  "# boot, so a disk enlarged later (a VM's volume) is used too. A failure leaves kiln-data\n"
  "# as it was and blocks nothing (Before= only orders).\n"
  "Type=oneshot\n"
  "RemainAfterExit=yes\n"
  "TimeoutStartSec=600\n"
  "ExecStart=/usr/bin/kiln-node grow-data\n"
  "\n"
  "[Install]\n"
  "WantedBy=multi-user.target\n";

} // namespace

Kernel
find_kernel(edit::Editor& g)
{
  if (std::optional<Kernel> k = edit::newest_kernel(g)) {
    return *k;
  }
  throw Error("layout ab", "the image has no kernel with an initramfs under /boot (add the kernel package: "
                           "kernel on EL7, linux-image-amd64 on Debian)");
}

const std::string&
mark_good_unit_text()
{
  static const std::string text = k_mark_good_service_text;
  return text;
}

const std::string&
grow_data_unit_text()
{
  static const std::string text = k_grow_data_service_text;
  return text;
}

const std::vector<std::string>&
ab_data_dirs()
{
  static const std::vector<std::string> dirs = {"/var/lib/docker", "/var/lib/mesos", "/var/lib/dcos", "/var/log"};
  return dirs;
}

std::string
ab_fstab(const std::string& root_fs, const std::string& data_fs, const std::string& old_fstab)
{
  std::string out = "# kiln A/B layout (kiln's builder/core/slots/abi.hpp). The root file system is the\n"
                    "# booted slot's, named on the kernel command line (root=PARTUUID=... kiln.slot=A|B):\n"
                    "# nothing here names a slot, so this file system works in slot A and in slot B.\n"
                    "/dev/root / " +
                    root_fs +
                    " defaults 0 0\n"
                    "LABEL=" +
                    std::string(slots::k_label_boot) + " " + std::string(slots::k_boot_mount) +
                    " ext4 defaults 0 2\n"
                    "LABEL=" +
                    std::string(slots::k_label_esp) +
                    " /boot/efi vfat umask=0077,shortname=winnt 0 2\n"
                    "LABEL=" +
                    std::string(slots::k_label_data) + " " + std::string(slots::k_data_mount) + " " + data_fs +
                    " defaults 0 2\n"
                    "# Node state lives on kiln-data and survives a reimage of either slot.\n";
  for (const auto& dir : ab_data_dirs()) {
    out += std::string(slots::k_data_mount) + "/" + fs::path(dir).filename().string() + " " + dir + " none bind 0 0\n";
  }
  // Virtual and network file systems of the image's own fstab stay.
  std::istringstream in(old_fstab);
  bool header = false;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string spec, mountpoint, type;
    words >> spec >> mountpoint >> type;
    if (spec.empty() || spec[0] == '#') {
      continue;
    }
    static const std::vector<std::string> keep = {"tmpfs", "proc", "sysfs", "devpts",
                                                  "nfs",   "nfs4", "cifs",  "hugetlbfs"};
    if (std::find(keep.begin(), keep.end(), type) != keep.end()) {
      if (!header) {
        out += "# Kept from the image's fstab.\n";
        header = true;
      }
      out += line + "\n";
    }
  }
  return out;
}

std::vector<std::string>
prepare_slot_root(edit::Editor& g, const SlotRoot& slot)
{
  g.write("/etc/fstab", ab_fstab(slot.root_fs, slot.data_fs, slot.old_fstab));
  g.ln_sf(slot.kernel.kernel, "/boot/vmlinuz");
  g.ln_sf(slot.kernel.initrd, "/boot/initrd.img");
  for (const auto& dir :
       {std::string(slots::k_boot_mount), std::string("/boot/efi"), std::string(slots::k_data_mount)}) {
    g.mkdir_p(dir);
  }
  for (const auto& dir : ab_data_dirs()) {
    g.mkdir_p(dir);
  }
  const std::string unit_path = "/usr/lib/systemd/system/" + std::string(slots::k_mark_good_unit);
  g.mkdir_p("/usr/lib/systemd/system");
  g.write(unit_path, mark_good_unit_text());
  g.chmod(0644, unit_path);
  steps::enable_unit(g, std::string(slots::k_mark_good_unit));
  std::vector<std::string> added = {"/etc/fstab", "/boot", unit_path,
                                    "/etc/systemd/system/multi-user.target.wants/" +
                                      std::string(slots::k_mark_good_unit),
                                    std::string(slots::k_data_mount)};
  if (slot.grow_data) {
    const std::string grow_path = "/usr/lib/systemd/system/" + std::string(slots::k_grow_data_unit);
    g.write(grow_path, grow_data_unit_text());
    g.chmod(0644, grow_path);
    steps::enable_unit(g, std::string(slots::k_grow_data_unit));
    added.push_back(grow_path);
    added.push_back("/etc/systemd/system/multi-user.target.wants/" + std::string(slots::k_grow_data_unit));
  }
  added.insert(added.end(), ab_data_dirs().begin(), ab_data_dirs().end());
  return added;
}

void
label_added_paths(edit::Editor& g, bool wanted, const std::vector<std::string>& paths,
                  const std::function<void(const std::string&)>& log)
{
  if (!wanted) {
    return;
  }
  std::optional<edit::SelinuxConfig> config = edit::read_selinux_config(g);
  if (!config || config->mode == "disabled" || !g.exists(config->file_contexts())) {
    return;
  }
  if (!edit::label_paths(g, config->file_contexts(), paths, log)) {
    g.write("/.autorelabel", "");
    if (log) {
      log("cannot label offline; the image will relabel at first boot (/.autorelabel)");
    }
  }
}

} // namespace kiln::ab
