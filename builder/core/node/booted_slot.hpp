// Which slot of an A/B disk the running system booted, decided from the kernel command
// line, fail-closed; and the disk the running system booted from.
#pragma once

#include "core/slots/gpt.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::node {

namespace fs = std::filesystem;

// The kernel command line kiln-node reads: /proc/cmdline, or (test build only)
// test_hooks().cmdline, a file holding a command line.
std::string read_cmdline();
// The value of `key=` on a command line; nullopt when absent.
std::optional<std::string> cmdline_value(const std::string& cmdline, std::string_view key);

// The slot of `gpt`'s disk that the command line booted, decided fail-closed: a
// root=PARTUUID= naming either slot's partition makes that slot booted; a root= naming
// a device (/dev/sda4, UUID=, LABEL=) counts when it is one slot's partition node; a
// kiln.slot= that disagrees with root=, is not A/B, or comes without root= (or with a
// root= device that is not that slot's partition) is an Error. nullopt when root= names
// something outside this disk and no kiln.slot= says otherwise.
std::optional<char> cmdline_booted_slot(const slots::Gpt& gpt, const std::string& cmdline);

// The booted slot: `override_slot` (--booted) when given and not contradicted by the
// command line (a contradiction is a UsageError unless `force`), else the above.
std::optional<char> booted_slot(const slots::Gpt& gpt, std::optional<char> override_slot, bool force = false);

// The disk the running system booted from: the parent device of the partition that
// root=PARTUUID= names on the command line. Throws Error when there is none.
fs::path running_disk();

} // namespace kiln::node
