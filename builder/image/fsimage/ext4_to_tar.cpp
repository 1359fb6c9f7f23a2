#include "image/fsimage/ext4_to_tar.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/fsimage/ext2fs_handles.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

namespace kiln::fsimage {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_chunk = 1 << 20;

FilsysHandle
open_read_only(const fs::path& image)
{
  ext2_filsys raw = nullptr;
  errcode_t rc = ext2fs_open2(image.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &raw);
  if (rc != 0) {
    throw Error(image.string(), "cannot open as ext2/3/4: " + ext2fs_message(rc));
  }
  FilsysHandle fs(raw);
  ext2_super_block* sb = fs->super;
  if (ext2fs_has_feature_journal_needs_recovery(sb)) {
    throw Error(image.string(), "has a journal to replay: it was not unmounted cleanly");
  }
  if (ext2fs_has_feature_inline_data(sb) || ext2fs_has_feature_encrypt(sb) || ext2fs_has_feature_casefold(sb)) {
    throw Error(image.string(), "uses inline data, encryption or case folding, which kiln cannot re-make");
  }
  return fs;
}

class TreeWriter {
public:
  TreeWriter(ext2_filsys fs, const fs::path& image, struct archive* out, const fs::path& tar,
             const TreeReadLimits& limits)
    : m_fs(fs), m_image(image), m_out(out), m_tar(tar), m_limits(limits)
  {}

  void visit(ext2_ino_t ino, const std::string& path, unsigned depth)
  {
    if (depth > m_limits.max_depth) {
      throw Error(m_image.string(), "deeper than " + std::to_string(m_limits.max_depth) + " directories at " + path);
    }
    if (path.size() > m_limits.max_path) {
      throw Error(m_image.string(),
                  "a path longer than " + std::to_string(m_limits.max_path) + " bytes: " + path.substr(0, 80) + "...");
    }
    if (++m_report.entries > m_limits.max_entries) {
      throw Error(m_image.string(), "more than " + std::to_string(m_limits.max_entries) + " entries");
    }
    ext2_inode_large inode{};
    check(ext2fs_read_inode_full(m_fs, ino, reinterpret_cast<ext2_inode*>(&inode), sizeof inode), path,
          "cannot read its inode");
    archive::EntryHandle entry(archive_entry_new());
    struct archive_entry* e = entry.get();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_mode(e, inode.i_mode);
    archive_entry_set_uid(e, inode_uid(inode));
    archive_entry_set_gid(e, inode_gid(inode));
    set_mtime(e, inode);
    add_xattrs(e, ino, path);

    const std::uint16_t type = inode.i_mode & 0170000;
    const bool linked = type != LINUX_S_IFDIR && inode.i_links_count > 1;
    if (linked) {
      auto [it, first] = m_linked.emplace(ino, path);
      if (!first) {
        archive_entry_set_hardlink(e, it->second.c_str());
        archive_entry_set_size(e, 0);
        write_header(e, path);
        return;
      }
    }
    switch (type) {
      case LINUX_S_IFREG:
        archive_entry_set_size(e, static_cast<la_int64_t>(EXT2_I_SIZE(&inode)));
        write_header(e, path);
        copy_content(ino, EXT2_I_SIZE(&inode), path);
        return;
      case LINUX_S_IFLNK:
        archive_entry_set_symlink(e, symlink_target(ino, inode, path).c_str());
        break;
      case LINUX_S_IFCHR:
      case LINUX_S_IFBLK:
        set_device(e, inode);
        break;
      case LINUX_S_IFSOCK:
        --m_report.entries; // a tar cannot hold a socket; a service makes its own at run time
        return;
      default:
        break;
    }
    write_header(e, path);
    if (type == LINUX_S_IFDIR) {
      for (const auto& [name, child] : children(ino, path, depth == 0)) {
        visit(child, path + "/" + name, depth + 1);
      }
    }
  }

