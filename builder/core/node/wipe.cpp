#include "core/node/wipe.hpp"

#include "core/node/mountinfo.hpp"

#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <dirent.h>
#include <functional>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::node {

namespace {

constexpr std::size_t k_max_depth = 256; // directory levels beneath the root
constexpr std::size_t k_max_entries = 8'000'000; // entries one wipe may plan

constexpr int k_dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

using Rel = std::vector<std::string>;

Rel
split(std::string_view absolute)
{
  Rel rel;
  std::string part;
  for (char c : absolute) {
    if (c == '/') {
      if (!part.empty()) {
        rel.push_back(std::move(part));
        part.clear();
      }
    } else {
      part += c;
    }
  }
  if (!part.empty()) {
    rel.push_back(std::move(part));
  }
  return rel;
}

std::string
join(const std::string& root, const Rel& rel, std::size_t count)
{
  std::string out = root == "/" ? "" : root;
  for (std::size_t i = 0; i < count && i < rel.size(); ++i) {
    out += '/';
    out += rel[i];
  }
  return out.empty() ? "/" : out;
}

std::string
join(const std::string& root, const Rel& rel)
{
  return join(root, rel, rel.size());
}

Rel
child(const Rel& rel, const std::string& name)
{
  Rel out = rel;
  out.push_back(name);
  return out;
}

// Owner of a DIR* made from a duplicate of a directory descriptor.
struct DirCloser {
  void operator()(DIR* d) const noexcept { ::closedir(d); }
};

std::vector<std::string>
list_dir(int dirfd, const std::string& subject)
{
  int copy = ::dup(dirfd);
  if (copy < 0) {
    throw Error(subject, "cannot read: " + errno_text(errno));
  }
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(copy));
  if (!dir) {
    int err = errno;
    ::close(copy);
    throw Error(subject, "cannot read: " + errno_text(err));
  }
  ::rewinddir(dir.get());
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir.get())) {
    std::string name = e->d_name;
    if (name != "." && name != "..") {
      names.push_back(std::move(name));
    }
    errno = 0;
  }
  if (errno != 0) {
    throw Error(subject, "cannot read: " + errno_text(errno));
  }
  return names;
}

