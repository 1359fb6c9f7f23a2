// /proc/self/mountinfo, read with a bound and parsed into typed entries: which file
// system (device numbers, root within it) is mounted where. Used by wipe --dcos (never
// enter a mount point) and by status (find kiln-boot mounted by a running reimage).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

namespace kiln::node {

struct MountEntry {
  dev_t device = 0; // field 3, major:minor of the mounted file system (its st_dev)
  std::string root; // field 4, the directory of that file system mounted here ("/": all of it)
  std::string point; // field 5, the mount point (absolute, unescaped)
};

// The entries of a mountinfo text; malformed lines are skipped.
std::vector<MountEntry> parse_mountinfo(const std::string& text);

// /proc/self/mountinfo (at most 16 MiB); throws Error when it cannot be read.
std::string read_mountinfo();

} // namespace kiln::node
