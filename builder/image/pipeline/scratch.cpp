#include "image/pipeline/scratch.hpp"

#include "core/util/error.hpp"

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <unistd.h>

namespace kiln::build {

namespace fs = std::filesystem;

namespace {

void
remove_dead(const fs::path& tmp)
{
  for (const auto& entry : fs::directory_iterator(tmp)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("build.", 0) != 0 || entry.path().extension() == ".alive") {
      continue;
    }
    fs::path alive_file = entry.path().string() + ".alive";
    std::error_code ec;
    if (fs::exists(alive_file, ec) && !util::FileLock::try_acquire(alive_file)) {
      continue; // its build is alive
    }
    fs::remove_all(entry.path(), ec);
    fs::remove(alive_file, ec);
  }
}

} // namespace

ScratchDir::ScratchDir(const fs::path& tmp) : m_alive((remove_dead(tmp), lock_new(tmp, m_path))) {}

ScratchDir::~ScratchDir()
{
  std::error_code ec; // a leftover is removed by the next build
  fs::remove_all(m_path, ec);
  fs::remove(m_path.string() + ".alive", ec);
}

util::FileLock
ScratchDir::lock_new(const fs::path& tmp, fs::path& path)
{
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string templ = (tmp / "build.XXXXXX.alive").string();
    int fd = ::mkstemps(templ.data(), 6);
    if (fd < 0) {
      throw Error(tmp.string(), "cannot create a scratch lock: " + errno_text(errno));
    }
    ::close(fd);
    std::optional<util::FileLock> lock = util::FileLock::try_acquire(templ);
    path = templ.substr(0, templ.size() - 6);
    std::error_code ec;
    if (lock && fs::create_directory(path, ec)) {
      return std::move(*lock);
    }
    fs::remove(templ, ec);
  }
  throw Error(tmp.string(), "cannot create a scratch directory");
}

} // namespace kiln::build
