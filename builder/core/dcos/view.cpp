#include "core/dcos/view.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace kiln::dcos {

namespace fs = std::filesystem;

namespace {

std::vector<std::string>
components(const std::string& path)
{
  std::vector<std::string> out;
  std::istringstream in(path);
  for (std::string c; std::getline(in, c, '/');) {
    if (!c.empty() && c != ".") {
      out.push_back(c);
    }
  }
  return out;
}

std::uint32_t
be32(const std::string& b, size_t off)
{
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[off])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[off + 3]));
}

} // namespace

DirView::DirView(fs::path root, std::map<std::string, Filesystem> mounts)
  : m_root(std::move(root)), m_mounts(std::move(mounts))
{}

std::optional<fs::path>
DirView::resolve(const std::string& path, bool follow_last) const
{
  std::vector<std::string> todo = components(path);
  std::reverse(todo.begin(), todo.end());
  std::vector<std::string> done;
  int hops = 0;
  while (!todo.empty()) {
    std::string c = todo.back();
    todo.pop_back();
    if (c == "..") {
      if (!done.empty()) {
        done.pop_back();
      }
      continue;
    }
    fs::path host = m_root;
    for (const auto& d : done) {
      host /= d;
    }
    host /= c;
    std::error_code ec;
    fs::file_status st = fs::symlink_status(host, ec);
    if (ec || !fs::exists(st)) {
      return std::nullopt;
    }
    if (fs::is_symlink(st) && (follow_last || !todo.empty())) {
      if (++hops > 40) {
        return std::nullopt;
      }
      std::string target = fs::read_symlink(host, ec).string();
      if (ec) {
        return std::nullopt;
      }
      if (!target.empty() && target[0] == '/') {
        done.clear();
      }
      std::vector<std::string> more = components(target);
      for (auto it = more.rbegin(); it != more.rend(); ++it) {
        todo.push_back(*it);
      }
      continue;
    }
    done.push_back(c);
  }
  fs::path host = m_root;
  for (const auto& d : done) {
    host /= d;
  }
  return host;
}

bool
DirView::exists(const std::string& path)
{
  return resolve(path).has_value();
}

bool
DirView::is_file(const std::string& path)
{
  auto p = resolve(path);
  std::error_code ec;
  return p && fs::is_regular_file(*p, ec);
}

bool
DirView::is_dir(const std::string& path)
{
  auto p = resolve(path);
  std::error_code ec;
  return p && fs::is_directory(*p, ec);
}

bool
DirView::is_symlink(const std::string& path)
{
  auto p = resolve(path, false);
  std::error_code ec;
  return p && fs::is_symlink(fs::symlink_status(*p, ec));
}

std::string
DirView::readlink(const std::string& path)
{
  auto p = resolve(path, false);
  std::error_code ec;
  if (!p || !fs::is_symlink(fs::symlink_status(*p, ec))) {
    throw Error(path, "not a symbolic link in " + describe());
  }
  return fs::read_symlink(*p).string();
}

std::string
DirView::read_file(const std::string& path)
{
  auto p = resolve(path);
  if (!p) {
    throw Error(path, "no such file in " + describe());
  }
  return util::read_file(*p);
}

