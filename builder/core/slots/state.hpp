// The user-space half of the A/B state machine (abi.hpp): reading the slot variables
// from a grubenv, predicting exactly what kiln's grub.cfg (grubcfg.hpp) will boot
// next, and the edits kiln-node makes (invalidate before a write, arm a trial,
// confirm, roll back). Every edit is applied to a grubenv::Env, so a command makes
// all its changes in one atomic grubenv update.
//
// The prediction mirrors the script word for word: defaults order "A B", state
// "empty", tries "0" for variables missing from the block; walk kiln_order: good
// boots; trial with tries "1".."9" boots (GRUB decrements tries first); trial with
// any other tries value becomes bad and is skipped; then the first slot in the order
// whose state is not "empty"; then the first slot in the order; then A.
#pragma once

#include "core/grubenv/grubenv.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::slots {

// Slots are 'A' and 'B', as on the kernel command line (kiln.slot=).
char other_slot(char slot);
// 'A' or 'B' from "A"/"B"/"a"/"b"; nullopt otherwise.
std::optional<char> parse_slot(std::string_view text);
// "kiln_A_state" etc.
std::string slot_var(char slot, std::string_view suffix);

struct SlotEnv {
  char slot = 'A';
  std::string state; // as GRUB sees it: "empty" when unset
  std::string tries; // "0" when unset
  std::string digest; // empty when unset
  std::string name;
};

// How GRUB gets to the slot it boots: a good slot; a trial slot (tries decremented to
// tries_after); last resort (nothing qualified: the first non-empty slot); every slot empty.
enum class BootReason { good, trial, last_resort, empty };
// "good", "trial", "last-resort", "empty"
std::string_view to_string(BootReason reason);

struct BootPrediction {
  char slot = 'A';
  BootReason reason = BootReason::empty;
  std::string tries_after; // for a trial: one digit
  std::vector<char> marked_bad; // trial slots out of tries GRUB marks bad on the way
};

struct BootEnv {
  std::string order_text; // kiln_order as GRUB reads it ("A B" when unset)
  std::vector<char> order; // its A/B words in order (others ignored, as GRUB does)
  SlotEnv a;
  SlotEnv b;

  const SlotEnv& slot(char s) const { return s == 'A' ? a : b; }
  BootPrediction next_boot() const;
};

BootEnv read_boot_env(const grubenv::Env& env);

// A fresh block's variables (order "A B", both slots empty): what kiln-node writes
// when the block is missing and a command must create it.
void init_env(grubenv::Env& env);

// The grubenv a built A/B image starts with: the editenv comment, order "A B", slot A
// good with the image's manifest digest and name (the build verified it), slot B empty.
grubenv::Env initial_env(const std::string& digest_a, const std::string& name_a);

// Before a slot is written: state empty, tries 0, digest and name cleared, so a
// half-written slot can never boot.
void set_empty(grubenv::Env& env, char slot);

// After a slot was written and verified: state trial with `tries` (1..k_max_tries),
// digest and name recorded, and the slot first in kiln_order. Throws UsageError for
// tries outside 1..9.
void set_trial(grubenv::Env& env, char slot, unsigned tries, const std::string& digest, const std::string& name);

// The highest image version recorded on the node (0 when none). Throws Error for a
// value that is not a decimal number (fail closed: never read as 0).
std::uint64_t highest_version(const grubenv::Env& env);
// Records `version` when it is higher than the recorded one.
void record_version(grubenv::Env& env, std::uint64_t version);

// The booted slot confirmed: state good, tries "0". kiln_order is left alone (a
// reimage may have armed the other slot since this boot).
void set_good(grubenv::Env& env, char slot);

// The other slot boots next: refuses (Error) unless its state is good; puts it first
// in kiln_order. `from` is the booted slot (or the one that would boot next).
void roll_back(grubenv::Env& env, char from);

} // namespace kiln::slots
