#include "core/node/mountinfo.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sstream>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace kiln::node {

namespace {

constexpr std::size_t k_max_mountinfo = 16u << 20;

// Space, tab, newline and backslash appear as \ooo in mountinfo paths.
std::string
unescape(const std::string& field)
{
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() + 0 && field[i + 1] >= '0' && field[i + 1] <= '3' &&
        field[i + 2] >= '0' && field[i + 2] <= '7' && field[i + 3] >= '0' && field[i + 3] <= '7') {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

} // namespace

std::vector<MountEntry>
parse_mountinfo(const std::string& text)
{
  std::vector<MountEntry> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string id, parent, numbers, root, point;
    if (!(fields >> id >> parent >> numbers >> root >> point)) {
      continue;
    }
    auto colon = numbers.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    MountEntry e;
    e.device = makedev(static_cast<unsigned>(std::strtoul(numbers.substr(0, colon).c_str(), nullptr, 10)),
                       static_cast<unsigned>(std::strtoul(numbers.substr(colon + 1).c_str(), nullptr, 10)));
    e.root = unescape(root);
    e.point = unescape(point);
    out.push_back(std::move(e));
  }
  return out;
}

std::string
read_mountinfo()
{
  util::Fd fd(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!fd) {
    throw Error("/proc/self/mountinfo", "cannot read (" + errno_text(errno) + "): mount points cannot be told apart");
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw Error("/proc/self/mountinfo", "cannot read: " + errno_text(errno));
    }
    if (n == 0) {
      return text;
    }
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > k_max_mountinfo) {
      throw Error("/proc/self/mountinfo", "larger than 16 MiB");
    }
  }
}

} // namespace kiln::node
