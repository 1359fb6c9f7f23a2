// SOURCE_DATE_EPOCH (reproducible-builds.org): the one time a reproducible build may
// stamp into what it makes. kiln reads it once per command; the plan's base key and the
// outputs' stamps follow it, and the time stamps kiln pins come from it (README,
// "Reproducible builds").
#pragma once

#include <cstdint>
#include <optional>

namespace kiln::util {

// The latest SOURCE_DATE_EPOCH kiln takes: 9999-12-31T23:59:59Z.
constexpr std::int64_t k_last_source_date_epoch = 253402300799;

// The variable's value (`text`, null when it is unset): a whole number of seconds since
// 1970, at most k_last_source_date_epoch. Throws Error("SOURCE_DATE_EPOCH", ...) for
// anything else, an empty value included.
std::optional<std::int64_t> parse_source_date_epoch(const char* text);

// parse_source_date_epoch of the environment's SOURCE_DATE_EPOCH.
std::optional<std::int64_t> source_date_epoch_from_environment();

} // namespace kiln::util
