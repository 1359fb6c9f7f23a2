#include "support/pace.hpp"

#include "image/guestfs/accel_probe.hpp"
#include "support/qemu_vm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kiln::test {

namespace {

double
factor_of(double probe_seconds)
{
  return probe_seconds > 0 ? std::max(1.0, probe_seconds / k_reference_probe_seconds) : 1.0;
}

} // namespace

const Pace&
pace()
{
  static const Pace p = [] {
    Pace out;
    out.accel = vm_accelerator(); // decides (or reads the remembered decision) first
    gfs::AccelDecision d = gfs::probe_acceleration();
    // Under KVM the guest runs at the KVM probe's pace; when that was not measured (a
    // forced KILN_ACCEL), TCG's is the slower bound.
    out.probe_seconds = d.accel == gfs::Accel::kvm && d.kvm_boot_seconds > 0 ? d.kvm_boot_seconds : d.tcg_boot_seconds;
    out.factor = factor_of(out.probe_seconds);
    return out;
  }();
  return p;
}

std::chrono::seconds
scaled_deadline(std::chrono::seconds at_reference, double probe_seconds)
{
  const double s = static_cast<double>(at_reference.count()) * factor_of(probe_seconds) * k_load_margin;
  return std::chrono::seconds(static_cast<long>(std::ceil(s)));
}

std::chrono::seconds
deadline(std::chrono::seconds at_reference)
{
  return scaled_deadline(at_reference, pace().probe_seconds);
}

std::string
pace_line()
{
  const Pace& p = pace();
  char line[128];
  std::snprintf(line, sizeof line, "pace: %s, probe %.1f s, factor %.2f, load margin %.0f", p.accel.c_str(),
                p.probe_seconds, p.factor, k_load_margin);
  return line;
}

} // namespace kiln::test
