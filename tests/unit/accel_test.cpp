// The KVM/TCG decision (image/guestfs/accel_probe): a real kernel booted under TCG reaches
// its panic, a KVM that hangs it is refused within a deadline derived from TCG, the
// decision is remembered per machine and read back, and KILN_ACCEL overrides it. A
// machine whose KVM hangs is stood in for by tests/support/standin-hv (LIBGUESTFS_HV).
#include "image/guestfs/accel_probe.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <unistd.h>

namespace kiln::gfs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test::EnvVar;

std::string
standin()
{
  return (test::support_dir() / "standin-hv").string();
}

TEST(accel, OverrideTcg)
{
  EnvVar e("KILN_ACCEL", "tcg");
  AccelDecision d = probe_acceleration_uncached();
  EXPECT_EQ(d.accel, Accel::tcg);
  EXPECT_EQ(d.reason, "KILN_ACCEL=tcg");
}

TEST(accel, OverrideKvm)
{
  EnvVar e("KILN_ACCEL", "kvm");
  AccelDecision d = probe_acceleration_uncached();
  EXPECT_EQ(d.accel, Accel::kvm);
  EXPECT_EQ(d.reason, "KILN_ACCEL=kvm");
  // The override wins over a remembered decision too.
  EXPECT_EQ(probe_acceleration().accel, Accel::kvm);
}

TEST(accel, ProbeKernelIsTheApplianceKernel)
{
  EnvVar e("SUPERMIN_KERNEL", nullptr);
  fs::path k = probe_kernel();
  ASSERT_FALSE(k.empty()) << "no readable /boot/vmlinuz-* (linux-image-amd64 is in ci/packages.txt)";
  EXPECT_EQ(k.parent_path(), "/boot");
  EXPECT_EQ(k.filename().string().rfind("vmlinuz-", 0), 0u);
  EnvVar other("SUPERMIN_KERNEL", "/somewhere/vmlinuz");
  EXPECT_EQ(probe_kernel(), "/somewhere/vmlinuz");
}

TEST(accel, RealKernelReachesItsPanicUnderTcg)
{
  test::require_program("qemu-system-x86_64", "qemu-system-x86");
  EnvVar hv("LIBGUESTFS_HV", nullptr);
  auto t0 = std::chrono::steady_clock::now();
  KernelBoot b = boot_probe_kernel("tcg", 120s);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ measure  ] probe kernel under TCG: %.1f s (%s)\n", s, b.reason.c_str());
  EXPECT_TRUE(b.panicked) << b.reason;
  EXPECT_GT(b.seconds, 0.0);
  EXPECT_NE(b.reason.find("a real kernel booted under tcg"), std::string::npos) << b.reason;
}

TEST(accel, HungKvmBootIsStoppedAtItsDeadline)
{
  EnvVar hv("LIBGUESTFS_HV", standin().c_str());
  EnvVar mode("KILN_TEST_HV_MODE", "hang-kvm");
  auto t0 = std::chrono::steady_clock::now();
  KernelBoot b = boot_probe_kernel("kvm", 2s);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(b.panicked);
  EXPECT_LT(s, 10.0);
  EXPECT_NE(b.reason.find("did not boot the probe kernel within 2.0 s"), std::string::npos) << b.reason;
}

TEST(accel, QemuThatExitsAtOnceIsAFailureWithItsLastLine)
{
  test::ScratchDir dir;
  fs::path fake = dir / "qemu";
  test::write_text(fake,
                   "#!/bin/sh\necho 'qemu-system-x86_64: failed to initialize kvm: Permission denied' >&2\nexit 1\n");
  fs::permissions(fake, fs::perms::owner_all);
  EnvVar hv("LIBGUESTFS_HV", fake.c_str());
  KernelBoot b = boot_probe_kernel("kvm", 20s);
  EXPECT_FALSE(b.panicked);
  EXPECT_NE(b.reason.find("exited before the kernel booted (exit status 1)"), std::string::npos) << b.reason;
  EXPECT_NE(b.reason.find("failed to initialize kvm"), std::string::npos) << b.reason;
}

