#include "image/formats/stable_ids.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/bytes.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace kiln::formats {

using util::le64;

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_sector = 512;
// A descriptor larger than this is no qemu-written one (qemu writes 20 sectors at most).
constexpr std::uint64_t k_max_descriptor_sectors = 2048;
// Seconds from 1970-01-01 to 2000-01-01, the VHD epoch.
constexpr std::int64_t k_vhd_epoch = 946684800;

std::uint32_t
be32(const unsigned char* p)
{
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

void
put_be32(unsigned char* p, std::uint32_t v)
{
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

util::Fd
open_rw(const fs::path& path)
{
  util::Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    throw Error(path.string(), "cannot open: " + errno_text(errno));
  }
  return fd;
}

template <std::size_t N>
void
read_exact(int fd, std::array<unsigned char, N>& buffer, std::uint64_t offset, const fs::path& path)
{
  if (util::pread_full(fd, reinterpret_cast<char*>(buffer.data()), N, offset, path.string()) != N) {
    throw Error(path.string(), "too short for its format");
  }
}

// The VHD footer checksum: the one's complement of the sum of its bytes, the checksum
// field (bytes 64-67) counted as zero.
std::uint32_t
vhd_checksum(const std::array<unsigned char, k_sector>& footer)
{
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < footer.size(); ++i) {
    if (i < 64 || i >= 68) {
      sum += footer[i];
    }
  }
  return ~sum;
}

} // namespace

