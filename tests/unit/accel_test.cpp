// The KVM/TCG decision: the probe guest itself (run under TCG, where it must reach its exit
// port), the KVM path on this host, the timeout, and the KILN_ACCEL override.
#include "image/guestfs/guestfs.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <unistd.h>

namespace kiln::gfs {
namespace {

// Sets (or unsets) KILN_ACCEL for one test and restores the previous value.
class AccelEnv {
public:
  explicit AccelEnv(const char* value)
  {
    if (const char* old = std::getenv("KILN_ACCEL")) {
      m_old = old;
    }
    if (value != nullptr) {
      ::setenv("KILN_ACCEL", value, 1);
    } else {
      ::unsetenv("KILN_ACCEL");
    }
  }
  ~AccelEnv()
  {
    if (m_old) {
      ::setenv("KILN_ACCEL", m_old->c_str(), 1);
    } else {
      ::unsetenv("KILN_ACCEL");
    }
  }
  AccelEnv(const AccelEnv&) = delete;
  AccelEnv& operator=(const AccelEnv&) = delete;

private:
  std::optional<std::string> m_old;
};

bool
have_kvm_node()
{
  return ::access("/dev/kvm", F_OK) == 0;
}

bool
have_qemu()
{
  return ::access("/usr/bin/qemu-system-x86_64", X_OK) == 0;
}

TEST(accel, ProbeGivesOneLineReasonAndIsCached)
{
  AccelEnv env(nullptr);
  auto start = std::chrono::steady_clock::now();
  AccelDecision d = probe_acceleration();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ measure  ] probe: %s (%s) in %.3f s\n", d.accel == Accel::kvm ? "kvm" : "tcg", d.reason.c_str(),
              seconds);
  EXPECT_FALSE(d.reason.empty());
  EXPECT_EQ(d.reason.find('\n'), std::string::npos) << d.reason;
  EXPECT_LT(seconds, 15.0);
  if (!have_kvm_node()) {
    EXPECT_EQ(d.accel, Accel::tcg);
    EXPECT_NE(d.reason.find("/dev/kvm"), std::string::npos) << d.reason;
  }
  AccelDecision again = probe_acceleration();
  EXPECT_EQ(again.accel, d.accel);
  EXPECT_EQ(again.reason, d.reason);
}

TEST(accel, OverrideTcg)
{
  AccelEnv env("tcg");
  AccelDecision d = probe_acceleration_uncached();
  EXPECT_EQ(d.accel, Accel::tcg);
  EXPECT_NE(d.reason.find("KILN_ACCEL"), std::string::npos) << d.reason;
}

TEST(accel, OverrideKvm)
{
  AccelEnv env("kvm");
  AccelDecision d = probe_acceleration_uncached();
  EXPECT_EQ(d.accel, Accel::kvm);
  EXPECT_NE(d.reason.find("KILN_ACCEL"), std::string::npos) << d.reason;
}

TEST(accel, UnknownOverrideIsIgnored)
{
  AccelEnv env("bogus");
  AccelDecision d = probe_acceleration_uncached();
  EXPECT_FALSE(d.reason.empty());
  EXPECT_EQ(d.reason.find("KILN_ACCEL"), std::string::npos) << d.reason;
}

TEST(accel, ProbeGuestReachesExitPortUnderTcg)
{
  if (!have_qemu()) {
    GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }
  std::string reason;
  EXPECT_TRUE(probe_guest_runs("tcg", &reason)) << reason;
  EXPECT_FALSE(reason.empty());
}

TEST(accel, ProbeGuestFailsWithoutKvm)
{
  if (!have_qemu()) {
    GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }
  if (have_kvm_node()) {
    GTEST_SKIP() << "/dev/kvm exists here";
  }
  std::string reason;
  EXPECT_FALSE(probe_guest_runs("kvm", &reason));
  EXPECT_NE(reason.find("kvm"), std::string::npos) << reason;
  EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;
}

TEST(accel, ProbeGuestIsKilledAtTheTimeout)
{
  if (!have_qemu()) {
    GTEST_SKIP() << "qemu-system-x86_64 not installed";
  }
  auto start = std::chrono::steady_clock::now();
  std::string reason;
  EXPECT_FALSE(probe_guest_runs("tcg", &reason, 0));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(reason.find("did not finish"), std::string::npos) << reason;
  EXPECT_LT(seconds, 5.0);
}

} // namespace
} // namespace kiln::gfs
