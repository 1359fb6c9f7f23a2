// File-system helpers: an owning file descriptor, atomic output files, advisory
// locks and scratch directories. Everything that publishes a file does it by
// writing a temporary name in the same directory and renaming it, so a reader
// (or a later kiln run) sees the old content or the new, never a torn file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::util {

namespace fs = std::filesystem;

// Move-only owner of a POSIX file descriptor.
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) noexcept : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const noexcept { return m_fd; }
  explicit operator bool() const noexcept { return m_fd >= 0; }
  int release() noexcept;
  // Closes now; throws Error naming `subject` if close reports a write-back error.
  void close(const std::string& subject);

private:
  int m_fd = -1;
};

// Memory aligned for O_DIRECT I/O: 4096 bytes, which every device's logical block size
// divides. Move-only; throws std::bad_alloc.
class AlignedBuffer {
public:
  static constexpr std::size_t k_alignment = 4096;
  explicit AlignedBuffer(std::size_t size);
  char* data() noexcept { return m_data.get(); }
  std::size_t size() const noexcept { return m_size; }

private:
  struct Free {
    void operator()(char* p) const noexcept;
  };
  std::unique_ptr<char, Free> m_data;
  std::size_t m_size;
};

// Opens `path` with open(2) flags; throws Error(path, strerror) on failure.
Fd open_file(const fs::path& path, int flags, unsigned mode = 0644);

// Whole-file read; throws Error(path, reason).
std::string read_file(const fs::path& path);

// The content of a regular file of at most `limit` bytes; nullopt when `path` is
// missing, not a regular file, unreadable or larger (reads at most limit + 1 bytes, so a
// file that grows meanwhile is still refused). For the caches kiln keeps beside its work
// (stamps, digest stores, decisions), where a file that cannot be used is rebuilt.
std::optional<std::string> read_file_within(const fs::path& path, std::uint64_t limit);

// Reads `path` in chunks of up to `chunk_size` bytes, handing each to `sink`; throws
// Error(path, reason).
void read_chunks(const fs::path& path, const std::function<void(const char*, size_t)>& sink,
                 size_t chunk_size = 1 << 20);

// Writes all of `data` to `fd`, retrying short writes; throws Error(subject, reason).
void write_all(int fd, std::string_view data, const std::string& subject);

// Positioned I/O with EINTR and short transfers retried. pread_full returns the bytes
// read, fewer than `size` only at the end of the file; both throw Error(subject, "read
// (write) failed at byte N: reason").
std::size_t pread_full(int fd, char* buffer, std::size_t size, std::uint64_t offset, const std::string& subject);
void pwrite_full(int fd, const char* data, std::size_t size, std::uint64_t offset, const std::string& subject);

// fsync of a directory, so that a rename inside it is durable.
void fsync_dir(const fs::path& dir);

// A file that appears at `target` only when commit() succeeds. Until then the data
// lives in a hidden temporary file beside the target; the destructor removes it.
class AtomicFile {
public:
  explicit AtomicFile(fs::path target, unsigned mode = 0644);
  AtomicFile(AtomicFile&&) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();

  int fd() const noexcept { return m_fd.get(); }
  const fs::path& temp_path() const noexcept { return m_temp; }
  const fs::path& target() const noexcept { return m_target; }
  void write(std::string_view data);
  // fsync, close, rename over the target, fsync the directory.
  void commit();

private:
  fs::path m_target;
  fs::path m_temp;
  Fd m_fd;
  bool m_committed = false;
};

// Writes `data` to `path` atomically (see AtomicFile).
void write_file_atomic(const fs::path& path, std::string_view data, unsigned mode = 0644);

// An exclusive advisory lock (flock) on `path`, created if missing; blocks until held (a
// signal that interrupts the wait throws the interrupted error).
class FileLock {
public:
  explicit FileLock(const fs::path& path);
  // The lock if nobody holds it now, else nullopt; never waits.
  static std::optional<FileLock> try_acquire(const fs::path& path);
  FileLock(FileLock&&) noexcept = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() = default; // closing the descriptor releases the lock

private:
  explicit FileLock(Fd fd) : m_fd(std::move(fd)) {}
  Fd m_fd;
};

// A fresh directory that is removed with its contents when the object dies,
// unless keep() was called.
class TempDir {
public:
  explicit TempDir(const fs::path& parent = fs::temp_directory_path(), std::string_view prefix = "kiln");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const fs::path& path() const noexcept { return m_path; }
  void keep() noexcept { m_keep = true; }

private:
  fs::path m_path;
  bool m_keep = false;
};

// The directory that holds `path`, never empty ("." for a bare name).
fs::path parent_dir(const fs::path& path);

} // namespace kiln::util
