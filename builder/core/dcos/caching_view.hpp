// A memo in front of another FsView. The checks ask the same questions many times (every
// unit_enabled() lists /etc/systemd/system and reads each alias link); through libguestfs
// each answer is a round trip to the appliance, tens of milliseconds under TCG. The image
// does not change while the checks run, so each question reaches the view once.
#pragma once

#include "core/dcos/view.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::dcos {

class CachingView : public FsView {
public:
  explicit CachingView(FsView& inner) : m_inner(inner) {}

  bool exists(const std::string& path) override;
  bool is_file(const std::string& path) override;
  bool is_dir(const std::string& path) override;
  bool is_symlink(const std::string& path) override;
  std::string readlink(const std::string& path) override;
  // File contents are not kept: the checks read few files, some of them large.
  std::string read_file(const std::string& path) override { return m_inner.read_file(path); }
  std::vector<std::string> list(const std::string& dir) override;
  std::optional<std::string> package_version(const std::string& name) override;
  std::optional<Filesystem> filesystem_of(const std::string& path) override;
  std::string describe() const override { return m_inner.describe(); }

private:
  FsView& m_inner;
  std::map<std::string, bool> m_exists, m_is_file, m_is_dir, m_is_symlink;
  std::map<std::string, std::string> m_readlink;
  std::map<std::string, std::vector<std::string>> m_list;
  std::map<std::string, std::optional<std::string>> m_package_version;
  std::map<std::string, std::optional<Filesystem>> m_filesystem_of;
};

} // namespace kiln::dcos
