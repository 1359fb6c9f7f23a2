#include "image/fsimage/tar_spool.hpp"

#include "core/archive/error.hpp"
#include "core/archive/tar_entries.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <unistd.h>
#include <unordered_map>

namespace kiln::fsimage {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_max_name = 255; // bytes of one path component in ext4
constexpr std::int64_t k_max_id = 0xffffffffll;

// The member type of a tar entry's file type; nullopt for one ext4 cannot hold.
std::optional<MemberType>
member_type(unsigned filetype)
{
  switch (filetype) {
    case AE_IFDIR:
      return MemberType::directory;
    case AE_IFREG:
      return MemberType::regular;
    case AE_IFLNK:
      return MemberType::symlink;
    case AE_IFCHR:
      return MemberType::chardev;
    case AE_IFBLK:
      return MemberType::blockdev;
    case AE_IFIFO:
      return MemberType::fifo;
    case AE_IFSOCK:
      return MemberType::socket;
    default:
      return std::nullopt;
  }
}

// The reader of one tar: members by path while it reads, the spool, the counts.
class Reader {
public:
  Reader(const fs::path& tar, const fs::path& scratch, std::uint32_t block_size, const TarLimits& limits)
    : m_tar(tar), m_subject(tar.string()), m_block_size(block_size), m_limits(limits)
  {
    fs::path spool = scratch / "spool";
    m_content.spool = util::open_file(spool, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ::unlink(spool.c_str()); // gone with the descriptor, whatever happens
  }

  void read()
  {
    archive::for_each_tar_entry(m_tar, m_subject, true, [this](struct archive* a, struct archive_entry* e) {
      if (++m_seen > m_limits.max_entries) {
        throw Error(m_subject, "more than " + std::to_string(m_limits.max_entries) + " members");
      }
      add(a, e);
    });
  }

  TarContent finish()
  {
    add_implicit_parents();
    join_hard_links();
    std::sort(m_content.members.begin(), m_content.members.end(),
              [](const Member& x, const Member& y) { return path_before(x.path, y.path); });
    return std::move(m_content);
  }

private:
  [[noreturn]] void fail(const std::string& path, const std::string& reason) const
  {
    throw Error(m_subject, "member " + (path.empty() ? std::string("/") : path) + ": " + reason);
  }

  // normalise_path's refusal, named after the tar.
  std::string normalised(const char* raw) const
  {
    try {
      return normalise_path(raw);
    } catch (const Error& error) {
      fail(raw, error.reason());
    }
  }

  void add(struct archive* a, struct archive_entry* e)
  {
    const char* raw = archive_entry_pathname(e);
    if (raw == nullptr) {
      throw Error(m_subject, "a member without a name");
    }
    if (std::strlen(raw) > m_limits.max_path) {
      fail(raw, "a path longer than " + std::to_string(m_limits.max_path) + " bytes");
    }
    Member m;
    m.path = normalised(raw);
    if (!set_type(e, m)) {
      ++m_content.skipped;
      return;
    }
    if (m_index.count(m.path) != 0) {
      fail(m.path, "appears twice in the tar");
    }
    if (m.path.empty() && m.type != MemberType::directory) {
      fail(m.path, "the root is not a directory");
    }
    m.mode = static_cast<std::uint32_t>(archive_entry_perm(e)) & 07777;
    std::int64_t uid = archive_entry_uid(e);
    std::int64_t gid = archive_entry_gid(e);
    if (uid < 0 || uid > k_max_id || gid < 0 || gid > k_max_id) {
      fail(m.path, "owner " + std::to_string(uid) + ":" + std::to_string(gid) + " is not a 32-bit id");
    }
    m.uid = static_cast<std::uint32_t>(uid);
    m.gid = static_cast<std::uint32_t>(gid);
    m.mtime = archive_entry_mtime(e);
    read_xattrs(e, m);
    if (archive_entry_acl_types(e) != 0) {
      fail(m.path, "POSIX ACLs are not supported (tar it without them, or as system.posix_acl_* xattrs)");
    }
    if (m.type == MemberType::regular) {
      spool_content(a, e, m);
    }
    m_index.emplace(m.path, m_content.members.size());
    m_content.members.push_back(std::move(m));
    ++m_content.entries;
  }

  // False for a type ext4 cannot hold.
  bool set_type(struct archive_entry* e, Member& m) const
  {
    if (const char* link = archive_entry_hardlink(e)) {
      m.type = MemberType::hardlink;
      m.target = normalised(link);
      return true;
    }
    std::optional<MemberType> type = member_type(archive_entry_filetype(e));
    if (!type) {
      return false;
    }
    m.type = *type;
    if (m.type == MemberType::symlink) {
      const char* target = archive_entry_symlink(e);
      m.target = target != nullptr ? target : "";
      if (m.target.empty() || m.target.size() >= m_block_size) {
        fail(m.path, "a symlink target of " + std::to_string(m.target.size()) + " bytes (ext4 holds 1 to " +
                       std::to_string(m_block_size - 1) + ")");
      }
    } else if (m.type == MemberType::chardev || m.type == MemberType::blockdev) {
      m.dev_major = static_cast<std::uint32_t>(archive_entry_rdevmajor(e));
      m.dev_minor = static_cast<std::uint32_t>(archive_entry_rdevminor(e));
    }
    return true;
  }

  void read_xattrs(struct archive_entry* e, Member& m) const
  {
    std::size_t total = 0;
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    std::size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      total += std::strlen(name) + size;
      if (total > m_limits.max_xattr_bytes) {
        fail(m.path, "extended attributes of more than " + std::to_string(m_limits.max_xattr_bytes) + " bytes");
      }
      m.xattrs.emplace_back(name, std::string(static_cast<const char*>(value), size));
    }
    // libarchive's pax writer stores each xattr twice (SCHILY.xattr and LIBARCHIVE.xattr),
    // and its reader hands both back: the same name and value count once.
    std::sort(m.xattrs.begin(), m.xattrs.end());
    m.xattrs.erase(std::unique(m.xattrs.begin(), m.xattrs.end()), m.xattrs.end());
    auto same_name = [](const auto& x, const auto& y) { return x.first == y.first; };
    if (std::adjacent_find(m.xattrs.begin(), m.xattrs.end(), same_name) != m.xattrs.end()) {
      fail(m.path, "an extended attribute given twice with different values");
    }
  }

