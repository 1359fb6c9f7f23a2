#include "support/fake_editor.hpp"

#include "core/archive/archive.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <fnmatch.h>

namespace kiln::test {

namespace {

using Kind = FakeEditor::Node::Kind;

std::vector<std::string>
components(const std::string& path)
{
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    std::string c = path.substr(start, end - start);
    if (!c.empty() && c != ".") {
      out.push_back(c);
    }
    start = end + 1;
  }
  return out;
}

std::string
parent_of(const std::string& path)
{
  auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string
join(const std::string& dir, const std::string& name)
{
  return dir == "/" ? "/" + name : dir + "/" + name;
}

} // namespace

FakeEditor::FakeEditor()
{
  m_nodes["/"] = Node{Kind::dir, "", 0755, 0, 0};
}

std::string
FakeEditor::resolve(const std::string& path, bool follow_last) const
{
  if (path.empty() || path[0] != '/') {
    throw Error("fake guest: " + path, "not an absolute path");
  }
  std::vector<std::string> todo = components(path);
  std::string at = "/";
  int links = 0;
  for (size_t i = 0; i < todo.size(); ++i) {
    const std::string& c = todo[i];
    if (c == "..") {
      at = parent_of(at);
      continue;
    }
    std::string next = join(at, c);
    auto it = m_nodes.find(next);
    bool last = i + 1 == todo.size();
    if (it != m_nodes.end() && it->second.kind == Kind::symlink && (!last || follow_last)) {
      if (++links > 40) {
        throw Error("fake guest: " + path, "too many levels of symbolic links");
      }
      std::vector<std::string> rest(todo.begin() + static_cast<long>(i) + 1, todo.end());
      std::vector<std::string> target = components(it->second.data);
      if (!it->second.data.empty() && it->second.data[0] == '/') {
        at = "/";
      }
      target.insert(target.end(), rest.begin(), rest.end());
      todo = target;
      i = static_cast<size_t>(-1);
      continue;
    }
    at = next;
  }
  return at;
}

FakeEditor::Node*
FakeEditor::find(const std::string& path, bool follow_last)
{
  auto it = m_nodes.find(resolve(path, follow_last));
  return it == m_nodes.end() ? nullptr : &it->second;
}

FakeEditor::Node&
FakeEditor::existing(const std::string& op, const std::string& path, bool follow_last)
{
  Node* n = find(path, follow_last);
  if (n == nullptr) {
    throw Error(op + " " + path, "No such file or directory");
  }
  return *n;
}

void
FakeEditor::put(const std::string& op, const std::string& path, Node node)
{
  std::string where = resolve(path, node.kind != Kind::symlink);
  auto parent = m_nodes.find(resolve(parent_of(where), true));
  if (parent == m_nodes.end() || parent->second.kind != Kind::dir) {
    throw Error(op + " " + path, "No such file or directory (no parent directory)");
  }
  auto it = m_nodes.find(where);
  if (it != m_nodes.end() && it->second.kind == Kind::dir) {
    throw Error(op + " " + path, "Is a directory");
  }
  m_nodes[where] = std::move(node);
}

void
FakeEditor::add_file(const std::string& path, const std::string& content, unsigned mode)
{
  mkdir_p(parent_of(path));
  put("add_file", path, Node{Kind::file, content, mode, 0, 0});
}

void
FakeEditor::add_dir(const std::string& path, unsigned mode)
{
  mkdir_p(path);
  chmod(mode, path);
}

void
FakeEditor::add_symlink(const std::string& target, const std::string& link)
{
  mkdir_p(parent_of(link));
  ln_sf(target, link);
}

const FakeEditor::Node*
FakeEditor::node(const std::string& path) const
{
  auto it = m_nodes.find(resolve(path, false));
  return it == m_nodes.end() ? nullptr : &it->second;
}

std::vector<std::string>
FakeEditor::paths() const
{
  std::vector<std::string> out;
  for (const auto& [path, n] : m_nodes) {
    out.push_back(path);
  }
  return out;
}

bool
FakeEditor::exists(const std::string& path)
{
  return find(path, true) != nullptr;
}

bool
FakeEditor::is_file(const std::string& path)
{
  Node* n = find(path, false);
  return n != nullptr && n->kind == Kind::file;
}

bool
FakeEditor::is_dir(const std::string& path)
{
  Node* n = find(path, false);
  return n != nullptr && n->kind == Kind::dir;
}

bool
FakeEditor::is_symlink(const std::string& path)
{
  Node* n = find(path, false);
  return n != nullptr && n->kind == Kind::symlink;
}

std::string
FakeEditor::readlink(const std::string& path)
{
  Node& n = existing("readlink", path, false);
  if (n.kind != Kind::symlink) {
    throw Error("readlink " + path, "Invalid argument");
  }
  return n.data;
}

std::string
FakeEditor::read_file(const std::string& path)
{
  Node& n = existing("read_file", path, true);
  if (n.kind != Kind::file) {
    throw Error("read_file " + path, "Is a directory");
  }
  return n.data;
}

std::vector<std::string>
FakeEditor::glob(const std::string& pattern)
{
  std::vector<std::string> out;
  for (const auto& [path, n] : m_nodes) {
    if (path != "/" && fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME | FNM_PERIOD) == 0) {
      out.push_back(n.kind == Kind::dir ? path + "/" : path);
    }
  }
  return out;
}

