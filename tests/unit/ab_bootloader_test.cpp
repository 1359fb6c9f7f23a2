// GRUB on the A/B disk (image/ab/bootloader) against the in-memory guest: which tools and
// modules count, what is missing named with the packages, the grub-install runs for both
// firmware kinds, the prebuilt EFI loader (CentOS 7's shim and grubx64.efi), kiln's
// grub.cfg and kiln-ab.conf, and the stub in EL7's grub2 directory.
// tests/guestfs/ab_layout_test.cpp and the boot tests run the real grub-install.
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "image/ab/bootloader.hpp"
#include "support/fake_editor.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using test::FakeEditor;
const std::string k_boot(slots::k_boot_mount);

// The mounted slot with kiln-boot and the ESP mounted, as the A/B stage has it.
void
mounts(FakeEditor& g)
{
  g.add_dir(k_boot);
  g.add_dir("/boot/efi");
}

// grub-install as the fake runs it: makes its platform directory under `prefix`.
void
grub_install_makes(FakeEditor& g, const std::string& prefix)
{
  g.on_sh = [prefix](const std::string& script, FakeEditor& guest) {
    if (script.find("--target=i386-pc") != std::string::npos) {
      guest.add_file(k_boot + "/" + prefix + "/i386-pc/normal.mod", "");
    }
    if (script.find("mkdir -p /boot/efi/EFI/BOOT") != std::string::npos) {
      guest.add_dir("/boot/efi/EFI/BOOT");
      guest.add_dir("/boot/efi/EFI/centos");
    }
    return edit::CommandResult{0, "", ""};
  };
}

ab::BootloaderSettings
settings()
{
  ab::BootloaderSettings s;
  s.config.partuuid_a = "11111111-2222-4333-8444-555555555555";
  s.config.partuuid_b = "66666666-7777-4888-9999-aaaaaaaaaaaa";
  s.config.panic = 5;
  s.config.root_fs = "xfs";
  s.tries = 2;
  s.panic = 5;
  return s;
}

TEST(AbBootloader, FindsDebiansAndEl7sGrubAndNamesWhatIsMissing)
{
  FakeEditor debian;
  debian.add_file("/usr/sbin/grub-install", "", 0755);
  debian.add_file("/usr/lib/grub/i386-pc/modinfo.sh", "");
  debian.add_file("/usr/lib/grub/x86_64-efi/modinfo.sh", "");
  ab::GrubTools d = ab::find_grub(debian);
  EXPECT_EQ(d.install, "grub-install");
  EXPECT_TRUE(d.bios);
  EXPECT_TRUE(d.efi);
  EXPECT_EQ(d.signed_efi, "");

  // CentOS 7: grub2-install, grub2-pc-modules, and shim's signed grubx64.efi instead of
  // x86_64-efi modules (grub2-efi-x64).
  FakeEditor el7;
  el7.add_file("/usr/sbin/grub2-install", "", 0755);
  el7.add_file("/usr/lib/grub/i386-pc/boot.img", "");
  el7.add_file("/boot/efi/EFI/centos/grubx64.efi", "");
  el7.add_file("/boot/efi/EFI/centos/shimx64.efi", "");
  ab::GrubTools e = ab::find_grub(el7);
  EXPECT_EQ(e.install, "grub2-install");
  EXPECT_TRUE(e.bios);
  EXPECT_FALSE(e.efi);
  EXPECT_EQ(e.signed_efi, "/boot/efi/EFI/centos");

  FakeEditor bare;
  try {
    ab::find_grub(bare);
    FAIL() << "an image without GRUB must be refused";
  } catch (const Error& err) {
    const std::string what = err.what();
    EXPECT_NE(what.find("grub-install/grub2-install, i386-pc modules, x86_64-efi modules or a signed grubx64.efi"),
              std::string::npos)
      << what;
    EXPECT_NE(what.find("grub2-pc grub2-pc-modules grub2-efi-x64-modules (EL7)"), std::string::npos) << what;
  }
}

