// What the A/B stage writes into slot A (image/ab/slot_root), against the in-memory
// guest: fstab, the stable kernel names, mount points, the units, the labelling decision.
// tests/guestfs/ab_layout_test.cpp checks the same on a real built disk.
#include "core/util/error.hpp"
#include "image/ab/slot_root.hpp"
#include "support/fake_editor.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(AbMarkGoodUnit, AsksUntilADeadlineThenGivesUp)
{
  const std::string& unit = ab::mark_good_unit_text();
  EXPECT_NE(unit.find("\nExecStart=/usr/bin/kiln-node mark-good --when-healthy --deadline 3600 --interval 30\n"),
            std::string::npos)
    << unit;
  // The retrying is kiln-node's: systemd must not restart it past the deadline.
  EXPECT_EQ(unit.find("\nRestart="), std::string::npos) << unit;
  EXPECT_EQ(unit.find("\nRestartSec="), std::string::npos) << unit;
  EXPECT_EQ(unit.find("StartLimitInterval=0"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nConditionKernelCommandLine=kiln.slot\n"), std::string::npos);
  EXPECT_NE(unit.find("\nAfter=multi-user.target\n"), std::string::npos);
  EXPECT_NE(unit.find("\nType=simple\nRemainAfterExit=yes\n"), std::string::npos);
  EXPECT_NE(unit.find("\nWantedBy=multi-user.target\n"), std::string::npos);
}

// kiln-grow-data.service: grows kiln-data once it is mounted, before DC/OS's first-boot
// install and Docker use it; a failure blocks neither (ordering only).
TEST(AbGrowDataUnit, RunsGrowDataAfterTheMountBeforeDcosAndDocker)
{
  const std::string& unit = ab::grow_data_unit_text();
  EXPECT_NE(unit.find("\nExecStart=/usr/bin/kiln-node grow-data\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nRequiresMountsFor=/var/lib/kiln-data\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nBefore=kiln-dcos-install.service docker.service\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nType=oneshot\nRemainAfterExit=yes\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nConditionKernelCommandLine=kiln.slot\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nWantedBy=multi-user.target\n"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("Requires=kiln-dcos"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("RequiredBy="), std::string::npos) << unit;
}

TEST(AbFstab, NamesNoSlotBindsTheStateDirectoriesAndKeepsVirtualMounts)
{
  std::string fstab =
    ab::ab_fstab("xfs", "ext4",
                 "# old\nUUID=1234 / ext4 defaults 0 1\nUUID=5678 /boot ext4 defaults 0 2\n"
                 "tmpfs /tmp tmpfs defaults 0 0\nnfs:/x /mnt/x nfs4 ro 0 0\n/swap none swap sw 0 0\n");
  std::vector<std::string> lines;
  for (const auto& l : test::lines(fstab)) {
    if (!l.empty() && l[0] != '#') {
      lines.push_back(l);
    }
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                     "/dev/root / xfs defaults 0 0",
                     "LABEL=kiln-boot /boot/kiln ext4 defaults 0 2",
                     "LABEL=KILN-ESP /boot/efi vfat umask=0077,shortname=winnt 0 2",
                     "LABEL=kiln-data /var/lib/kiln-data ext4 defaults 0 2",
                     "/var/lib/kiln-data/docker /var/lib/docker none bind 0 0",
                     "/var/lib/kiln-data/mesos /var/lib/mesos none bind 0 0",
                     "/var/lib/kiln-data/dcos /var/lib/dcos none bind 0 0",
                     "/var/lib/kiln-data/log /var/log none bind 0 0",
                     "tmpfs /tmp tmpfs defaults 0 0",
                     "nfs:/x /mnt/x nfs4 ro 0 0",
                   }));
  // The old root, /boot and swap are the image's disk's, not the slot's: dropped.
  EXPECT_EQ(fstab.find("\nUUID="), std::string::npos);
  EXPECT_EQ(fstab.find(" swap "), std::string::npos);
}

TEST(AbFindKernel, NewestWithAnInitramfsOfEitherNamingRescueSkipped)
{
  test::FakeEditor el7;
  el7.add_file("/boot/vmlinuz-3.10.0-1160.el7.x86_64", "k");
  el7.add_file("/boot/initramfs-3.10.0-1160.el7.x86_64.img", "i");
  el7.add_file("/boot/vmlinuz-3.10.0-1200.el7.x86_64", "k"); // no initramfs: not bootable
  el7.add_file("/boot/vmlinuz-0-rescue-0123", "k");
  el7.add_file("/boot/initramfs-0-rescue-0123.img", "i");
  ab::Kernel k = ab::find_kernel(el7);
  EXPECT_EQ(k.kernel, "vmlinuz-3.10.0-1160.el7.x86_64");
  EXPECT_EQ(k.initrd, "initramfs-3.10.0-1160.el7.x86_64.img");

  test::FakeEditor debian;
  debian.add_file("/boot/vmlinuz-6.1.0-18-amd64", "k");
  debian.add_file("/boot/initrd.img-6.1.0-18-amd64", "i");
  EXPECT_EQ(ab::find_kernel(debian).initrd, "initrd.img-6.1.0-18-amd64");

  test::FakeEditor none;
  none.add_dir("/boot");
  EXPECT_NE(std::string(test::error_of([&] { ab::find_kernel(none); }).what())
              .find("layout ab: the image has no kernel with an initramfs under /boot"),
            std::string::npos);
}

TEST(AbSlotRoot, WritesFstabKernelLinksMountPointsAndEnabledUnits)
{
  test::FakeEditor g;
  g.add_file("/etc/fstab", "UUID=1 / ext4 defaults 0 1\n");
  g.add_dir("/boot");
  g.add_dir("/etc/systemd/system");
  g.add_file("/var/log/old.log", "x");
  std::vector<std::string> added = ab::prepare_slot_root(
    g, {"xfs", "ext4", true, {"3.10", "vmlinuz-3.10", "initramfs-3.10.img"}, "UUID=1 / ext4 defaults 0 1\n"});
  EXPECT_EQ(g.read_file("/etc/fstab"), ab::ab_fstab("xfs", "ext4", "UUID=1 / ext4 defaults 0 1\n"));
  EXPECT_EQ(g.readlink("/boot/vmlinuz"), "vmlinuz-3.10"); // relative: right in either slot
  EXPECT_EQ(g.readlink("/boot/initrd.img"), "initramfs-3.10.img");
  for (const char* dir : {"/boot/kiln", "/boot/efi", "/var/lib/kiln-data", "/var/lib/docker", "/var/lib/mesos",
                          "/var/lib/dcos", "/var/log"}) {
    EXPECT_TRUE(g.is_dir(dir)) << dir;
  }
  EXPECT_EQ(g.read_file("/var/log/old.log"), "x"); // moved to kiln-data later, not dropped here
  EXPECT_EQ(g.read_file("/usr/lib/systemd/system/kiln-mark-good.service"), ab::mark_good_unit_text());
  EXPECT_EQ(g.node("/usr/lib/systemd/system/kiln-mark-good.service")->mode, 0644u);
  EXPECT_EQ(g.readlink("/etc/systemd/system/multi-user.target.wants/kiln-mark-good.service"),
            "/usr/lib/systemd/system/kiln-mark-good.service");
  EXPECT_EQ(g.readlink("/etc/systemd/system/multi-user.target.wants/kiln-grow-data.service"),
            "/usr/lib/systemd/system/kiln-grow-data.service");
  for (const char* p : {"/etc/fstab", "/boot", "/usr/lib/systemd/system/kiln-mark-good.service",
                        "/usr/lib/systemd/system/kiln-grow-data.service", "/var/lib/kiln-data", "/var/lib/docker"}) {
    EXPECT_NE(std::find(added.begin(), added.end(), p), added.end()) << p;
  }

  test::FakeEditor plain;
  plain.add_dir("/boot");
  plain.add_dir("/etc/systemd/system");
  ab::prepare_slot_root(plain, {"ext4", "ext4", false, {"6.1", "vmlinuz-6.1", "initrd.img-6.1"}, ""});
  EXPECT_FALSE(plain.exists("/usr/lib/systemd/system/kiln-grow-data.service"));
  EXPECT_NE(plain.read_file("/etc/fstab").find("/dev/root / ext4 defaults 0 0\n"), std::string::npos);
}

TEST(AbSlotRoot, LabelsWhatItAddedOnlyWhenWantedAndTheImageHasAPolicy)
{
  auto guest = [] {
    auto g = std::make_unique<test::FakeEditor>();
    g->add_file("/etc/selinux/config", "SELINUX=permissive\nSELINUXTYPE=targeted\n");
    g->add_file("/etc/selinux/targeted/contexts/files/file_contexts", "");
    return g;
  };
  std::vector<std::string> log;
  auto hear = [&](const std::string& l) { log.push_back(l); };

  auto not_wanted = guest();
  ab::label_added_paths(*not_wanted, false, {"/etc/fstab"}, hear);
  EXPECT_TRUE(not_wanted->relabels.empty());

  auto appliance = guest(); // no setfiles in the image: the appliance's, path by path
  ab::label_added_paths(*appliance, true, {"/etc/fstab", "/boot"}, hear);
  EXPECT_EQ(appliance->relabels.size(), 2u);
  EXPECT_TRUE(appliance->scripts.empty());
  EXPECT_FALSE(appliance->exists("/.autorelabel"));

  auto own = guest();
  own->add_file("/sbin/setfiles", "");
  ab::label_added_paths(*own, true, {"/etc/fstab", "/boot"}, hear);
  ASSERT_EQ(own->scripts.size(), 1u);
  EXPECT_EQ(own->scripts[0], "setfiles -F -m -e /proc -e /sys -e /dev -e /run "
                             "'/etc/selinux/targeted/contexts/files/file_contexts' '/etc/fstab' '/boot'");

  auto cannot = guest();
  cannot->appliance_can_label = false;
  ab::label_added_paths(*cannot, true, {"/etc/fstab"}, hear);
  EXPECT_TRUE(cannot->is_file("/.autorelabel"));
  EXPECT_EQ(log.back(), "cannot label offline; the image will relabel at first boot (/.autorelabel)");

  auto disabled = guest();
  disabled->write("/etc/selinux/config", "SELINUX=disabled\n");
  disabled->appliance_can_label = false;
  ab::label_added_paths(*disabled, true, {"/etc/fstab"}, hear);
  EXPECT_FALSE(disabled->exists("/.autorelabel"));
  EXPECT_TRUE(disabled->relabels.empty());
}

} // namespace
} // namespace kiln
