#include "core/node/fault.hpp"

#include <array>
#include <unistd.h>
#include <utility>

namespace kiln::node {

namespace {

constexpr std::array<std::pair<Fault, std::string_view>, 5> k_points{{
  {Fault::after_invalidate, "after-invalidate"},
  {Fault::mid_write, "mid-write"},
  {Fault::before_verify, "before-verify"},
  {Fault::before_switch, "before-switch"},
  {Fault::during_switch, "during-switch"},
}};

} // namespace

std::optional<Fault>
parse_fault(std::string_view name)
{
  for (const auto& [fault, point] : k_points) {
    if (point == name) {
      return fault;
    }
  }
  return std::nullopt;
}

std::string
fault_names()
{
  std::string names;
  for (const auto& [fault, point] : k_points) {
    names += (names.empty() ? "" : ", ") + std::string(point);
  }
  return names;
}

void
fault_point(Fault armed, Fault here)
{
  if (armed != Fault::none && armed == here) {
    ::_exit(99);
  }
}

} // namespace kiln::node