std::array<unsigned char, 32>
stable_bytes(const std::string& purpose, const std::string& identity)
{
  std::string hex = crypto::sha256_hex("kiln " + purpose + "\n" + identity);
  std::array<unsigned char, 32> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<unsigned char>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

std::array<unsigned char, 16>
stable_uuid(const std::string& purpose, const std::string& identity)
{
  std::array<unsigned char, 32> d = stable_bytes(purpose, identity);
  std::array<unsigned char, 16> id{};
  std::copy(d.begin(), d.begin() + 16, id.begin());
  id[6] = static_cast<unsigned char>((id[6] & 0x0f) | 0x50);
  id[8] = static_cast<unsigned char>((id[8] & 0x3f) | 0x80);
  return id;
}

std::string
vmdk_cid(const std::string& identity)
{
  std::array<unsigned char, 32> d = stable_bytes("vmdk cid", identity);
  std::uint32_t cid = be32(d.data());
  if (cid >= 0xfffffffeu) {
    cid = 0x7fffffffu;
  }
  char text[9];
  std::snprintf(text, sizeof text, "%08x", cid);
  return text;
}

std::string
canonical_vmdk_descriptor(const std::string& area, const std::string& identity)
{
  // The descriptor's text ends at its first NUL. qemu's vmdk_write_cid (block/vmdk.c,
  // 7.2) re-prints the CID at the first write into a text read back whole and writes the
  // whole area again: when the new CID ("%x") is shorter than the one vmdk_co_do_create
  // drew, the bytes past the new NUL still hold the old text's tail. Only the text is
  // kept; everything after it becomes zeros.
  const std::size_t used = area.find('\0');
  if (used == std::string::npos) {
    throw Error("VMDK descriptor", "its text fills its sectors (no NUL after it)");
  }
  std::string text = area.substr(0, used);
  if (text.rfind("# Disk DescriptorFile\n", 0) != 0) {
    throw Error("VMDK descriptor", "does not start with '# Disk DescriptorFile'");
  }
  if (text.find("\nparentFileNameHint=") != std::string::npos) {
    throw Error("VMDK descriptor", "names a parent image: a build's output has none");
  }
  // Replaces the value of the one line KEY=VALUE (VALUE 1 to 8 hex digits).
  auto set_hex = [&](const std::string& key, const std::string& value) {
    const std::string line = "\n" + key + "=";
    std::size_t at = text.find(line);
    if (at == std::string::npos || text.find(line, at + 1) != std::string::npos) {
      throw Error("VMDK descriptor", "without exactly one " + key + " line");
    }
    at += line.size();
    const std::size_t end = text.find('\n', at);
    if (end == std::string::npos || end == at || end - at > 8 ||
        text.substr(at, end - at).find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      throw Error("VMDK descriptor", key + " is not 1 to 8 hex digits");
    }
    text.replace(at, end - at, value);
  };
  set_hex("CID", vmdk_cid(identity));
  // No parent: qemu writes 0xffffffff, VMware's "none". Set, so no draw of qemu's could
  // ever show here either.
  set_hex("parentCID", "ffffffff");
  if (text.size() >= area.size()) {
    throw Error("VMDK descriptor", "has no room for its pinned text");
  }
  text.resize(area.size(), '\0');
  return text;
}

void
pin_vmdk(const fs::path& path, const std::string& identity)
{
  util::Fd fd = open_rw(path);
  std::array<unsigned char, k_sector> header{};
  read_exact(fd.get(), header, 0, path);
  if (std::memcmp(header.data(), "KDMV", 4) != 0) {
    throw Error(path.string(), "not a VMDK (no KDMV header)");
  }
  // Sparse extent header: magic 4, version 4, flags 4, capacity 8, grain size 8, then
  // the descriptor's offset and size, both in sectors.
  const std::uint64_t offset = le64(header.data() + 28);
  const std::uint64_t sectors = le64(header.data() + 36);
  if (offset == 0 || sectors == 0 || sectors > k_max_descriptor_sectors) {
    throw Error(path.string(), "VMDK without an embedded descriptor of a sane size");
  }
  std::string area(sectors * k_sector, '\0');
  if (util::pread_full(fd.get(), area.data(), area.size(), offset * k_sector, path.string()) != area.size()) {
    throw Error(path.string(), "VMDK descriptor cut short");
  }
  std::string pinned;
  try {
    pinned = canonical_vmdk_descriptor(area, identity);
  } catch (const Error& e) {
    throw Error(path.string(), e.reason());
  }
  util::pwrite_full(fd.get(), pinned.data(), pinned.size(), offset * k_sector, path.string());
  fd.close(path.string());
}

void
pin_vhd(const fs::path& path, const std::string& identity, std::optional<std::int64_t> epoch)
{
  util::Fd fd = open_rw(path);
  off_t end = ::lseek(fd.get(), 0, SEEK_END);
  if (end < static_cast<off_t>(k_sector)) {
    throw Error(path.string(), "too short for a VHD");
  }
  const std::uint64_t tail = static_cast<std::uint64_t>(end) - k_sector;
  std::array<unsigned char, k_sector> footer{};
  read_exact(fd.get(), footer, tail, path);
  if (std::memcmp(footer.data(), "conectix", 8) != 0 || be32(footer.data() + 64) != vhd_checksum(footer)) {
    throw Error(path.string(), "no valid VHD footer at its end");
  }
  const std::int64_t stamp = epoch ? std::max<std::int64_t>(*epoch - k_vhd_epoch, 0) : 0;
  if (stamp > 0xffffffffll) {
    throw Error(path.string(), "SOURCE_DATE_EPOCH " + std::to_string(*epoch) + " is past what a VHD time stamp holds");
  }
  put_be32(footer.data() + 24, static_cast<std::uint32_t>(stamp));
  std::array<unsigned char, 16> id = stable_uuid("vhd unique id", identity);
  std::memcpy(footer.data() + 68, id.data(), 16);
  put_be32(footer.data() + 64, vhd_checksum(footer));
  util::pwrite_full(fd.get(), reinterpret_cast<const char*>(footer.data()), footer.size(), tail, path.string());
  // A dynamic or differencing VHD (disk type 3 or 4) repeats the footer at offset 0; a
  // fixed one (2) has the disk's first sector there.
  const std::uint32_t type = be32(footer.data() + 60);
  if (type == 3 || type == 4) {
    util::pwrite_full(fd.get(), reinterpret_cast<const char*>(footer.data()), footer.size(), 0, path.string());
  }
  fd.close(path.string());
}

void
pin_output(const fs::path& file, const std::string& format, const std::string& identity,
           std::optional<std::int64_t> epoch)
{
  if (format == "vmdk") {
    pin_vmdk(file, identity);
  } else if (format == "vhd") {
    pin_vhd(file, identity, epoch);
  }
}

} // namespace kiln::formats
