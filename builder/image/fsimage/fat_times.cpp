#include "image/fsimage/fat_times.hpp"

#include "core/util/bytes.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <ctime>
#include <fcntl.h>
#include <set>
#include <string>
#include <vector>

namespace kiln::fsimage {

namespace fs = std::filesystem;
using util::le16;
using util::le32;
using util::put16;

namespace {

constexpr std::size_t k_entry = 32;
constexpr std::uint64_t k_max_fat_bytes = 64ull << 20; // FAT32 with 16 M clusters

bool
power_of_two(std::uint32_t v)
{
  return v != 0 && (v & (v - 1)) == 0;
}

// One FAT volume open for the walk: its geometry (Microsoft's FAT specification, "BPB"
// and "FAT type determination") and its first FAT in memory.
class Volume {
public:
  Volume(const fs::path& image, const FatTimesLimits& limits, std::int64_t epoch)
    : m_image(image), m_limits(limits), m_stamp(fat_time(epoch)), m_fd(util::open_file(image, O_RDWR | O_CLOEXEC))
  {
    unsigned char bs[512];
    if (util::pread_full(m_fd.get(), reinterpret_cast<char*>(bs), sizeof bs, 0, subject()) != sizeof bs) {
      fail("too short for a FAT boot sector");
    }
    if (bs[510] != 0x55 || bs[511] != 0xaa) {
      fail("no boot sector signature (not a FAT file system)");
    }
    m_bytes_per_sector = le16(bs + 11);
    std::uint32_t per_cluster = bs[13];
    std::uint32_t reserved = le16(bs + 14);
    std::uint32_t fats = bs[16];
    std::uint32_t root_entries = le16(bs + 17);
    std::uint64_t total = le16(bs + 19) != 0 ? le16(bs + 19) : le32(bs + 32);
    std::uint64_t fat_sectors = le16(bs + 22) != 0 ? le16(bs + 22) : le32(bs + 36);
    if (m_bytes_per_sector < 512 || m_bytes_per_sector > 4096 || !power_of_two(m_bytes_per_sector) ||
        !power_of_two(per_cluster) || per_cluster > 128 || reserved == 0 || fats == 0 || fats > 4 || fat_sectors == 0 ||
        total == 0) {
      fail("not a FAT boot sector (bad BIOS parameter block)");
    }
    m_cluster_bytes = static_cast<std::uint64_t>(per_cluster) * m_bytes_per_sector;
    std::uint64_t root_sectors = (root_entries * k_entry + m_bytes_per_sector - 1) / m_bytes_per_sector;
    std::uint64_t data_start = reserved + fats * fat_sectors + root_sectors;
    if (data_start >= total) {
      fail("its BIOS parameter block leaves no data area");
    }
    std::error_code ec;
    std::uintmax_t file_size = fs::file_size(image, ec);
    if (ec || total * m_bytes_per_sector > file_size) {
      fail("the file system is larger than its file");
    }
    m_clusters = (total - data_start) / per_cluster;
    m_type = m_clusters < 4085 ? 12 : m_clusters < 65525 ? 16 : 32;
    m_data_offset = data_start * m_bytes_per_sector;
    m_root_offset = (reserved + fats * fat_sectors) * m_bytes_per_sector;
    m_root_bytes = static_cast<std::uint64_t>(root_entries) * k_entry;
    if (m_type == 32) {
      m_root_cluster = le32(bs + 44);
    } else if (root_entries == 0) {
      fail("FAT" + std::to_string(m_type) + " without root directory entries");
    }
    std::uint64_t fat_bytes = fat_sectors * m_bytes_per_sector;
    if (fat_bytes > k_max_fat_bytes) {
      fail("its FAT is larger than " + std::to_string(k_max_fat_bytes >> 20) + " MiB");
    }
    m_fat.resize(fat_bytes);
    util::pread_full(m_fd.get(), reinterpret_cast<char*>(m_fat.data()), m_fat.size(),
                     static_cast<std::uint64_t>(reserved) * m_bytes_per_sector, subject());
  }

  FatTimesReport walk()
  {
    if (m_type == 32) {
      m_seen.insert(m_root_cluster);
      directory(chain(m_root_cluster), 0);
    } else {
      directory({{m_root_offset, m_root_bytes}}, 0);
    }
    m_fd.close(subject());
    return m_report;
  }

private:
  struct Span {
    std::uint64_t offset;
    std::uint64_t size;
  };

  std::string subject() const { return m_image.string(); }
  [[noreturn]] void fail(const std::string& reason) const { throw Error(subject(), reason); }