  const TreeReadReport& report() const { return m_report; }

private:
  void check(errcode_t rc, const std::string& path, const std::string& what) const
  {
    if (rc != 0) {
      throw Error(m_image.string(), path + ": " + what + ": " + ext2fs_message(rc));
    }
  }

  // Seconds and nanoseconds: ext4's large inodes keep two more bits of seconds and the
  // nanoseconds in i_mtime_extra.
  void set_mtime(struct archive_entry* e, const ext2_inode_large& inode) const
  {
    std::int64_t seconds = static_cast<std::int32_t>(inode.i_mtime);
    long nanos = 0;
    const bool extra = EXT2_INODE_SIZE(m_fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
                       inode.i_extra_isize >= offsetof(ext2_inode_large, i_mtime_extra) + sizeof inode.i_mtime_extra -
                                                EXT2_GOOD_OLD_INODE_SIZE;
    if (extra) {
      seconds += static_cast<std::int64_t>(inode.i_mtime_extra & 3) << 32;
      nanos = static_cast<long>(inode.i_mtime_extra >> 2);
    }
    archive_entry_set_mtime(e, static_cast<time_t>(seconds), nanos);
  }

  void set_device(struct archive_entry* e, const ext2_inode_large& inode) const
  {
    // The old encoding in i_block[0], the new (larger numbers) in i_block[1].
    std::uint32_t major = 0, minor = 0;
    if (inode.i_block[0] != 0) {
      major = (inode.i_block[0] >> 8) & 255;
      minor = inode.i_block[0] & 255;
    } else {
      major = (inode.i_block[1] & 0xfff00) >> 8;
      minor = (inode.i_block[1] & 0xff) | ((inode.i_block[1] >> 12) & 0xfff00);
    }
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
  }

  void add_xattrs(struct archive_entry* e, ext2_ino_t ino, const std::string& path) const
  {
    struct ext2_xattr_handle* raw = nullptr;
    check(ext2fs_xattrs_open(m_fs, ino, &raw), path, "cannot open its extended attributes");
    XattrsHandle handle(raw);
    check(ext2fs_xattrs_read(handle.get()), path, "cannot read its extended attributes");
    std::vector<std::pair<std::string, std::string>> found;
    auto collect = [](char* name, char* value, size_t size, void* data) -> int {
      static_cast<decltype(found)*>(data)->emplace_back(name, std::string(value, size));
      return 0;
    };
    check(ext2fs_xattrs_iterate(handle.get(), collect, &found), path, "cannot list its extended attributes");
    std::sort(found.begin(), found.end());
    for (const auto& [name, value] : found) {
      archive_entry_xattr_add_entry(e, name.c_str(), value.data(), value.size());
    }
  }

  std::string symlink_target(ext2_ino_t ino, ext2_inode_large& inode, const std::string& path)
  {
    const std::uint64_t size = EXT2_I_SIZE(&inode);
    if (size >= EXT2_MIN_BLOCK_SIZE * 4) {
      throw Error(m_image.string(), path + ": a symlink target of " + std::to_string(size) + " bytes");
    }
    if (ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&inode))) {
      return std::string(reinterpret_cast<const char*>(inode.i_block), size);
    }
    std::string target;
    read_content(ino, size, path, [&](const char* data, std::size_t n) { target.append(data, n); });
    return target;
  }

  // The `size` bytes of inode `ino`'s content, handed to `sink` a chunk at a time.
  template <typename Sink>
  void read_content(ext2_ino_t ino, std::uint64_t size, const std::string& path, Sink&& sink)
  {
    ext2_file_t raw = nullptr;
    check(ext2fs_file_open(m_fs, ino, 0, &raw), path, "cannot open");
    FileHandle file(raw);
    m_buffer.resize(k_chunk);
    std::uint64_t done = 0;
    while (done < size) {
      unsigned int got = 0;
      const unsigned int want = static_cast<unsigned int>(std::min<std::uint64_t>(size - done, k_chunk));
      check(ext2fs_file_read(file.get(), m_buffer.data(), want, &got), path, "cannot read");
      if (got == 0) {
        throw Error(m_image.string(), path + ": shorter than its size");
      }
      sink(m_buffer.data(), got);
      done += got;
    }
  }

