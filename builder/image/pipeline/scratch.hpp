// A build's scratch directory under CACHE/tmp, and the removal of those whose build died.
//
// Every scratch directory tmp/build.X has a lock file tmp/build.X.alive, made and locked
// before the directory and held while its build lives. A directory whose lock file is
// missing or can be locked belongs to a build that died (SIGKILL, power cut): nothing in
// it was ever trusted, so it goes.
#pragma once

#include "core/util/fs.hpp"

#include <filesystem>

namespace kiln::build {

class ScratchDir {
public:
  // Removes the scratch directories of dead builds in `tmp`, then makes this build's.
  explicit ScratchDir(const std::filesystem::path& tmp);
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir();
  const std::filesystem::path& path() const { return m_path; }

private:
  static util::FileLock lock_new(const std::filesystem::path& tmp, std::filesystem::path& path);
  std::filesystem::path m_path; // set by lock_new before m_alive is initialised
  util::FileLock m_alive;
};

} // namespace kiln::build
