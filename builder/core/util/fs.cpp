#include "core/util/fs.hpp"

#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kiln::util {

Fd&
Fd::operator=(Fd&& other) noexcept
{
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = other.release();
  }
  return *this;
}

Fd::~Fd()
{
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

int
Fd::release() noexcept
{
  int fd = m_fd;
  m_fd = -1;
  return fd;
}

void
Fd::close(const std::string& subject)
{
  if (m_fd < 0) {
    return;
  }
  int fd = release();
  if (::close(fd) != 0) {
    throw Error(subject, "close failed: " + errno_text(errno));
  }
}

AlignedBuffer::AlignedBuffer(std::size_t size) : m_size(size)
{
  void* p = nullptr;
  if (::posix_memalign(&p, k_alignment, size == 0 ? k_alignment : size) != 0) {
    throw std::bad_alloc();
  }
  m_data.reset(static_cast<char*>(p));
}

void
AlignedBuffer::Free::operator()(char* p) const noexcept
{
  std::free(p);
}

Fd
open_file(const fs::path& path, int flags, unsigned mode)
{
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    throw Error(path.string(), errno_text(errno));
  }
  return Fd(fd);
}

void
read_chunks(const fs::path& path, const std::function<void(const char*, size_t)>& sink, size_t chunk_size)
{
  Fd fd = open_file(path, O_RDONLY);
  std::vector<char> buf(chunk_size);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(path.string(), "read failed: " + errno_text(errno));
    }
    if (n == 0) {
      return;
    }
    sink(buf.data(), static_cast<size_t>(n));
  }
}

std::string
read_file(const fs::path& path)
{
  std::string data;
  read_chunks(
    path, [&](const char* chunk, size_t size) { data.append(chunk, size); }, 65536);
  return data;
}

std::optional<std::string>
read_file_within(const fs::path& path, std::uint64_t limit)
{
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > limit) {
    return std::nullopt;
  }
  std::string data;
  std::vector<char> buf(65536);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return std::nullopt;
    }
    if (n == 0) {
      return data;
    }
    data.append(buf.data(), static_cast<size_t>(n));
    if (data.size() > limit) {
      return std::nullopt;
    }
  }
}

void
write_all(int fd, std::string_view data, const std::string& subject)
{
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error(subject, "write failed: " + errno_text(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::size_t
pread_full(int fd, char* buffer, std::size_t size, std::uint64_t offset, const std::string& subject)
{
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, buffer + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      throw Error(subject, "read failed at byte " + std::to_string(offset + done) + ": " + errno_text(errno));
    }
    if (n == 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void
pwrite_full(int fd, const char* data, std::size_t size, std::uint64_t offset, const std::string& subject)
{
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      throw Error(subject, "write failed at byte " + std::to_string(offset + done) + ": " +
                             (n < 0 ? errno_text(errno) : std::string("nothing written")));
    }
    done += static_cast<std::size_t>(n);
  }
}

void
fsync_dir(const fs::path& dir)
{
  Fd fd = open_file(dir, O_RDONLY | O_DIRECTORY);
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    throw Error(dir.string(), "fsync failed: " + errno_text(errno));
  }
}

fs::path
parent_dir(const fs::path& path)
{
  fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

AtomicFile::AtomicFile(fs::path target, unsigned mode) : m_target(std::move(target))
{
  std::string templ = (parent_dir(m_target) / ("." + m_target.filename().string() + ".tmp.XXXXXX")).string();
  int fd = ::mkstemp(templ.data());
  if (fd < 0) {
    throw Error(m_target.string(), "cannot create temporary file: " + errno_text(errno));
  }
  m_fd = Fd(fd);
  m_temp = templ;
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::unlink(m_temp.c_str());
    throw Error(m_target.string(), "chmod failed: " + errno_text(err));
  }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
  : m_target(std::move(other.m_target)), m_temp(std::move(other.m_temp)), m_fd(std::move(other.m_fd)),
    m_committed(other.m_committed)
{
  other.m_committed = true; // the moved-from object owns nothing
}

AtomicFile::~AtomicFile()
{
  // Never commit from a destructor: reaching it without commit() means an error
  // path, and a half-written file must not appear under the real name.
  if (!m_committed && !m_temp.empty()) {
    ::unlink(m_temp.c_str());
  }
}

void
AtomicFile::write(std::string_view data)
{
  write_all(m_fd.get(), data, m_target.string());
}

void
AtomicFile::commit()
{
  if (::fsync(m_fd.get()) != 0) {
    throw Error(m_target.string(), "fsync failed: " + errno_text(errno));
  }
  m_fd.close(m_target.string());
  if (::rename(m_temp.c_str(), m_target.c_str()) != 0) {
    throw Error(m_target.string(), "rename failed: " + errno_text(errno));
  }
  m_committed = true;
  fsync_dir(parent_dir(m_target));
}

void
write_file_atomic(const fs::path& path, std::string_view data, unsigned mode)
{
  AtomicFile file(path, mode);
  file.write(data);
  file.commit();
}

FileLock::FileLock(const fs::path& path) : m_fd(open_file(path, O_RDWR | O_CREAT, 0644))
{
  while (::flock(m_fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      throw Error(path.string(), "cannot lock: " + errno_text(errno));
    }
    check_interrupted();
  }
}

std::optional<FileLock>
FileLock::try_acquire(const fs::path& path)
{
  Fd fd = open_file(path, O_RDWR | O_CREAT, 0644);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK || errno == EINTR) {
      return std::nullopt;
    }
    throw Error(path.string(), "cannot lock: " + errno_text(errno));
  }
  return FileLock(std::move(fd));
}

TempDir::TempDir(const fs::path& parent, std::string_view prefix)
{
  std::string templ = (parent / (std::string(prefix) + ".XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw Error(parent.string(), "cannot create temporary directory: " + errno_text(errno));
  }
  m_path = templ;
}

TempDir::~TempDir()
{
  if (!m_keep) {
    std::error_code ec; // ignored: a leftover scratch directory is harmless
    fs::remove_all(m_path, ec);
  }
}

} // namespace kiln::util
