// Whether qemu may use KVM on this machine. A tiny guest that only touches an I/O port
// proves nothing: nested virtualisation can run it and still stall a real kernel for
// ever. So the probe boots a real Linux kernel (the one libguestfs's appliance uses) with
// no root file system under KVM and under TCG side by side; the kernel panics within
// seconds ("VFS: Unable to mount root fs") and, with panic=-1 and -no-reboot, qemu exits.
// KVM is chosen only when its boot reached that panic before TCG's did (plus a little
// grace): a KVM slower than emulation is no KVM worth having.
//
// The decision is remembered per machine in a state directory (kiln build: CACHE/accel),
// keyed by the host kernel, the qemu version, the CPU model and the hypervisor path, so
// later builds pay neither the probe nor a hung launch again. A real launch under KVM
// that does not come up within kvm_launch_deadline() is stopped and recorded as a failure
// (record_kvm_failure), which turns the remembered decision to TCG.
//
// KILN_ACCEL=kvm|tcg overrides everything. LIBGUESTFS_HV names the hypervisor, for the
// probe as for libguestfs itself.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace kiln::gfs {

enum class Accel { kvm, tcg };

const char* accel_name(Accel accel);

struct AccelDecision {
  Accel accel = Accel::tcg;
  std::string reason; // one line, e.g. "KVM did not boot the probe kernel within 14 s"
  bool remembered = false; // read from the state directory, not probed now
  double tcg_boot_seconds = 0; // the probe kernel's boot to panic under TCG (0: not measured)
  double kvm_boot_seconds = 0; // the same under KVM (0: did not finish)
};

// Where decisions are remembered; empty (the default) remembers nothing across processes.
void set_accel_state_dir(const std::filesystem::path& dir);
std::filesystem::path accel_state_dir();

// The hypervisor binary: $LIBGUESTFS_HV, else libguestfs's compiled-in default.
std::string hypervisor();

// The kernel the probe boots: $SUPERMIN_KERNEL, else the newest readable /boot/vmlinuz-*.
// Empty when there is none.
std::filesystem::path probe_kernel();

// The key of this machine's decision: host kernel release, qemu version, CPU model, hypervisor.
std::string machine_key();

// The decision for this process: KILN_ACCEL, else what this process decided before, else
// the remembered decision, else the probe (whose result is then remembered).
AccelDecision probe_acceleration();

// Probes afresh (KILN_ACCEL still applies), neither reading nor writing the memory.
AccelDecision probe_acceleration_uncached();

// A real launch under KVM failed or hung: this process and (through the state directory)
// later ones use TCG. Returns the path the decision was written to (empty: not remembered).
std::filesystem::path record_kvm_failure(const std::string& reason);

// How long a launch under KVM may take before it counts as hung: derived from the TCG
// boot time of the probe (an appliance launch is about 2.5 probe boots under TCG), never
// less than 30 s.
std::chrono::seconds kvm_launch_deadline(const AccelDecision& decision);

// How long a launch under TCG may take before it counts as hung: the probe's TCG boot
// (an appliance launch is about 2.5 of them) times a margin for a loaded machine (12:
// a CI runner shared with other builds), never less than 180 s; 900 s when TCG was not
// measured (KILN_ACCEL chose without a probe).
std::chrono::seconds tcg_launch_deadline(const AccelDecision& decision);

// One boot of the probe kernel under `accel` ("kvm" or "tcg"), killed at `deadline`.
struct KernelBoot {
  bool panicked = false; // the kernel ran up to its root-mount panic
  double seconds = 0;
  std::string reason; // one line
};
KernelBoot boot_probe_kernel(const std::string& accel, std::chrono::milliseconds deadline);

} // namespace kiln::gfs