  void copy_content(ext2_ino_t ino, std::uint64_t size, const std::string& path)
  {
    read_content(ino, size, path, [&](const char* data, std::size_t n) {
      if (archive_write_data(m_out, data, n) != static_cast<la_ssize_t>(n)) {
        throw Error(m_tar.string(), archive::error_message(m_out, "cannot write"));
      }
    });
    m_report.bytes += size;
  }

  void write_header(struct archive_entry* e, const std::string& path) const
  {
    if (archive_write_header(m_out, e) != ARCHIVE_OK) {
      throw Error(m_tar.string(), path + ": " + archive::error_message(m_out, "cannot write"));
    }
  }

  // A directory's entries but . and .. (and, in the root, lost+found), sorted by name.
  std::vector<std::pair<std::string, ext2_ino_t>> children(ext2_ino_t dir, const std::string& path, bool root) const
  {
    std::vector<std::pair<std::string, ext2_ino_t>> out;
    struct Walk {
      std::vector<std::pair<std::string, ext2_ino_t>>* out;
      bool root;
    } walk{&out, root};
    auto each = [](ext2_ino_t, int, struct ext2_dir_entry* dirent, int, int, char*, void* data) -> int {
      auto* w = static_cast<Walk*>(data);
      std::string name(dirent->name, ext2fs_dirent_name_len(dirent));
      if (name != "." && name != ".." && !(w->root && name == "lost+found")) {
        w->out->emplace_back(std::move(name), dirent->inode);
      }
      return 0;
    };
    check(ext2fs_dir_iterate2(m_fs, dir, 0, nullptr, each, &walk), path.empty() ? "/" : path,
          "cannot read the directory");
    std::sort(out.begin(), out.end());
    return out;
  }

  ext2_filsys m_fs;
  const fs::path& m_image;
  struct archive* m_out;
  const fs::path& m_tar;
  const TreeReadLimits& m_limits;
  TreeReadReport m_report;
  std::map<ext2_ino_t, std::string> m_linked; // hard-linked inode -> the first path written
  std::vector<char> m_buffer;
};

} // namespace

std::string
uuid_text(const unsigned char* u)
{
  char text[37];
  std::snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return text;
}

Ext4Geometry
read_ext4_geometry(const fs::path& image)
{
  FilsysHandle fs = open_read_only(image);
  const ext2_super_block* sb = fs->super;
  Ext4Geometry g;
  g.uuid = uuid_text(sb->s_uuid);
  const char* name = reinterpret_cast<const char*>(sb->s_volume_name);
  g.label = std::string(name, strnlen(name, sizeof sb->s_volume_name));
  g.block_size = EXT2_BLOCK_SIZE(sb);
  g.inode_size = EXT2_INODE_SIZE(sb);
  g.inodes = sb->s_inodes_count;
  g.blocks = ext2fs_blocks_count(fs->super);
  return g;
}

TreeReadReport
ext4_to_tar(const fs::path& image, const fs::path& tar, const TreeReadLimits& limits)
{
  FilsysHandle fs = open_read_only(image);
  util::AtomicFile file(tar);
  archive::WriteHandle out(archive_write_new());
  if (archive_write_set_format_pax_restricted(out.get()) != ARCHIVE_OK ||
      archive_write_open_filename(out.get(), file.temp_path().c_str()) != ARCHIVE_OK) {
    throw Error(tar.string(), archive::error_message(out.get(), "cannot write"));
  }
  TreeWriter writer(fs.get(), image, out.get(), tar, limits);
  writer.visit(EXT2_ROOT_INO, ".", 0);
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    throw Error(tar.string(), archive::error_message(out.get(), "cannot write"));
  }
  file.commit();
  return writer.report();
}

} // namespace kiln::fsimage
