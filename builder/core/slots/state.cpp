#include "core/slots/state.hpp"

#include "core/slots/abi.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <sstream>

namespace kiln::slots {

char
other_slot(char slot)
{
  return slot == 'A' ? 'B' : 'A';
}

std::optional<char>
parse_slot(std::string_view text)
{
  if (text == "A" || text == "a") {
    return 'A';
  }
  if (text == "B" || text == "b") {
    return 'B';
  }
  return std::nullopt;
}

std::string
slot_var(char slot, std::string_view suffix)
{
  return std::string("kiln_") + slot + std::string(suffix);
}

namespace {

SlotEnv
read_slot(const grubenv::Env& env, char slot)
{
  SlotEnv s;
  s.slot = slot;
  s.state = env.get(slot_var(slot, k_env_state_suffix)).value_or("empty");
  s.tries = env.get(slot_var(slot, k_env_tries_suffix)).value_or("0");
  s.digest = env.get(slot_var(slot, k_env_digest_suffix)).value_or("");
  s.name = env.get(slot_var(slot, k_env_name_suffix)).value_or("");
  return s;
}

bool
tries_left(const std::string& tries)
{
  return tries.size() == 1 && tries[0] >= '1' && tries[0] <= '9';
}

} // namespace

BootEnv
read_boot_env(const grubenv::Env& env)
{
  BootEnv b;
  b.order_text = env.get(k_env_order).value_or("A B");
  // GRUB splits the unquoted variable on whitespace; words other than A and B match
  // no slot block and are skipped.
  std::istringstream words(b.order_text);
  for (std::string w; words >> w;) {
    if (w == "A" || w == "B") {
      b.order.push_back(w[0]);
    }
  }
  b.a = read_slot(env, 'A');
  b.b = read_slot(env, 'B');
  return b;
}

std::string_view
to_string(BootReason reason)
{
  switch (reason) {
    case BootReason::good:
      return "good";
    case BootReason::trial:
      return "trial";
    case BootReason::last_resort:
      return "last-resort";
    case BootReason::empty:
      break;
  }
  return "empty";
}

BootPrediction
BootEnv::next_boot() const
{
  BootPrediction p;
  SlotEnv work[2] = {a, b};
  auto at = [&](char s) -> SlotEnv& { return work[s == 'A' ? 0 : 1]; };
  for (char s : order) {
    SlotEnv& e = at(s);
    if (e.state == "good") {
      p.slot = s;
      p.reason = BootReason::good;
      return p;
    }
    if (e.state == "trial") {
      if (tries_left(e.tries)) {
        p.slot = s;
        p.reason = BootReason::trial;
        p.tries_after = std::string(1, static_cast<char>(e.tries[0] - 1));
        return p;
      }
      e.state = "bad";
      p.marked_bad.push_back(s);
    }
  }
  for (char s : order) {
    if (at(s).state != "empty") {
      p.slot = s;
      p.reason = BootReason::last_resort;
      return p;
    }
  }
  p.slot = order.empty() ? 'A' : order.front();
  p.reason = BootReason::empty;
  return p;
}

void
init_env(grubenv::Env& env)
{
  if (!env.get(k_env_order)) {
    env.set(k_env_order, "A B");
  }
  for (char s : {'A', 'B'}) {
    if (!env.get(slot_var(s, k_env_state_suffix))) {
      env.set(slot_var(s, k_env_state_suffix), "empty");
      env.set(slot_var(s, k_env_tries_suffix), "0");
    }
  }
}

grubenv::Env
initial_env(const std::string& digest_a, const std::string& name_a)
{
  grubenv::Env env;
  env.add_comment(std::string(grubenv::k_editenv_warning));
  env.set(k_env_order, "A B");
  env.set(slot_var('A', k_env_state_suffix), "good");
  env.set(slot_var('A', k_env_tries_suffix), "0");
  env.set(slot_var('A', k_env_digest_suffix), digest_a);
  env.set(slot_var('A', k_env_name_suffix), name_a);
  env.set(slot_var('B', k_env_state_suffix), "empty");
  env.set(slot_var('B', k_env_tries_suffix), "0");
  return env;
}

void
set_empty(grubenv::Env& env, char slot)
{
  init_env(env);
  env.set(slot_var(slot, k_env_state_suffix), "empty");
  env.set(slot_var(slot, k_env_tries_suffix), "0");
  env.set(slot_var(slot, k_env_digest_suffix), "");
  env.set(slot_var(slot, k_env_name_suffix), "");
}

void
set_trial(grubenv::Env& env, char slot, unsigned tries, const std::string& digest, const std::string& name)
{
  if (tries < 1 || tries > k_max_tries) {
    throw UsageError("--tries", "must be 1.." + std::to_string(k_max_tries) + ", not " + std::to_string(tries));
  }
  init_env(env);
  env.set(slot_var(slot, k_env_state_suffix), "trial");
  env.set(slot_var(slot, k_env_tries_suffix), std::to_string(tries));
  env.set(slot_var(slot, k_env_digest_suffix), digest);
  env.set(slot_var(slot, k_env_name_suffix), name);
  env.set(k_env_order, std::string(1, slot) + " " + other_slot(slot));
}

std::uint64_t
highest_version(const grubenv::Env& env)
{
  std::optional<std::string> text = env.get(k_env_highest_version);
  if (!text) {
    return 0;
  }
  bool digits = !text->empty() && text->size() <= 19 &&
                std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    throw Error(std::string(k_env_highest_version), "is not a version number (" + std::to_string(text->size()) +
                                                      " characters); refusing to guess the node's highest version");
  }
  return std::stoull(*text);
}

void
record_version(grubenv::Env& env, std::uint64_t version)
{
  if (version > highest_version(env)) {
    env.set(k_env_highest_version, std::to_string(version));
  }
}

void
set_good(grubenv::Env& env, char slot)
{
  init_env(env);
  env.set(slot_var(slot, k_env_state_suffix), "good");
  env.set(slot_var(slot, k_env_tries_suffix), "0");
}

void
roll_back(grubenv::Env& env, char from)
{
  char to = other_slot(from);
  BootEnv b = read_boot_env(env);
  const SlotEnv& target = b.slot(to);
  if (target.state != "good") {
    throw Error("rollback", std::string("slot ") + to + " is " + target.state +
                              ", not good: there is no confirmed image to roll back to");
  }
  env.set(k_env_order, std::string(1, to) + " " + from);
}

} // namespace kiln::slots