TEST(AbBootloader, DebianGetsBothGrubInstallsAndKilnsConfiguration)
{
  FakeEditor g;
  mounts(g);
  grub_install_makes(g, "grub");
  ab::GrubTools grub{"grub-install", true, true, ""};
  EXPECT_EQ(ab::stash_prebuilt_efi(g, grub), ""); // nothing to keep aside
  EXPECT_TRUE(g.scripts.empty());
  std::vector<std::string> dirs = ab::install_bootloader(g, grub, "", settings());
  EXPECT_EQ(dirs, std::vector<std::string>{"grub"});
  ASSERT_EQ(g.scripts.size(), 2u);
  // BIOS: onto the disk that holds kiln-boot, found from the mount inside the appliance.
  EXPECT_NE(g.scripts[0].find("awk '$2 == \"" + k_boot + "\" { print $1 }' /proc/mounts"), std::string::npos);
  EXPECT_NE(g.scripts[0].find("disk=${dev%" + std::to_string(slots::k_partnum_boot) + "}"), std::string::npos);
  EXPECT_NE(g.scripts[0].find("grub-install --target=i386-pc --boot-directory=" + k_boot +
                              " --modules='part_gpt ext2' \"$disk\""),
            std::string::npos)
    << g.scripts[0];
  // UEFI: the removable path, no NVRAM (the image boots on any machine).
  EXPECT_EQ(g.scripts[1], "grub-install --target=x86_64-efi --boot-directory=" + k_boot +
                            " --efi-directory=/boot/efi --removable --no-nvram --modules='part_gpt ext2'");
  const std::string cfg = g.read_file(k_boot + std::string(slots::k_grubcfg_path));
  EXPECT_EQ(cfg, slots::make_grub_cfg(settings().config));
  EXPECT_NE(cfg.find("11111111-2222-4333-8444-555555555555"), std::string::npos);
  EXPECT_EQ(g.read_file(k_boot + "/grub/kiln-ab.conf"), "tries=2\npanic=5\n");
}

TEST(AbBootloader, El7GetsAStubInGrub2AndThePrebuiltShimOnTheEsp)
{
  FakeEditor g;
  mounts(g);
  grub_install_makes(g, "grub2");
  ab::GrubTools grub{"grub2-install", true, false, "/boot/efi/EFI/centos"};
  const std::string stash = ab::stash_prebuilt_efi(g, grub);
  EXPECT_EQ(stash, "/var/tmp/kiln-efi");
  ASSERT_EQ(g.scripts.size(), 1u);
  EXPECT_EQ(g.scripts[0], "rm -rf /var/tmp/kiln-efi && cp -r /boot/efi/EFI /var/tmp/kiln-efi");

  std::vector<std::string> dirs = ab::install_bootloader(g, grub, stash, settings());
  EXPECT_EQ(dirs, std::vector<std::string>{"grub2"});
  ASSERT_EQ(g.scripts.size(), 3u); // stash, i386-pc, the prebuilt loader
  EXPECT_NE(g.scripts[1].find("grub2-install --target=i386-pc"), std::string::npos);
  const std::string& efi = g.scripts[2];
  EXPECT_EQ(efi.find("--target=x86_64-efi"), std::string::npos); // no modules to install from
  EXPECT_NE(efi.find("shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI"), std::string::npos) << efi;
  EXPECT_NE(efi.find("grubx64.efi /boot/efi/EFI/BOOT/grubx64.efi"), std::string::npos) << efi;
  EXPECT_NE(efi.find("\nrm -rf '/var/tmp/kiln-efi'\n"), std::string::npos) << efi; // the stash goes
  EXPECT_EQ(g.read_file("/boot/efi/EFI/centos/grub.cfg"), slots::make_esp_stub_cfg());
  EXPECT_EQ(g.read_file("/boot/efi/EFI/BOOT/grub.cfg"), slots::make_esp_stub_cfg());
  // GRUB's $prefix on EL7 is /grub2: its grub.cfg leads to kiln's one in /grub.
  EXPECT_EQ(g.read_file(k_boot + "/grub2/grub.cfg"), slots::make_prefix_stub_cfg());
  EXPECT_TRUE(g.is_file(k_boot + std::string(slots::k_grubcfg_path)));
}

TEST(AbBootloader, AGrubInstallThatLeavesNoDirectoryIsAnError)
{
  FakeEditor g;
  mounts(g);
  ab::GrubTools grub{"grub-install", true, true, ""};
  try {
    ab::install_bootloader(g, grub, "", settings());
    FAIL() << "no GRUB directory must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("grub-install left no GRUB directory (with i386-pc modules) under " + k_boot),
              std::string::npos)
      << e.what();
  }
  // A failing grub-install stops the stage with its words.
  FakeEditor failing;
  mounts(failing);
  failing.on_sh = [](const std::string&, FakeEditor&) {
    return edit::CommandResult{1, "", "grub-install: error: cannot find a device for /boot/kiln\n"};
  };
  try {
    ab::install_bootloader(failing, grub, "", settings());
    FAIL() << "a failing grub-install must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot find a device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("layout ab: grub-install --target=i386-pc"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace kiln