// On a machine with /dev/kvm, a KVM that hangs a real kernel is refused, measured against
// TCG; without /dev/kvm the decision needs no boot, but TCG's boot is still timed.
TEST(accel, KvmThatHangsARealKernelIsRefused)
{
  EnvVar accel("KILN_ACCEL", nullptr);
  EnvVar hv("LIBGUESTFS_HV", standin().c_str());
  EnvVar mode("KILN_TEST_HV_MODE", "hang-kvm");
  auto t0 = std::chrono::steady_clock::now();
  AccelDecision d = probe_acceleration_uncached();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(d.accel, Accel::tcg) << d.reason;
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    EXPECT_EQ(d.reason.rfind("/dev/kvm: ", 0), 0u) << d.reason;
    // No KVM to prove, but TCG's pace is measured all the same: deadlines derive from it.
    EXPECT_GT(d.tcg_boot_seconds, 0.0) << d.reason;
    EXPECT_EQ(d.kvm_boot_seconds, 0.0);
    return;
  }
  EXPECT_NE(d.reason.find("accel=kvm) did not boot the probe kernel within"), std::string::npos) << d.reason;
  ASSERT_GT(d.tcg_boot_seconds, 0.0) << d.reason;
  EXPECT_EQ(d.kvm_boot_seconds, 0.0);
  // The deadline follows TCG: a hung KVM costs little more than one TCG boot.
  EXPECT_LT(s, d.tcg_boot_seconds * 1.25 + 8.0);
}

TEST(accel, DecisionIsRememberedPerMachineAndAKvmFailureOverwritesIt)
{
  EnvVar accel("KILN_ACCEL", nullptr);
  test::ScratchDir dir;
  set_accel_state_dir(dir / "accel");
  fs::path file = record_kvm_failure("the appliance did not come up under KVM within 42 s");
  set_accel_state_dir({});
  EXPECT_EQ(file, dir / "accel" / (machine_key() + ".json"));
  nlohmann::json j = nlohmann::json::parse(test::read_text(file));
  EXPECT_EQ(j["accel"], "tcg");
  EXPECT_EQ(j["reason"], "the appliance did not come up under KVM within 42 s");
  // This process now uses TCG without probing again.
  AccelDecision d = probe_acceleration();
  EXPECT_EQ(d.accel, Accel::tcg);
  EXPECT_EQ(d.reason, "the appliance did not come up under KVM within 42 s");
  // The key names this machine's kernel, qemu, CPU and hypervisor: another hypervisor is
  // another machine as far as the decision goes.
  std::string key = machine_key();
  EXPECT_EQ(key.size(), 32u);
  EnvVar hv("LIBGUESTFS_HV", standin().c_str());
  EXPECT_NE(machine_key(), key);
}

TEST(accel, LaunchDeadlineFollowsTheTcgBoot)
{
  AccelDecision fast{Accel::kvm, "", false, 2.0, 0.5};
  AccelDecision slow{Accel::kvm, "", false, 20.0, 1.0};
  EXPECT_EQ(kvm_launch_deadline(fast).count(), 30);
  EXPECT_EQ(kvm_launch_deadline(slow).count(), 90);
}

TEST(accel, TcgLaunchDeadlineFollowsTheTcgBoot)
{
  AccelDecision fast{Accel::tcg, "", false, 2.0, 0};
  AccelDecision slow{Accel::tcg, "", false, 20.0, 0};
  AccelDecision unmeasured{Accel::tcg, "KILN_ACCEL=tcg", false, 0, 0};
  EXPECT_EQ(tcg_launch_deadline(fast).count(), 180); // the floor
  EXPECT_EQ(tcg_launch_deadline(slow).count(), 600); // 2.5 boots, 12 times over
  EXPECT_EQ(tcg_launch_deadline(unmeasured).count(), 900);
}

} // namespace
} // namespace kiln::gfs
