#include "core/dcos/caching_view.hpp"

namespace kiln::dcos {

namespace {

// The inner view's answer for `key`, asked once. A question that throws is not kept:
// it throws again when asked again.
template <typename Map, typename Ask>
const typename Map::mapped_type&
memo(Map& map, const std::string& key, Ask ask)
{
  auto it = map.find(key);
  if (it == map.end()) {
    it = map.emplace(key, ask()).first;
  }
  return it->second;
}

} // namespace

bool
CachingView::exists(const std::string& path)
{
  return memo(m_exists, path, [&] { return m_inner.exists(path); });
}

bool
CachingView::is_file(const std::string& path)
{
  return memo(m_is_file, path, [&] { return m_inner.is_file(path); });
}

bool
CachingView::is_dir(const std::string& path)
{
  return memo(m_is_dir, path, [&] { return m_inner.is_dir(path); });
}

bool
CachingView::is_symlink(const std::string& path)
{
  return memo(m_is_symlink, path, [&] { return m_inner.is_symlink(path); });
}

std::string
CachingView::readlink(const std::string& path)
{
  return memo(m_readlink, path, [&] { return m_inner.readlink(path); });
}

std::vector<std::string>
CachingView::list(const std::string& dir)
{
  return memo(m_list, dir, [&] { return m_inner.list(dir); });
}

std::optional<std::string>
CachingView::package_version(const std::string& name)
{
  return memo(m_package_version, name, [&] { return m_inner.package_version(name); });
}

std::optional<Filesystem>
CachingView::filesystem_of(const std::string& path)
{
  return memo(m_filesystem_of, path, [&] { return m_inner.filesystem_of(path); });
}

} // namespace kiln::dcos
