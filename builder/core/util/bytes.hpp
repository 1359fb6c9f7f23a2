// Little-endian integers in byte buffers, as on-disk formats store them (GPT, FAT, vmdk):
// read from and written to unaligned bytes, whatever the host's byte order.
#pragma once

#include <cstdint>

namespace kiln::util {

inline std::uint16_t
le16(const unsigned char* p)
{
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

inline std::uint32_t
le32(const unsigned char* p)
{
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

inline std::uint64_t
le64(const unsigned char* p)
{
  return static_cast<std::uint64_t>(le32(p)) | static_cast<std::uint64_t>(le32(p + 4)) << 32;
}

inline void
put16(unsigned char* p, std::uint16_t v)
{
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}

inline void
put32(unsigned char* p, std::uint32_t v)
{
  for (int i = 0; i < 4; ++i) {
    p[i] = static_cast<unsigned char>(v >> (8 * i));
  }
}

inline void
put64(unsigned char* p, std::uint64_t v)
{
  put32(p, static_cast<std::uint32_t>(v));
  put32(p + 4, static_cast<std::uint32_t>(v >> 32));
}

} // namespace kiln::util
