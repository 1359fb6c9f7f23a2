// Fault injection for the crash tests: a reimage or install told (in its options) to
// fail at one point ends the process right there with _exit(99), as a power cut would
// (no destructors, no cleanup). Only the test build's main (kiln-node-test) sets it,
// from KILN_NODE_FAULT; the shipped kiln-node always runs with Fault::none.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kiln::node {

// The points, in the order a reimage passes them (ARCHITECTURE.md's bracketed names).
enum class Fault {
  none,
  after_invalidate, // the target slot marked empty, nothing written yet
  mid_write, // half the mapped data written (and synced)
  before_verify, // all data written and synced
  before_switch, // read back and verified, the boot pointer not moved
  during_switch, // the new grubenv half-written to its temporary file, never renamed
};

// The fault a point's name ("mid-write") means; nullopt for a name no point has.
std::optional<Fault> parse_fault(std::string_view name);

// Every point's name, comma-separated (for the refusal of an unknown one).
std::string fault_names();

// Ends the process with _exit(99) when `armed` is `here`; otherwise returns.
void fault_point(Fault armed, Fault here);

} // namespace kiln::node
