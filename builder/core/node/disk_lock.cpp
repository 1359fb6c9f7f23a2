#include "core/node/disk_lock.hpp"

#include "core/util/error.hpp"

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <sys/file.h>
#include <thread>

namespace kiln::node {

DiskLock::DiskLock(const std::filesystem::path& disk) : m_fd(util::open_file(disk, O_RDONLY))
{
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (::flock(m_fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() > deadline) {
      throw Error(disk.string(), "another kiln-node is working on this disk");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

DiskLock::DiskLock(const std::filesystem::path& disk, Shared) : m_fd(util::open_file(disk, O_RDONLY))
{
  try_shared();
}

bool
DiskLock::try_shared() noexcept
{
  m_held = ::flock(m_fd.get(), LOCK_SH | LOCK_NB) == 0;
  return m_held;
}

} // namespace kiln::node