std::vector<std::string>
DirView::list(const std::string& dir)
{
  std::vector<std::string> out;
  auto p = resolve(dir);
  std::error_code ec;
  if (!p || !fs::is_directory(*p, ec)) {
    return out;
  }
  for (const auto& e : fs::directory_iterator(*p, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::string>
DirView::package_version(const std::string& name)
{
  if (auto status = resolve("/var/lib/dpkg/status"); status && fs::is_regular_file(*status)) {
    if (auto v = dpkg_status_version(util::read_file(*status), name)) {
      return v;
    }
  }
  bool rpmdb = exists("/var/lib/rpm/Packages") || exists("/var/lib/rpm/rpmdb.sqlite") ||
               exists("/usr/lib/sysimage/rpm/rpmdb.sqlite");
  if (rpmdb && !util::find_program("rpm").empty()) {
    util::RunResult r = util::run({"rpm", "--root", m_root.string(), "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", name});
    if (r.ok() && !r.out.empty()) {
      return r.out.substr(0, r.out.find('\n'));
    }
  }
  return std::nullopt;
}

std::optional<Filesystem>
DirView::filesystem_of(const std::string& path)
{
  std::vector<std::string> points;
  for (const auto& [mp, fsys] : m_mounts) {
    points.push_back(mp);
  }
  auto mp = mountpoint_of(path, points);
  if (!mp) {
    return std::nullopt;
  }
  Filesystem f = m_mounts.at(*mp);
  f.mountpoint = *mp;
  return f;
}

std::string
DirView::describe() const
{
  return m_root.string();
}

std::optional<std::string>
dpkg_status_version(const std::string& status, const std::string& name)
{
  std::istringstream in(status);
  std::string pkg, state, version;
  auto flush = [&]() -> std::optional<std::string> {
    if (pkg == name && state.find("install ok installed") != std::string::npos && !version.empty()) {
      std::string v = version;
      if (auto colon = v.find(':'); colon != std::string::npos) {
        v = v.substr(colon + 1);
      }
      return v;
    }
    return std::nullopt;
  };
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) {
      if (auto v = flush()) {
        return v;
      }
      pkg.clear();
      state.clear();
      version.clear();
    } else if (line.rfind("Package: ", 0) == 0) {
      pkg = line.substr(9);
    } else if (line.rfind("Status: ", 0) == 0) {
      state = line.substr(8);
    } else if (line.rfind("Version: ", 0) == 0) {
      version = line.substr(9);
    }
  }
  return flush();
}

std::optional<bool>
xfs_superblock_ftype(const std::string& sb)
{
  if (sb.size() < 220 || sb.compare(0, 4, "XFSB") != 0) {
    return std::nullopt;
  }
  unsigned versionnum = (static_cast<unsigned char>(sb[100]) << 8) | static_cast<unsigned char>(sb[101]);
  if ((versionnum & 0xf) == 5) {
    return (be32(sb, 216) & 0x1) != 0; // XFS_SB_FEAT_INCOMPAT_FTYPE
  }
  // V4: only with the "more bits" flag are features2 meaningful.
  return (versionnum & 0x8000) != 0 && (be32(sb, 200) & 0x200) != 0; // XFS_SB_VERSION2_FTYPE
}

std::optional<std::string>
mountpoint_of(const std::string& path, const std::vector<std::string>& mountpoints)
{
  std::optional<std::string> best;
  for (const auto& mp : mountpoints) {
    bool under = mp == "/" || path == mp || path.rfind(mp + "/", 0) == 0;
    if (under && (!best || mp.size() > best->size())) {
      best = mp;
    }
  }
  return best;
}

int
compare_versions(const std::string& a, const std::string& b)
{
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    bool da = i < a.size() && std::isdigit(static_cast<unsigned char>(a[i]));
    bool db = j < b.size() && std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) {
        ++ei;
      }
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) {
        ++ej;
      }
      std::string na = a.substr(i, ei - i), nb = b.substr(j, ej - j);
      na.erase(0, std::min(na.find_first_not_of('0'), na.size()));
      nb.erase(0, std::min(nb.find_first_not_of('0'), nb.size()));
      if (na.size() != nb.size()) {
        return na.size() < nb.size() ? -1 : 1;
      }
      if (int c = na.compare(nb); c != 0) {
        return c < 0 ? -1 : 1;
      }
      i = ei;
      j = ej;
      continue;
    }
    if (i >= a.size()) {
      return -1;
    }
    if (j >= b.size()) {
      return 1;
    }
    if (a[i] != b[j]) {
      // A digit sorts after a separator: "1.10" > "1.9", "19.03" > "19"
      return a[i] < b[j] ? -1 : 1;
    }
    ++i;
    ++j;
  }
  return 0;
}

} // namespace kiln::dcos
