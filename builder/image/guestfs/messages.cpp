#include "image/guestfs/messages.hpp"

#include <algorithm>
#include <cctype>

namespace kiln::gfs::detail {

std::string
strip(std::string_view text)
{
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return {};
  }
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end + 1 - begin));
}

// Drops control characters and ANSI escape sequences (the appliance's console colours its
// messages).
std::string
printable(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    if (u == 0x1b) {
      if (i + 1 < text.size() && text[i + 1] == '[') {
        // CSI: parameters and intermediates up to a final byte in 0x40..0x7e.
        i += 2;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) {
          ++i;
        }
      } else {
        ++i; // a two-byte escape
      }
      continue;
    }
    if (u == '\t') {
      out += ' ';
    } else if (u >= 0x20 && u != 0x7f) {
      out += c;
    }
  }
  return out;
}

std::vector<std::string>
split_lines(std::string_view text)
{
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      nl = text.size();
    }
    std::string line = strip(printable(text.substr(start, nl - start)));
    if (!line.empty()) {
      out.push_back(std::move(line));
    }
    start = nl + 1;
  }
  return out;
}

bool
starts_with(std::string_view text, std::string_view prefix)
{
  return text.substr(0, prefix.size()) == prefix;
}

bool
contains_nocase(std::string_view text, std::string_view word)
{
  auto it = std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}

// The generic advice libguestfs appends to launch failures says nothing about the cause.
bool
is_boilerplate(std::string_view line)
{
  static constexpr std::string_view k_noise[] = {
    "Do:",
    "export LIBGUESTFS_DEBUG",
    "and run the command again",
    "http://libguestfs.org/guestfs-faq",
    "https://libguestfs.org/guestfs-faq",
    "You can also run 'libguestfs-test-tool'",
    "into a bug report or message",
  };
  for (std::string_view noise : k_noise) {
    if (starts_with(line, noise)) {
      return true;
    }
  }
  return false;
}

// libguestfs's last error, reduced to one line: boilerplate dropped, at most a few lines
// joined with "; ", bounded in length.
std::string
one_line(const char* message)
{
  if (message == nullptr || *message == '\0') {
    return "unknown error";
  }
  std::string out;
  size_t kept = 0;
  for (const std::string& line : split_lines(message)) {
    if (is_boilerplate(line)) {
      continue;
    }
    if (kept == 4) {
      out += "; ...";
      break;
    }
    out += (kept == 0 ? "" : "; ") + line;
    ++kept;
  }
  if (out.size() > 400) {
    out.resize(400);
    out += "...";
  }
  return out.empty() ? "unknown error" : out;
}

std::string
subject_of(std::string_view op, const std::string& subject)
{
  std::string s = "guestfs ";
  s += op;
  if (!subject.empty()) {
    s += " " + subject;
  }
  return s;
}

} // namespace kiln::gfs::detail
