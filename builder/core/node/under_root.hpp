// Paths of a system's tree under a root directory (--root), as kiln-node's commands
// read and change them.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace kiln::node {

// ROOT + an absolute path of the system ("/etc/kiln/dcos-role").
inline std::filesystem::path
under(const std::filesystem::path& root, std::string_view absolute)
{
  return root / std::string(absolute).substr(1);
}

// True when `p` exists, a dangling symlink included.
inline bool
present(const std::filesystem::path& p)
{
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::symlink_status(p, ec));
}

} // namespace kiln::node