  // Copies the content to the spool at the next block boundary, holes kept, and counts
  // the blocks that hold a byte other than zero.
  void spool_content(struct archive* a, struct archive_entry* e, Member& m)
  {
    m.size = archive_entry_size_is_set(e) ? static_cast<std::uint64_t>(archive_entry_size(e)) : 0;
    m.spool_offset = m_spool_end;
    std::int64_t last_counted = -1;
    const void* buffer = nullptr;
    std::size_t length = 0;
    la_int64_t offset = 0;
    int r = ARCHIVE_OK;
    while ((r = archive_read_data_block(a, &buffer, &length, &offset)) == ARCHIVE_OK) {
      auto at = static_cast<std::uint64_t>(offset);
      if (offset < 0 || at + length > m.size) {
        fail(m.path, "content past its size of " + std::to_string(m.size) + " bytes");
      }
      const char* data = static_cast<const char*>(buffer);
      util::pwrite_full(m_content.spool.get(), data, length, m.spool_offset + at, m_subject);
      // Tar data comes in ascending order: a block is counted once, when it is first seen.
      for (std::uint64_t pos = at; pos < at + length;) {
        std::uint64_t block = pos / m_block_size;
        std::uint64_t end = std::min((block + 1) * m_block_size, at + length);
        if (static_cast<std::int64_t>(block) > last_counted && !all_zero(data + (pos - at), end - pos)) {
          ++m_content.data_blocks;
          last_counted = static_cast<std::int64_t>(block);
        }
        pos = end;
      }
    }
    if (r != ARCHIVE_EOF) {
      fail(m.path, archive::error_message(a, "cannot read its content"));
    }
    m_content.bytes += m.size;
    m_spool_end = (m.spool_offset + m.size + m_block_size - 1) / m_block_size * m_block_size;
  }

