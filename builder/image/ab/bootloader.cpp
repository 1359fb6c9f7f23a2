#include "image/ab/bootloader.hpp"

#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/quote.hpp"
#include "image/edit/checked_sh.hpp"

#include <algorithm>
#include <filesystem>

namespace kiln::ab {

namespace fs = std::filesystem;

namespace {

// Where the prebuilt loader waits while the ESP covers the slot's /boot/efi.
constexpr const char* k_efi_stash = "/var/tmp/kiln-efi";

// The prebuilt (signed) loader from the stash onto the ESP: the vendor directory as it
// was, and the removable-media path EFI/BOOT/BOOTX64.EFI (shim first when there is one,
// with grubx64.efi beside it, where shim looks).
void
install_prebuilt_efi(edit::Editor& g, const GrubTools& grub, const std::string& efi_stash)
{
  const std::string vendor = fs::path(grub.signed_efi).filename().string();
  const std::string from = util::shell_quote(efi_stash + "/" + vendor);
  const std::string esp_vendor = util::shell_quote("/boot/efi/EFI/" + vendor);
  const std::string script = "set -e\n"
                             "mkdir -p /boot/efi/EFI/BOOT " +
                             esp_vendor +
                             "\n"
                             "cp -r " +
                             from + "/. " + esp_vendor +
                             "/\n"
                             "if [ -f " +
                             from +
                             "/shimx64.efi ]; then\n"
                             "  cp " +
                             from +
                             "/shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI\n"
                             "  cp " +
                             from +
                             "/grubx64.efi /boot/efi/EFI/BOOT/grubx64.efi\n"
                             "else\n"
                             "  cp " +
                             from +
                             "/grubx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI\n"
                             "fi\n"
                             "rm -rf " +
                             util::shell_quote(efi_stash) + "\n";
  edit::checked_sh(g, script, "layout ab: install the prebuilt EFI loader");
  g.write("/boot/efi/EFI/" + vendor + "/grub.cfg", slots::make_esp_stub_cfg());
  g.write("/boot/efi/EFI/BOOT/grub.cfg", slots::make_esp_stub_cfg());
}

} // namespace

GrubTools
find_grub(edit::Editor& g)
{
  GrubTools t;
  for (const char* p :
       {"/usr/sbin/grub2-install", "/sbin/grub2-install", "/usr/sbin/grub-install", "/sbin/grub-install"}) {
    if (t.install.empty() && g.is_file(p)) {
      t.install = fs::path(p).filename().string();
    }
  }
  // Both Debian (grub-pc-bin, grub-efi-amd64-bin) and EL7 (grub2-pc-modules,
  // grub2-efi-x64-modules) keep the platform modules here.
  const std::string libdir = "/usr/lib/grub";
  t.bios = g.is_file(libdir + "/i386-pc/modinfo.sh") || g.is_file(libdir + "/i386-pc/boot.img");
  t.efi = g.is_file(libdir + "/x86_64-efi/modinfo.sh") || g.is_file(libdir + "/x86_64-efi/kernel.img");
  if (!t.efi) {
    for (const auto& f : g.glob("/boot/efi/EFI/*/grubx64.efi")) {
      t.signed_efi = fs::path(f).parent_path().string();
      break;
    }
  }
  if (t.install.empty() || !t.bios || (!t.efi && t.signed_efi.empty())) {
    std::string missing = t.install.empty() ? "grub-install/grub2-install" : "";
    if (!t.bios) {
      missing += std::string(missing.empty() ? "" : ", ") + "i386-pc modules";
    }
    if (!t.efi && t.signed_efi.empty()) {
      missing += std::string(missing.empty() ? "" : ", ") + "x86_64-efi modules or a signed grubx64.efi";
    }
    throw Error("layout ab", "the image lacks GRUB (" + missing +
                               "); add the packages grub2-pc grub2-pc-modules "
                               "grub2-efi-x64-modules (EL7) or grub-pc-bin grub-efi-amd64-bin grub2-common (Debian)");
  }
  return t;
}

std::vector<std::string>
grub_directories(edit::Editor& g, const std::string& boot_dir)
{
  std::vector<std::string> out;
  for (const char* platform : {"i386-pc", "x86_64-efi"}) {
    for (std::string p : g.glob(boot_dir + "/*/" + platform)) {
      while (p.size() > 1 && p.back() == '/') { // glob marks directories with a slash
        p.pop_back();
      }
      std::string name = fs::path(p).parent_path().filename().string();
      if (std::find(out.begin(), out.end(), name) == out.end()) {
        out.push_back(name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string
stash_prebuilt_efi(edit::Editor& g, const GrubTools& grub)
{
  if (grub.efi) {
    return "";
  }
  // The prebuilt (signed) loader lives in the slot's /boot/efi, which the ESP covers.
  edit::checked_sh(g, std::string("rm -rf ") + k_efi_stash + " && cp -r /boot/efi/EFI " + k_efi_stash,
                   "layout ab: stash the EFI loader");
  return k_efi_stash;
}

std::vector<std::string>
install_bootloader(edit::Editor& g, const GrubTools& grub, const std::string& efi_stash,
                   const BootloaderSettings& settings)
{
  const std::string boot_dir = std::string(slots::k_boot_mount);
  // The appliance kernel's name for the new disk may differ from the API's (libguestfs
  // translates names in its calls, not in scripts): take it from the kiln-boot mount.
  edit::checked_sh(g,
                   "dev=$(awk '$2 == \"" + boot_dir +
                     "\" { print $1 }' /proc/mounts)\n"
                     "disk=${dev%" +
                     std::to_string(slots::k_partnum_boot) +
                     "}\n"
                     "if [ ! -b \"$disk\" ]; then echo \"no disk for " +
                     boot_dir + " ($dev)\" >&2; exit 1; fi\n" + grub.install +
                     " --target=i386-pc --boot-directory=" + boot_dir + " --modules='part_gpt ext2' \"$disk\"",
                   "layout ab: " + grub.install + " --target=i386-pc");
  if (grub.efi) {
    edit::checked_sh(g,
                     grub.install + " --target=x86_64-efi --boot-directory=" + boot_dir +
                       " --efi-directory=/boot/efi --removable --no-nvram --modules='part_gpt ext2'",
                     "layout ab: " + grub.install + " --target=x86_64-efi");
  } else {
    install_prebuilt_efi(g, grub, efi_stash);
  }

  g.mkdir_p(boot_dir + "/grub");
  g.write(boot_dir + std::string(slots::k_grubcfg_path), slots::make_grub_cfg(settings.config));
  // For kiln-node: the boot tries of a newly written slot (GRUB only counts down).
  g.write(boot_dir + "/grub/kiln-ab.conf",
          "tries=" + std::to_string(settings.tries) + "\npanic=" + std::to_string(settings.panic) + "\n");
  // GRUB's own directory (its $prefix, holding the platform modules) is whatever the
  // image's grub-install made: /grub on Debian, /grub2 on EL7. Elsewhere than /grub, a
  // stub there leads to kiln's one grub.cfg (abi.hpp).
  std::vector<std::string> grub_dirs = grub_directories(g, boot_dir);
  if (grub_dirs.empty()) {
    throw Error("layout ab", grub.install + " left no GRUB directory (with i386-pc modules) under " + boot_dir);
  }
  for (const auto& dir : grub_dirs) {
    if (dir != "grub") {
      g.write(boot_dir + "/" + dir + "/grub.cfg", slots::make_prefix_stub_cfg());
    }
  }
  return grub_dirs;
}

} // namespace kiln::ab
