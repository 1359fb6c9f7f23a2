#include "core/archive/tree.hpp"

#include "core/archive/error.hpp"
#include "core/archive/tar_entries.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <cstdio>
#include <vector>

namespace kiln::archive {

namespace {

char
type_of(struct archive_entry* e)
{
  if (archive_entry_hardlink(e) != nullptr) {
    return 'h';
  }
  switch (archive_entry_filetype(e)) {
    case AE_IFDIR:
      return 'd';
    case AE_IFLNK:
      return 'l';
    case AE_IFCHR:
      return 'c';
    case AE_IFBLK:
      return 'b';
    case AE_IFIFO:
      return 'p';
    case AE_IFSOCK:
      return 's';
    default:
      return 'f';
  }
}

// "./etc/x", "etc/x/", "." -> "/etc/x", "/".
std::string
absolute(std::string path)
{
  while (path.rfind("./", 0) == 0) {
    path.erase(0, 2);
  }
  while (!path.empty() && path.back() == '/') {
    path.pop_back();
  }
  if (path.empty() || path == ".") {
    return "/";
  }
  return path.front() == '/' ? path : "/" + path;
}

std::string
octal(std::uint32_t mode)
{
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode));
  return buf;
}

bool
beneath(const std::string& path, const std::string& dir)
{
  return dir == "/" ? path != "/"
                    : path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

} // namespace

Tree
read_tree(const std::filesystem::path& tar, const std::string& subject, const TreeLimits& limits)
{
  Tree tree;
  std::vector<char> buffer(1 << 20);
  for_each_tar_entry(tar, subject, false, [&](struct archive* a, struct archive_entry* e) {
    const char* name = archive_entry_pathname(e);
    if (name == nullptr || std::string_view(name).size() > limits.max_path) {
      throw Error(subject, "an entry without a name or with one longer than " + std::to_string(limits.max_path));
    }
    if (tree.size() >= limits.max_entries) {
      throw Error(subject, "more than " + std::to_string(limits.max_entries) + " entries");
    }
    TreeEntry t;
    t.type = type_of(e);
    t.mode = static_cast<std::uint32_t>(archive_entry_perm(e)) & 07777;
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.mtime = archive_entry_mtime(e);
    if (t.type == 'h') {
      t.link = absolute(archive_entry_hardlink(e));
    } else if (t.type == 'l' && archive_entry_symlink(e) != nullptr) {
      t.link = archive_entry_symlink(e);
    }
    archive_entry_xattr_reset(e);
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    std::size_t xsize = 0;
    while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      t.xattrs[xname] = std::string(static_cast<const char*>(xvalue), xsize);
    }
    if (t.type == 'f') {
      crypto::Sha256 hash;
      for (;;) {
        la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
        if (n < 0) {
          throw Error(subject, error_message(a, "cannot read " + std::string(name)));
        }
        if (n == 0) {
          break;
        }
        hash.update(buffer.data(), static_cast<std::size_t>(n));
        t.size += static_cast<std::uint64_t>(n);
      }
      t.sha256 = hash.hex_digest();
    }
    tree[absolute(name)] = std::move(t);
  });
  return tree;
}

std::string
printable(const std::string& value)
{
  std::string v = value;
  while (!v.empty() && v.back() == '\0') {
    v.pop_back(); // SELinux labels end with a NUL
  }
  bool text = true;
  for (unsigned char c : v) {
    text = text && c >= 0x20 && c < 0x7f;
  }
  if (text) {
    return v;
  }
  static const char* const digits = "0123456789abcdef";
  std::string hex = "0x";
  for (unsigned char c : value) {
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  return hex;
}

std::vector<TreeDifference>
diff_trees(const Tree& a, const Tree& b)
{
  std::vector<TreeDifference> out;
  std::string only_a_dir; // the last directory listed as only in A (its contents are not)
  std::string only_b_dir;
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      if (only_a_dir.empty() || !beneath(ia->first, only_a_dir)) {
        out.push_back({ia->first, "only in A", std::string(1, ia->second.type), ""});
        only_a_dir = ia->second.type == 'd' ? ia->first : "";
      }
      ++ia;
      continue;
    }
    if (ia == a.end() || ib->first < ia->first) {
      if (only_b_dir.empty() || !beneath(ib->first, only_b_dir)) {
        out.push_back({ib->first, "only in B", "", std::string(1, ib->second.type)});
        only_b_dir = ib->second.type == 'd' ? ib->first : "";
      }
      ++ib;
      continue;
    }
    const std::string& path = ia->first;
    const TreeEntry& x = ia->second;
    const TreeEntry& y = ib->second;
    if (x.type != y.type) {
      out.push_back({path, "type", std::string(1, x.type), std::string(1, y.type)});
    } else if (x.sha256 != y.sha256) {
      out.push_back({path, "content", x.sha256.substr(0, 16) + " (" + std::to_string(x.size) + " bytes)",
                     y.sha256.substr(0, 16) + " (" + std::to_string(y.size) + " bytes)"});
    }
    if (x.mode != y.mode) {
      out.push_back({path, "mode", octal(x.mode), octal(y.mode)});
    }
    if (x.uid != y.uid || x.gid != y.gid) {
      out.push_back({path, "owner", std::to_string(x.uid) + ":" + std::to_string(x.gid),
                     std::to_string(y.uid) + ":" + std::to_string(y.gid)});
    }
    if (x.mtime != y.mtime) {
      out.push_back({path, "mtime", std::to_string(x.mtime), std::to_string(y.mtime)});
    }
    if (x.type == y.type && x.link != y.link) {
      out.push_back({path, "link", printable(x.link), printable(y.link)});
    }
    auto xa = x.xattrs.begin();
    auto xb = y.xattrs.begin();
    while (xa != x.xattrs.end() || xb != y.xattrs.end()) {
      if (xb == y.xattrs.end() || (xa != x.xattrs.end() && xa->first < xb->first)) {
        out.push_back({path, "xattr " + xa->first, printable(xa->second), ""});
        ++xa;
      } else if (xa == x.xattrs.end() || xb->first < xa->first) {
        out.push_back({path, "xattr " + xb->first, "", printable(xb->second)});
        ++xb;
      } else {
        if (xa->second != xb->second) {
          out.push_back({path, "xattr " + xa->first, printable(xa->second), printable(xb->second)});
        }
        ++xa;
        ++xb;
      }
    }
    ++ia;
    ++ib;
  }
  return out;
}

} // namespace kiln::archive
