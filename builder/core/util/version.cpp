#include "core/util/version.hpp"

#include <cctype>

namespace kiln::util {

namespace {

bool
is_digit(char c)
{
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

bool
is_alpha(char c)
{
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}

// The next run of digits or letters at `pos` (separators skipped); empty at the end.
std::string_view
next_segment(std::string_view s, size_t& pos)
{
  while (pos < s.size() && !is_digit(s[pos]) && !is_alpha(s[pos])) {
    ++pos;
  }
  size_t start = pos;
  if (pos < s.size()) {
    const bool digits = is_digit(s[pos]);
    while (pos < s.size() && (digits ? is_digit(s[pos]) : is_alpha(s[pos]))) {
      ++pos;
    }
  }
  return s.substr(start, pos - start);
}

int
sign(int v)
{
  return v < 0 ? -1 : (v > 0 ? 1 : 0);
}

} // namespace

int
rpm_version_compare(std::string_view a, std::string_view b)
{
  size_t i = 0, j = 0;
  for (;;) {
    std::string_view x = next_segment(a, i);
    std::string_view y = next_segment(b, j);
    if (x.empty() || y.empty()) {
      return x.empty() && y.empty() ? 0 : (x.empty() ? -1 : 1); // more segments: newer
    }
    const bool xd = is_digit(x.front()), yd = is_digit(y.front());
    if (xd != yd) {
      return xd ? 1 : -1; // a number is newer than letters
    }
    if (xd) {
      x.remove_prefix(std::min(x.find_first_not_of('0'), x.size()));
      y.remove_prefix(std::min(y.find_first_not_of('0'), y.size()));
      if (x.size() != y.size()) {
        return x.size() < y.size() ? -1 : 1;
      }
    }
    if (int c = x.compare(y); c != 0) {
      return sign(c);
    }
  }
}

} // namespace kiln::util
