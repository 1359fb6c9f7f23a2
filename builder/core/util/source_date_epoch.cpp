#include "core/util/source_date_epoch.hpp"

#include "core/util/error.hpp"

#include <cstdlib>
#include <string>

namespace kiln::util {

std::optional<std::int64_t>
parse_source_date_epoch(const char* text)
{
  if (text == nullptr) {
    return std::nullopt;
  }
  const std::string value(text);
  std::int64_t seconds = 0;
  bool ok = !value.empty() && value.size() <= 12;
  for (char c : value) {
    ok = ok && c >= '0' && c <= '9';
    seconds = ok ? seconds * 10 + (c - '0') : 0;
  }
  if (!ok || seconds > k_last_source_date_epoch) {
    throw Error("SOURCE_DATE_EPOCH", "not a whole number of seconds since 1970 up to " +
                                       std::to_string(k_last_source_date_epoch) + ": \"" + value.substr(0, 40) + "\"");
  }
  return seconds;
}

std::optional<std::int64_t>
source_date_epoch_from_environment()
{
  return parse_source_date_epoch(std::getenv("SOURCE_DATE_EPOCH"));
}

} // namespace kiln::util