  std::uint32_t next(std::uint32_t cluster) const
  {
    std::uint64_t at = m_type == 12 ? cluster + cluster / 2 : static_cast<std::uint64_t>(cluster) * (m_type / 8);
    if (at + (m_type == 32 ? 4 : 2) > m_fat.size()) {
      fail("cluster " + std::to_string(cluster) + " lies past its FAT");
    }
    const unsigned char* p = m_fat.data() + at;
    if (m_type == 12) {
      std::uint32_t v = le16(p);
      v = (cluster & 1) != 0 ? v >> 4 : v & 0xfff;
      return v >= 0xff8 ? 0x0ffffff8 : v;
    }
    if (m_type == 16) {
      std::uint32_t v = le16(p);
      return v >= 0xfff8 ? 0x0ffffff8 : v;
    }
    return le32(p) & 0x0fffffff;
  }

  // A directory's clusters, in order, as byte ranges of the image.
  std::vector<Span> chain(std::uint32_t first) const
  {
    std::vector<Span> out;
    for (std::uint32_t c = first; c < 0x0ffffff8;) {
      if (c < 2 || c >= m_clusters + 2) {
        fail("a directory's cluster chain leaves the volume (cluster " + std::to_string(c) + ")");
      }
      if (out.size() >= m_clusters) {
        fail("a directory's cluster chain loops (at cluster " + std::to_string(first) + ")");
      }
      out.push_back({m_data_offset + static_cast<std::uint64_t>(c - 2) * m_cluster_bytes, m_cluster_bytes});
      c = next(c);
    }
    return out;
  }

  void directory(const std::vector<Span>& spans, unsigned depth)
  {
    if (depth > m_limits.max_depth) {
      fail("directories nest deeper than " + std::to_string(m_limits.max_depth));
    }
    ++m_report.directories;
    std::vector<std::uint32_t> children;
    std::vector<unsigned char> buffer;
    bool ended = false;
    for (const Span& s : spans) {
      buffer.resize(s.size);
      util::pread_full(m_fd.get(), reinterpret_cast<char*>(buffer.data()), buffer.size(), s.offset, subject());
      for (std::size_t at = 0; at + k_entry <= buffer.size(); at += k_entry) {
        unsigned char* e = buffer.data() + at;
        if (e[0] == 0x00) {
          ended = true; // no entry after this one is in use
          break;
        }
        if ((e[11] & 0x3f) == 0x0f) {
          continue; // a long-name part: no times
        }
        if (++m_report.entries > m_limits.max_entries) {
          fail("more than " + std::to_string(m_limits.max_entries) + " directory entries");
        }
        e[13] = 0; // creation time's tens of milliseconds
        put16(e + 14, m_stamp.time); // creation
        put16(e + 16, m_stamp.date);
        put16(e + 18, m_stamp.date); // last access (a date only)
        put16(e + 22, m_stamp.time); // last write
        put16(e + 24, m_stamp.date);
        bool dot = e[0] == '.';
        if (e[0] != 0xe5 && !dot && (e[11] & 0x10) != 0 && (e[11] & 0x08) == 0) {
          std::uint32_t high = m_type == 32 ? le16(e + 20) : 0;
          std::uint32_t first = (high << 16) | le16(e + 26);
          if (first != 0) {
            children.push_back(first);
          }
        }
      }
      util::pwrite_full(m_fd.get(), reinterpret_cast<const char*>(buffer.data()), buffer.size(), s.offset, subject());
      if (ended) {
        break;
      }
    }
    for (std::uint32_t child : children) {
      if (!m_seen.insert(child).second) {
        fail("two directory entries lead to cluster " + std::to_string(child));
      }
      directory(chain(child), depth + 1);
    }
  }

  fs::path m_image;
  FatTimesLimits m_limits;
  FatTime m_stamp;
  util::Fd m_fd;
  std::uint32_t m_bytes_per_sector = 0;
  std::uint64_t m_cluster_bytes = 0;
  std::uint64_t m_clusters = 0;
  unsigned m_type = 0;
  std::uint64_t m_data_offset = 0;
  std::uint64_t m_root_offset = 0;
  std::uint64_t m_root_bytes = 0;
  std::uint32_t m_root_cluster = 0;
  std::vector<unsigned char> m_fat;
  std::set<std::uint32_t> m_seen;
  FatTimesReport m_report;
};

} // namespace

FatTime
fat_time(std::int64_t epoch)
{
  constexpr std::int64_t k_1980 = 315532800; // 1980-01-01T00:00:00Z
  constexpr std::int64_t k_2108 = 4354819200; // 2108-01-01T00:00:00Z
  if (epoch < k_1980) {
    return {static_cast<std::uint16_t>((0 << 9) | (1 << 5) | 1), 0};
  }
  if (epoch >= k_2108) {
    return {static_cast<std::uint16_t>((127 << 9) | (12 << 5) | 31),
            static_cast<std::uint16_t>((23 << 11) | (59 << 5) | 29)};
  }
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  gmtime_r(&t, &tm);
  FatTime out;
  out.date = static_cast<std::uint16_t>(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
  out.time = static_cast<std::uint16_t>((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
  return out;
}

FatTimesReport
set_fat_times(const fs::path& image, std::int64_t epoch, const FatTimesLimits& limits)
{
  return Volume(image, limits, epoch).walk();
}

} // namespace kiln::fsimage
