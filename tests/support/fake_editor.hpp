// An in-memory guest for the editor interface (image/edit/editor.hpp): files,
// directories and symlinks with modes and owners, symlinks resolved inside the fake root
// as libguestfs resolves them inside the guest, and every command and relabel recorded.
// Lets the logic of recipe steps, finalize and the A/B slot root run as unit tests,
// without an appliance. Faithful where that logic depends on it: write() needs the
// parent directory, is_file() and is_dir() do not follow a final symlink, exists() does,
// glob() marks directories with '/' and skips dot files for '*', as glob(3) does.
#pragma once

#include "image/edit/editor.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

class FakeEditor final : public edit::Editor {
public:
  struct Node {
    enum class Kind { file, dir, symlink };
    Kind kind = Kind::file;
    std::string data; // a file's content, a symlink's target
    unsigned mode = 0644;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
  };

  FakeEditor(); // an empty root directory

  // Setting up a guest (parents are created as 0755 directories).
  void add_file(const std::string& path, const std::string& content, unsigned mode = 0644);
  void add_dir(const std::string& path, unsigned mode = 0755);
  void add_symlink(const std::string& target, const std::string& link);

  // Looking at it: the node at `path` (a final symlink not followed), null when absent.
  const Node* node(const std::string& path) const;
  // Every path, sorted.
  std::vector<std::string> paths() const;

  // Commands: `on_sh` answers each script (default: exit 0, no output); every script is
  // recorded in `scripts`, every relabel in `relabels`; `appliance_can_label` is what
  // selinux_relabel() answers.
  std::function<edit::CommandResult(const std::string& script, FakeEditor& guest)> on_sh;
  std::vector<std::string> scripts;
  std::vector<std::pair<std::string, std::string>> relabels; // (specfile, path)
  bool appliance_can_label = true;

  bool exists(const std::string& path) override;
  bool is_file(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  bool is_symlink(const std::string& path) override;
  std::string readlink(const std::string& path) override;
  std::string read_file(const std::string& path) override;
  void download(const std::string& remote, const std::string& local) override;
  std::vector<std::string> glob(const std::string& pattern) override;
  void write(const std::string& path, const std::string& content) override;
  void upload(const std::string& local, const std::string& remote) override;
  void tar_in(const std::string& local_tar, const std::string& dir) override;
  void mkdir_p(const std::string& path) override;
  void chmod(unsigned mode, const std::string& path) override;
  void chown(std::uint32_t uid, std::uint32_t gid, const std::string& path) override;
  void rm_rf(const std::string& path) override;
  void rm_f(const std::string& path) override;
  void ln_sf(const std::string& target, const std::string& link) override;
  void truncate(const std::string& path) override;
  edit::CommandResult sh(const std::string& script) override;
  bool selinux_relabel(const std::string& specfile, const std::string& path) override;

private:
  // The normalised path `path` names: symlinks in directories followed, the last
  // component followed only when `follow_last`. Throws after 40 links.
  std::string resolve(const std::string& path, bool follow_last) const;
  Node* find(const std::string& path, bool follow_last);
  Node& existing(const std::string& op, const std::string& path, bool follow_last);
  void put(const std::string& op, const std::string& path, Node node);
  std::map<std::string, Node> m_nodes;
};

} // namespace kiln::test