bool
is_dcos_unit_name(const std::string& name)
{
  auto ends = [&](std::string_view s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (name.rfind("dcos.target", 0) == 0) {
    return true; // dcos.target, dcos.target.wants/
  }
  return name.rfind("dcos-", 0) == 0 && (ends(".service") || ends(".socket") || ends(".timer"));
}

bool
is_dependency_dir_name(const std::string& name)
{
  auto ends = [&](std::string_view s) {
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".wants") || ends(".requires");
}

class Planner {
public:
  Planner(WipePlan& plan, int root_fd, std::set<std::string> mounts)
    : m_plan(plan), m_root_fd(root_fd), m_mounts(std::move(mounts))
  {}

  // Removes `absolute` beneath the root (a directory with its content); a directory that
  // is a mount point, or `keep_top`, is emptied and kept.
  void target(std::string_view absolute, bool keep_top)
  {
    Rel rel = split(absolute);
    auto dir = open_parent(rel);
    if (!dir) {
      return;
    }
    struct stat st {};
    if (::fstatat(dir->fd.get(), rel.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return; // absent
    }
    std::string path = join(m_plan.root.string(), rel);
    if (!S_ISDIR(st.st_mode)) {
      if (m_mounts.count(path) != 0) {
        m_plan.mount_points_skipped.push_back(path); // a bind-mounted file
        return;
      }
      m_plan.targets.push_back(path);
      add(rel, WipeEntry::Kind::file, st);
      return;
    }
    bool mount_point = m_mounts.count(path) != 0 || st.st_dev != dir->dev;
    m_plan.targets.push_back(path);
    bool whole = add_tree(dir->fd.get(), rel, st, rel.size(), nullptr);
    if (!keep_top && !mount_point && whole) {
      add(rel, WipeEntry::Kind::dir, st);
    }
  }

  // Removes the entries of the directory `absolute` that `keep` does not keep; the
  // directory stays.
  void contents(std::string_view absolute, const std::function<bool(const std::string&)>& keep)
  {
    Rel rel = split(absolute);
    auto dir = open_dir(rel);
    if (!dir) {
      return;
    }
    struct stat st {};
    ::fstat(dir->fd.get(), &st);
    std::string path = join(m_plan.root.string(), rel);
    if (m_mounts.count(path) != 0 || st.st_dev != dir->parent.dev) {
      m_plan.mount_points_skipped.push_back(path);
      return;
    }
    m_plan.targets.push_back(path + "/*");
    add_tree(dir->parent.fd.get(), rel, st, rel.size(), keep);
  }

  // Calls `found` with each entry name of directory `absolute` (when it can be reached
  // without following a symlink), and the directory's own descriptor.
  void each_entry(std::string_view absolute, const std::function<void(int, const std::string&)>& found)
  {
    Rel rel = split(absolute);
    auto dir = open_dir(rel);
    if (!dir) {
      return;
    }
    for (const auto& name : list_dir(dir->fd.get(), join(m_plan.root.string(), rel))) {
      found(dir->fd.get(), name);
    }
  }

  // True when directories `a` and `b` (each reached without following a symlink) are
  // the same directory.
  bool same_dir(std::string_view a, std::string_view b)
  {
    auto da = open_dir(split(a));
    auto db = open_dir(split(b));
    struct stat sa {};
    struct stat sb {};
    return da && db && ::fstat(da->fd.get(), &sa) == 0 && ::fstat(db->fd.get(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
  }

private:
  struct OpenDir {
    util::Fd fd;
    dev_t dev = 0;
  };

  // The directory holding rel's last component, reached component by component without
  // following a symlink; nullopt when a component is missing, not a directory or a
  // symlink (recorded as not followed).
  std::optional<OpenDir> open_parent(const Rel& rel)
  {
    OpenDir cur{util::Fd(::dup(m_root_fd)), 0};
    struct stat st {};
    ::fstat(cur.fd.get(), &st);
    cur.dev = st.st_dev;
    for (std::size_t i = 0; i + 1 < rel.size(); ++i) {
      util::Fd next(::openat(cur.fd.get(), rel[i].c_str(), k_dir_flags));
      if (!next) {
        note_unopenable(cur.fd.get(), Rel(rel.begin(), rel.begin() + static_cast<std::ptrdiff_t>(i + 1)));
        return std::nullopt;
      }
      ::fstat(next.get(), &st);
      cur = OpenDir{std::move(next), st.st_dev};
    }
    return cur;
  }

  struct OpenedDir {
    OpenDir parent;
    util::Fd fd; // rel itself
  };

  // rel's directory itself, opened beneath its parent the same way; nullopt as for
  // open_parent, or when rel is not a directory that can be opened without following.
  std::optional<OpenedDir> open_dir(const Rel& rel)
  {
    auto parent = open_parent(rel);
    if (!parent) {
      return std::nullopt;
    }
    util::Fd fd(::openat(parent->fd.get(), rel.back().c_str(), k_dir_flags));
    if (!fd) {
      note_unopenable(parent->fd.get(), rel);
      return std::nullopt;
    }
    return OpenedDir{std::move(*parent), std::move(fd)};
  }

  void note_unopenable(int parent, const Rel& rel)
  {
    struct stat st {};
    if (::fstatat(parent, rel.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      m_plan.symlinks_not_followed.push_back(join(m_plan.root.string(), rel));
    }
  }

  void add(const Rel& rel, WipeEntry::Kind kind, const struct stat& st)
  {
    if (m_plan.entries.size() >= k_max_entries) {
      throw Error(m_plan.root.string(), "more than " + std::to_string(k_max_entries) +
                                          " entries to remove; refusing to plan a wipe that large");
    }
    m_plan.entries.push_back(WipeEntry{rel, kind, st.st_dev, st.st_ino});
  }

  // Plans the removal of everything inside directory `rel` (entry `rel.back()` of
  // `parent`, with stat `st`) that `keep` does not keep; never enters a mount point.
  // Returns true when all of its content is planned (the directory can then go).
  bool add_tree(int parent, const Rel& rel, const struct stat& st, std::size_t depth,
                const std::function<bool(const std::string&)>& keep)
  {
    std::string path = join(m_plan.root.string(), rel);
    if (depth > k_max_depth) {
      throw Error(path, "deeper than " + std::to_string(k_max_depth) + " levels; refusing to wipe");
    }
    util::Fd fd(::openat(parent, rel.back().c_str(), k_dir_flags));
    struct stat now {};
    if (!fd || ::fstat(fd.get(), &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
      throw Error(path, "changed while the wipe was planned");
    }
    bool all = true;
    for (const auto& name : list_dir(fd.get(), path)) {
      if (keep && keep(name)) {
        all = false;
        continue;
      }
      Rel sub = child(rel, name);
      std::string sub_path = join(m_plan.root.string(), sub);
      struct stat cst {};
      if (::fstatat(fd.get(), name.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) {
        continue; // gone meanwhile
      }
      if (m_mounts.count(sub_path) != 0 || (S_ISDIR(cst.st_mode) && cst.st_dev != st.st_dev)) {
        m_plan.mount_points_skipped.push_back(sub_path); // a volume, a bind mount: never entered
        all = false;
        continue;
      }
      if (S_ISDIR(cst.st_mode)) {
        if (add_tree(fd.get(), sub, cst, depth + 1, nullptr)) {
          add(sub, WipeEntry::Kind::dir, cst);
        } else {
          all = false;
        }
      } else {
        add(sub, WipeEntry::Kind::file, cst);
      }
    }
    return all;
  }

  WipePlan& m_plan;
  int m_root_fd;
  std::set<std::string> m_mounts;
};

// The root as an absolute, existing directory, canonical (the form mountinfo uses).
fs::path
checked_root(const fs::path& root)
{
  if (root.empty()) {
    throw UsageError("--root", "empty; give the absolute path of the system to wipe");
  }
  if (!root.is_absolute()) {
    throw UsageError("--root", root.string() + ": not an absolute path");
  }
  char resolved[PATH_MAX];
  if (::realpath(root.c_str(), resolved) == nullptr) {
    throw UsageError(root.string(), "cannot use as --root: " + errno_text(errno));
  }
  struct stat st {};
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw UsageError(root.string(), "cannot use as --root: not a directory");
  }
  return resolved;
}

std::set<std::string>
mounts_beneath(const fs::path& root)
{
  std::set<std::string> out;
  std::string prefix = root == "/" ? "/" : root.string() + "/";
  for (const MountEntry& e : parse_mountinfo(read_mountinfo())) {
    const std::string& m = e.point;
    if (m.size() > prefix.size() && m.compare(0, prefix.size(), prefix) == 0) {
      out.insert(m);
    }
  }
  return out;
}

} // namespace

WipePlan
plan_wipe(const WipeOptions& options)
{
  WipePlan plan;
  plan.root = checked_root(options.root);
  util::Fd root_fd(::open(plan.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    throw Error(plan.root.string(), "cannot open: " + errno_text(errno));
  }
  Planner p(plan, root_fd.get(), mounts_beneath(plan.root));
  for (const char* dir : {"/etc/mesosphere", "/opt/mesosphere", "/run/dcos", "/run/mesos"}) {
    p.target(dir, false);
  }
  // The state directories live on kiln-data, bind-mounted into place (abi.hpp): emptied,
  // kept, so the bind mount finds its mount point at the next boot.
  for (const char* state : {"/var/lib/mesos", "/var/lib/dcos"}) {
    p.target(state, true);
    // Their home on kiln-data, when it is not the same directory (bind mounts not in
    // place, e.g. a root mounted elsewhere with kiln-data under it).
    std::string home = std::string(slots::k_data_mount) + "/" + fs::path(state).filename().string();
    if (!p.same_dir(state, home)) {
      p.target(home, true);
    }
  }
  for (const char* dir : {"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}) {
    std::string units = dir;
    p.each_entry(units, [&](int fd, const std::string& name) {
      if (is_dcos_unit_name(name)) {
        p.target(units + "/" + name, false);
        return;
      }
      struct stat st {};
      if (is_dependency_dir_name(name) && ::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISDIR(st.st_mode)) {
        p.each_entry(units + "/" + name, [&](int, const std::string& link) {
          if (is_dcos_unit_name(link)) {
            p.target(units + "/" + name + "/" + link, false);
          }
        });
      }
    });
  }
  p.target(slots::k_dcos_stamp, false);
  p.target(slots::k_dcos_failed, false);
  p.target("/etc/profile.d/dcos.sh", false); // the installer's link to add_dcos_path.sh
  // The agent's MOUNT volumes: listed always, emptied (never removed) only when asked.
  const std::string volume_dir(slots::k_dcos_volume_dir);
  std::vector<std::string> volume_names;
  p.each_entry(volume_dir, [&](int fd, const std::string& name) {
    struct stat st {};
    if (name.rfind(slots::k_dcos_volume_prefix, 0) == 0 && ::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISDIR(st.st_mode)) {
      volume_names.push_back(name);
    }
  });
  std::sort(volume_names.begin(), volume_names.end());
  for (const auto& name : volume_names) {
    std::string volume = volume_dir + "/" + name;
    plan.volumes.push_back(join(plan.root.string(), split(volume)));
    if (options.wipe_volumes) {
      p.target(volume, true);
    }
  }
  if (!options.keep_data) {
    p.target("/var/lib/docker", true);
    // kiln's own logs tell what happened before.
    p.contents("/var/log", [](const std::string& name) { return name == "kiln"; });
  }
  return plan;
}

void
execute_wipe(const WipePlan& plan)
{
  std::set<std::string> mounts = mounts_beneath(plan.root);
  for (const auto& e : plan.entries) {
    std::string path = join(plan.root.string(), e.rel);
    if (mounts.count(path) != 0) {
      throw Error(path, "became a mount point after the wipe was planned; nothing more removed");
    }
  }
  util::Fd root_fd(::open(plan.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    throw Error(plan.root.string(), "cannot open: " + errno_text(errno));
  }
  // The parent directory of the previous entry, reused while entries share it.
  Rel parent_rel;
  util::Fd parent;
  for (const auto& e : plan.entries) {
    std::string path = join(plan.root.string(), e.rel);
    Rel want(e.rel.begin(), e.rel.end() - 1);
    if (!parent || want != parent_rel) {
      util::Fd cur(::dup(root_fd.get()));
      for (const auto& part : want) {
        util::Fd next(::openat(cur.get(), part.c_str(), k_dir_flags));
        if (!next) {
          throw Error(join(plan.root.string(), want),
                      "cannot open without following a symlink (" + errno_text(errno) + "); nothing more removed");
        }
        cur = std::move(next);
      }
      parent = std::move(cur);
      parent_rel = want;
    }
    struct stat st {};
    if (::fstatat(parent.get(), e.rel.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue; // already gone
    }
    if (st.st_dev != e.dev || st.st_ino != e.ino ||
        (e.kind == WipeEntry::Kind::dir) != static_cast<bool>(S_ISDIR(st.st_mode))) {
      throw Error(path, "changed after the wipe was planned; nothing more removed");
    }
    if (::unlinkat(parent.get(), e.rel.back().c_str(), e.kind == WipeEntry::Kind::dir ? AT_REMOVEDIR : 0) != 0 &&
        errno != ENOENT) {
      throw Error(path, "cannot remove: " + errno_text(errno));
    }
  }
}

WipeReport
wipe_dcos(const WipeOptions& options)
{
  WipePlan plan = plan_wipe(options);
  execute_wipe(plan);
  WipeReport r;
  r.root = plan.root.string();
  r.keep_data = options.keep_data;
  r.removed = plan.targets;
  r.removed_entries = plan.entries.size();
  r.mount_points_skipped = plan.mount_points_skipped;
  r.symlinks_not_followed = plan.symlinks_not_followed;
  (options.wipe_volumes ? r.volumes_wiped : r.volumes_kept) = plan.volumes;
  return r;
}

} // namespace kiln::node
