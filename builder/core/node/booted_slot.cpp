#include "core/node/booted_slot.hpp"

#include "core/node/partition.hpp"
#include "core/node/test_hooks.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <sys/stat.h>

namespace kiln::node {

namespace {

std::string
lower(std::string s)
{
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

} // namespace

std::string
read_cmdline()
{
  const fs::path& test = test_hooks().cmdline;
  fs::path path = !test.empty() ? test : fs::path("/proc/cmdline");
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return {};
  }
  return util::read_file(path);
}

std::optional<std::string>
cmdline_value(const std::string& cmdline, std::string_view key)
{
  std::istringstream words(cmdline);
  std::optional<std::string> value;
  for (std::string w; words >> w;) {
    if (w.size() > key.size() && w.compare(0, key.size(), key) == 0 && w[key.size()] == '=') {
      value = w.substr(key.size() + 1); // the last one wins, as for the kernel's own parameters
    }
  }
  return value;
}

namespace {

// The device number of the block device a root= value names (/dev/..., UUID=, LABEL=,
// PARTLABEL=); nullopt when it cannot be resolved.
std::optional<dev_t>
root_device(const std::string& root)
{
  fs::path path;
  for (auto [prefix, dir] : {std::pair{"UUID=", "/dev/disk/by-uuid/"}, std::pair{"LABEL=", "/dev/disk/by-label/"},
                             std::pair{"PARTLABEL=", "/dev/disk/by-partlabel/"}}) {
    if (root.rfind(prefix, 0) == 0) {
      path = fs::path(dir) / root.substr(std::string_view(prefix).size());
    }
  }
  if (path.empty() && root.rfind("/dev/", 0) == 0) {
    path = root;
  }
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_rdev;
}

// The device number of slot `slot`'s partition node on `gpt`'s disk, if it has one.
std::optional<dev_t>
slot_device(const slots::Gpt& gpt, char slot)
{
  const slots::Partition* part = gpt.find_label(slot == 'A' ? slots::k_part_a : slots::k_part_b);
  if (part == nullptr) {
    return std::nullopt;
  }
  fs::path node = partition_node(gpt.disk, part->number);
  struct stat st {};
  if (node.empty() || ::stat(node.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_rdev;
}

} // namespace

std::optional<char>
cmdline_booted_slot(const slots::Gpt& gpt, const std::string& cmdline)
{
  auto slot_text = cmdline_value(cmdline, slots::k_cmdline_slot);
  auto root = cmdline_value(cmdline, "root");
  std::optional<char> named;
  if (slot_text) {
    named = slots::parse_slot(*slot_text);
    if (!named) {
      throw Error("kernel command line", std::string(slots::k_cmdline_slot) + "=" + *slot_text +
                                           " is neither A nor B; cannot tell which slot runs");
    }
  }
  if (!root) {
    if (named) {
      throw Error("kernel command line",
                  std::string(slots::k_cmdline_slot) + "= without root=; cannot prove which slot runs");
    }
    return std::nullopt;
  }
  // Which slot of this disk root= names, when it names one.
  std::optional<char> by_root;
  if (root->rfind("PARTUUID=", 0) == 0) {
    std::string uuid = lower(root->substr(9));
    for (char s : {'A', 'B'}) {
      const slots::Partition* part = gpt.find_label(s == 'A' ? slots::k_part_a : slots::k_part_b);
      if (part != nullptr && part->partuuid == uuid) {
        by_root = s;
      }
    }
    if (!by_root) {
      return std::nullopt; // another disk booted this system
    }
  } else {
    auto dev = root_device(*root);
    for (char s : {'A', 'B'}) {
      auto part = slot_device(gpt, s);
      if (dev && part && *dev == *part) {
        by_root = s;
      }
    }
    if (!by_root) {
      if (named) {
        throw Error("kernel command line", "kiln.slot=" + std::string(1, *named) + " but root=" + *root +
                                             " is not that slot's partition on " + gpt.disk.string() +
                                             "; cannot prove which slot runs");
      }
      return std::nullopt;
    }
  }
  if (named && *named != *by_root) {
    throw Error("kernel command line", "kiln.slot=" + std::string(1, *named) + " but root=" + *root + " is slot " +
                                         std::string(1, *by_root) + "'s partition; refusing to guess");
  }
  return by_root;
}

std::optional<char>
booted_slot(const slots::Gpt& gpt, std::optional<char> override_slot, bool force)
{
  if (override_slot && force) {
    return override_slot;
  }
  std::optional<char> running = cmdline_booted_slot(gpt, read_cmdline());
  if (override_slot && running && *running != *override_slot) {
    throw UsageError("--booted", std::string(1, *override_slot) +
                                   " contradicts the kernel command line, which "
                                   "booted slot " +
                                   std::string(1, *running) + " of this disk; add --force to override");
  }
  return override_slot ? override_slot : running;
}

fs::path
running_disk()
{
  auto root = cmdline_value(read_cmdline(), "root");
  if (!root || root->rfind("PARTUUID=", 0) != 0) {
    throw UsageError("--disk", "not given, and the kernel command line names no root=PARTUUID= to find it by");
  }
  std::error_code ec;
  fs::path part = fs::canonical(fs::path("/dev/disk/by-partuuid") / lower(root->substr(9)), ec);
  if (ec) {
    throw UsageError("--disk", "not given, and no device has PARTUUID " + root->substr(9));
  }
  // /sys/class/block/sda4 links into .../block/sda/sda4: the parent is the disk.
  fs::path sys = fs::canonical(fs::path("/sys/class/block") / part.filename(), ec);
  if (ec || !fs::exists(sys / "partition", ec)) {
    throw UsageError("--disk", "not given, and " + part.string() + " is not a partition");
  }
  return fs::path("/dev") / sys.parent_path().filename();
}

} // namespace kiln::node