void
FakeEditor::write(const std::string& path, const std::string& content)
{
  Node* n = find(path, true);
  if (n != nullptr && n->kind == Kind::file) {
    n->data = content;
    return;
  }
  put("write", path, Node{Kind::file, content, 0644, 0, 0});
}

void
FakeEditor::download(const std::string& remote, const std::string& local)
{
  util::write_file_atomic(local, read_file(remote));
}

void
FakeEditor::upload(const std::string& local, const std::string& remote)
{
  write(remote, util::read_file(local));
}

void
FakeEditor::tar_in(const std::string& local_tar, const std::string& dir)
{
  if (!is_dir(resolve(dir, true))) {
    throw Error("tar_in " + dir, "Not a directory");
  }
  for (const auto& e : archive::read_all(local_tar, 64ull << 20)) {
    std::string path = join(resolve(dir, true), e.name.rfind("./", 0) == 0 ? e.name.substr(2) : e.name);
    if (path.size() > 1 && path.back() == '/') {
      path.pop_back();
    }
    if (e.type == 'd') {
      mkdir_p(path);
      Node& n = existing("tar_in", path, true);
      n.mode = e.mode;
      n.uid = e.uid;
      n.gid = e.gid;
    } else {
      mkdir_p(parent_of(path));
      if (Node* old = find(path, false); old != nullptr && old->kind != Kind::dir) {
        m_nodes.erase(resolve(path, false));
      }
      put("tar_in", path,
          Node{e.type == 'l' ? Kind::symlink : Kind::file, e.type == 'l' ? e.link : e.data, e.mode, e.uid, e.gid});
    }
  }
}

void
FakeEditor::mkdir_p(const std::string& path)
{
  std::string at = "/";
  for (const auto& c : components(path)) {
    std::string next = resolve(join(at, c), true);
    auto it = m_nodes.find(next);
    if (it == m_nodes.end()) {
      put("mkdir_p", next, Node{Kind::dir, "", 0755, 0, 0});
    } else if (it->second.kind != Kind::dir) {
      throw Error("mkdir_p " + path, "Not a directory: " + next);
    }
    at = next;
  }
}

void
FakeEditor::chmod(unsigned mode, const std::string& path)
{
  existing("chmod", path, true).mode = mode & 07777;
}

void
FakeEditor::chown(std::uint32_t uid, std::uint32_t gid, const std::string& path)
{
  Node& n = existing("chown", path, true);
  n.uid = uid;
  n.gid = gid;
}

void
FakeEditor::rm_rf(const std::string& path)
{
  std::string where = resolve(path, false);
  if (where == "/") {
    throw Error("rm_rf /", "refusing to remove the root");
  }
  m_nodes.erase(where);
  const std::string prefix = where + "/";
  for (auto it = m_nodes.lower_bound(prefix); it != m_nodes.end() && it->first.rfind(prefix, 0) == 0;) {
    it = m_nodes.erase(it);
  }
}

void
FakeEditor::rm_f(const std::string& path)
{
  Node* n = find(path, false);
  if (n == nullptr) {
    return;
  }
  if (n->kind == Kind::dir) {
    throw Error("rm_f " + path, "Is a directory");
  }
  m_nodes.erase(resolve(path, false));
}

void
FakeEditor::ln_sf(const std::string& target, const std::string& link)
{
  Node* n = find(link, false);
  if (n != nullptr && n->kind == Kind::dir) {
    throw Error("ln_sf " + link, "Is a directory");
  }
  if (n != nullptr) {
    m_nodes.erase(resolve(link, false));
  }
  put("ln_sf", link, Node{Kind::symlink, target, 0777, 0, 0});
}

void
FakeEditor::truncate(const std::string& path)
{
  Node& n = existing("truncate", path, true);
  if (n.kind != Kind::file) {
    throw Error("truncate " + path, "Is a directory");
  }
  n.data.clear();
}

edit::CommandResult
FakeEditor::sh(const std::string& script)
{
  scripts.push_back(script);
  return on_sh ? on_sh(script, *this) : edit::CommandResult{};
}

bool
FakeEditor::selinux_relabel(const std::string& specfile, const std::string& path)
{
  relabels.emplace_back(specfile, path);
  return appliance_can_label;
}

} // namespace kiln::test
