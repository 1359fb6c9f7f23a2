// How long the suite may wait on a guest here. Machines of this project's kind differ in
// speed by up to 2x, KVM is there on some and not on others, and CI may share the machine
// with other work: a deadline tuned on one idle machine fails on a loaded or slower one.
// So every boot and launch deadline in the tests is a time measured on the reference
// machine (below), scaled by how much slower this machine's own probe boot was (kiln's
// accelerator probe times a real kernel's boot to its root-mount panic: gfs::probe_
// acceleration), times a margin for load.
#pragma once

#include <chrono>
#include <string>

namespace kiln::test {

// The probe kernel's boot under TCG on the reference machine: the 2-core CI kind, idle
// (4.8 s: README, "Measured"; 7.3 to 8.1 s with a 2-CPU hog beside it). The budgets
// passed to deadline() were measured there too.
inline constexpr double k_reference_probe_seconds = 4.8;
// A loaded machine (the suite's own -j2, a CPU hog beside it) runs a guest up to about 2x
// slower than its idle probe shows; the margin covers that twice over.
inline constexpr double k_load_margin = 4.0;

struct Pace {
  std::string accel; // "kvm" or "tcg": what the guests here run under
  double probe_seconds = 0; // the probe's boot under `accel` (0: not measured)
  double factor = 1; // probe_seconds against the reference, never below 1
};

// This machine's pace, from kiln's accelerator decision (remembered in the tests' cache).
const Pace& pace();

// `at_reference` (what the step takes on the reference machine, idle, at most) scaled:
// times the pace's factor and k_load_margin.
std::chrono::seconds deadline(std::chrono::seconds at_reference);

// The same for a given probe time (a pure function, for the unit test).
std::chrono::seconds scaled_deadline(std::chrono::seconds at_reference, double probe_seconds);

// One line for a test's log: "pace: tcg, probe 5.1 s, factor 1.28".
std::string pace_line();

} // namespace kiln::test
