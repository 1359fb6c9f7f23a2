// kiln-node wipe --dcos: removes DC/OS state beneath a root so the pre-staged installer
// runs at the next boot. It works in two phases: plan() walks the root and decides every
// entry to delete (a typed list, nothing touched yet); execute() then deletes exactly
// those entries, re-walking each parent and checking it is the same inode.
//
// Fail-closed rules (README "kiln-node"): every path beneath the root is resolved one
// component at a time with openat(O_NOFOLLOW|O_DIRECTORY), so no symlink is ever
// followed (a target behind a symlink is left alone and reported); mount points come
// from /proc/self/mountinfo (bind mounts of the same file system included) and from
// st_dev, and are never entered or removed; the root must be an absolute, existing
// directory. The agent's MOUNT volumes (/dcos/volume*) are kept unless --volumes wipe
// asks to empty them (each kept as a directory, usually a mount point of its own).
// Linux 3.10 system calls only.
#pragma once

#include "core/node/report.hpp"

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kiln::node {

namespace fs = std::filesystem;

struct WipeOptions {
  fs::path root = "/";
  bool keep_data = false;
  bool wipe_volumes = false; // --volumes wipe: empty the /dcos/volume* MOUNT volumes too
};

// One entry the wipe deletes: its path relative to the root (components), what it is,
// and its identity when planned (execute() refuses an entry that changed since).
struct WipeEntry {
  enum class Kind { file, dir };
  std::vector<std::string> rel;
  Kind kind = Kind::file;
  dev_t dev = 0;
  ino_t ino = 0;
};

struct WipePlan {
  fs::path root; // the canonical root
  std::vector<WipeEntry> entries; // in deletion order (children before their directory)
  std::vector<std::string> targets; // top-level paths removed or emptied (for the report)
  std::vector<std::string> mount_points_skipped;
  std::vector<std::string> symlinks_not_followed;
  // The agent's MOUNT volumes: directories /dcos/volume* beneath the root (a symlink is no
  // volume and is never followed), sorted; emptied (kept as directories) only with
  // wipe_volumes, else left untouched.
  std::vector<std::string> volumes;
};

// Decides what a wipe removes; touches nothing. Throws UsageError for a bad root.
WipePlan plan_wipe(const WipeOptions& options);

// Deletes the planned entries.
void execute_wipe(const WipePlan& plan);

// plan + execute; returns the paths removed, the mount points and symlinks left alone,
// and the DC/OS volumes kept or emptied.
WipeReport wipe_dcos(const WipeOptions& options);

} // namespace kiln::node
