// An exclusive lock on the disk for the length of a kiln-node command (flock on the disk
// or image file), so two runs never interleave their grubenv updates or slot writes.
#pragma once

#include "core/util/fs.hpp"

#include <filesystem>

namespace kiln::node {

// status takes it shared: it never waits, and tells whether another kiln-node works.
// The exclusive lock waits out a status (well under a second) for at most 5 s.
class DiskLock {
public:
  explicit DiskLock(const std::filesystem::path& disk);
  struct Shared {};
  DiskLock(const std::filesystem::path& disk, Shared);
  bool held() const noexcept { return m_held; }
  // Asks for the shared lock again (the holder may have finished).
  bool try_shared() noexcept;

private:
  util::Fd m_fd;
  bool m_held = true;
};

} // namespace kiln::node
