#include "core/archive/archive.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kiln::archive {

namespace fs = std::filesystem;

namespace {

void
check(struct archive* a, int rc, const std::string& subject)
{
  if (rc < ARCHIVE_WARN) {
    throw Error(subject, error_message(a, "libarchive error"));
  }
}

} // namespace

void
tar_directory(const fs::path& dir, const fs::path& out, const TarOptions& options)
{
  std::vector<fs::path> entries;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) {
    throw Error(dir.string(), "cannot read directory: " + ec.message());
  }
  std::sort(entries.begin(), entries.end());

  WriteHandle a(archive_write_new());
  check(a.get(), archive_write_set_format_pax_restricted(a.get()), out.string());
  check(a.get(), archive_write_open_filename(a.get(), out.c_str()), out.string());
  std::vector<char> buf(1 << 16);
  for (const auto& path : entries) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      throw Error(path.string(), errno_text(errno));
    }
    std::string name = path.lexically_relative(dir).generic_string();
    if (!options.prefix.empty()) {
      name = options.prefix + "/" + name;
    }
    EntryHandle e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_uid(e.get(), options.uid);
    archive_entry_set_gid(e.get(), options.gid);
    archive_entry_set_mtime(e.get(), options.mtime, 0);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_symlink(e.get(), fs::read_symlink(path).c_str());
    } else {
      throw Error(path.string(), "unsupported file type in an overlay (only files, directories and symlinks)");
    }
    check(a.get(), archive_write_header(a.get(), e.get()), path.string());
    if (S_ISREG(st.st_mode)) {
      util::Fd fd = util::open_file(path, O_RDONLY);
      for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          throw Error(path.string(), "read failed: " + errno_text(errno));
        }
        if (n == 0) {
          break;
        }
        if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) < 0) {
          check(a.get(), ARCHIVE_FATAL, out.string());
        }
      }
    }
  }
  check(a.get(), archive_write_close(a.get()), out.string());
}

namespace {

// Reads every entry's header, and the data of regular files when `max_data` > 0 (at most
// that many bytes in all).
std::vector<Entry>
read_entries(const fs::path& tar, std::uint64_t max_data)
{
  ReadHandle a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  check(a.get(), archive_read_open_filename(a.get(), tar.c_str(), 1 << 16), tar.string());
  std::vector<Entry> out;
  std::uint64_t total = 0;
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    Entry entry;
    entry.name = archive_entry_pathname(e);
    auto type = archive_entry_filetype(e);
    entry.type = type == AE_IFDIR ? 'd' : type == AE_IFLNK ? 'l' : 'f';
    entry.mode = archive_entry_perm(e);
    entry.uid = static_cast<std::uint32_t>(archive_entry_uid(e));
    entry.gid = static_cast<std::uint32_t>(archive_entry_gid(e));
    entry.size = static_cast<std::uint64_t>(archive_entry_size(e));
    if (const char* link = archive_entry_symlink(e)) {
      entry.link = link;
    }
    if (max_data > 0 && entry.type == 'f') {
      total += entry.size;
      if (total > max_data) {
        throw Error(tar.string(), "more than " + std::to_string(max_data) + " bytes of file data");
      }
      entry.data.resize(entry.size);
      la_ssize_t n = archive_read_data(a.get(), entry.data.data(), entry.data.size());
      if (n < 0 || static_cast<std::uint64_t>(n) != entry.size) {
        throw Error(tar.string() + ": " + entry.name, error_message(a.get(), "short read"));
      }
    } else {
      archive_read_data_skip(a.get());
    }
    out.push_back(std::move(entry));
  }
  check(a.get(), rc, tar.string());
  return out;
}

} // namespace

std::vector<Entry>
list(const fs::path& tar)
{
  return read_entries(tar, 0);
}

std::vector<Entry>
read_all(const fs::path& tar, std::uint64_t max_data)
{
  return read_entries(tar, std::max<std::uint64_t>(max_data, 1));
}

} // namespace kiln::archive