  // Every member's parent exists and is a directory; missing ones are added (and their
  // own parents in turn, as the loop reaches them).
  void add_implicit_parents()
  {
    if (m_index.count("") == 0) {
      add_implicit("");
    }
    for (std::size_t i = 0; i < m_content.members.size(); ++i) {
      const std::string& path = m_content.members[i].path;
      if (path.empty()) {
        continue;
      }
      std::size_t slash = path.rfind('/');
      std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
      auto found = m_index.find(parent);
      if (found == m_index.end()) {
        add_implicit(parent);
      } else if (m_content.members[found->second].type != MemberType::directory) {
        fail(path, "its parent " + parent + " is not a directory");
      }
    }
  }

  void add_implicit(const std::string& path)
  {
    Member dir;
    dir.path = path;
    dir.type = MemberType::directory;
    dir.mode = 0755;
    dir.implicit = true;
    m_index.emplace(path, m_content.members.size());
    m_content.members.push_back(std::move(dir));
  }

  // Each group of hard links becomes one inode held by its first path in the canonical
  // order: that member gets the content and metadata of the member the links name, and
  // every other path of the group links to it.
  void join_hard_links()
  {
    std::vector<Member>& members = m_content.members;
    std::map<std::size_t, std::vector<std::size_t>> groups; // data member -> its links
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (members[i].type == MemberType::hardlink) {
        groups[resolve(i)].push_back(i);
      }
    }
    for (auto& [data, links] : groups) {
      std::size_t holder = data;
      for (std::size_t link : links) {
        if (path_before(members[link].path, members[holder].path)) {
          holder = link;
        }
      }
      if (holder != data) {
        std::swap(members[holder].path, members[data].path);
        std::swap(members[holder], members[data]);
        links.push_back(data);
      }
      for (std::size_t link : links) {
        if (link != holder) {
          members[link].type = MemberType::hardlink;
          members[link].target = members[holder].path;
          members[link].xattrs.clear();
          members[link].size = 0;
        }
      }
    }
  }

  // The member (not a hard link) that hard link `i` ends at.
  std::size_t resolve(std::size_t i) const
  {
    const std::vector<Member>& members = m_content.members;
    std::size_t at = i;
    for (std::size_t steps = 0; members[at].type == MemberType::hardlink; ++steps) {
      auto found = m_index.find(members[at].target);
      if (found == m_index.end() || steps > members.size()) {
        fail(members[i].path, "a hard link to " + members[at].target + ", which the tar does not hold");
      }
      at = found->second;
    }
    if (members[at].type == MemberType::directory) {
      fail(members[i].path, "a hard link to the directory " + members[at].path);
    }
    return at;
  }

  fs::path m_tar;
  std::string m_subject;
  std::uint32_t m_block_size;
  TarLimits m_limits;
  TarContent m_content;
  std::unordered_map<std::string, std::size_t> m_index; // path -> member
  std::uint64_t m_spool_end = 0;
  std::uint64_t m_seen = 0;
};

} // namespace

TarContent
read_tar(const fs::path& tar, const fs::path& scratch, std::uint32_t block_size, const TarLimits& limits)
{
  Reader reader(tar, scratch, block_size, limits);
  reader.read();
  return reader.finish();
}

std::string
normalise_path(std::string_view raw)
{
  std::string out;
  std::size_t pos = 0;
  while (pos <= raw.size()) {
    std::size_t slash = raw.find('/', pos);
    std::string_view part = raw.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (part == "..") {
      throw Error(std::string(raw), "a \"..\" component: a member must stay inside the image");
    }
    if (part.size() > k_max_name) {
      throw Error(std::string(raw), "a component longer than " + std::to_string(k_max_name) + " bytes");
    }
    if (!part.empty() && part != ".") {
      if (!out.empty()) {
        out += '/';
      }
      out += part;
    }
    if (slash == std::string_view::npos) {
      break;
    }
    pos = slash + 1;
  }
  return out;
}

bool
path_before(std::string_view a, std::string_view b)
{
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      // '/' sorts before every other byte: a directory's members stay together.
      auto rank = [](char c) { return c == '/' ? 0u : static_cast<unsigned>(static_cast<unsigned char>(c)); };
      return rank(a[i]) < rank(b[i]);
    }
  }
  return a.size() < b.size();
}

bool
all_zero(const char* data, std::size_t size)
{
  return size == 0 || (data[0] == 0 && std::memcmp(data, data + 1, size - 1) == 0);
}

} // namespace kiln::fsimage
