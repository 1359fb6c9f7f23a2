#include "core/util/quote.hpp"

namespace kiln::util {

std::string
shell_quote(const std::string& s)
{
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

} // namespace kiln::util
