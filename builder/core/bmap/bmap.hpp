// Block maps in the bmap 2.0 format of bmaptool: which 4 KiB blocks of a sparse raw
// image hold data, with a SHA-256 per range, so a writer copies only those blocks
// and verifies them on the way.
//
// Generation walks the image's data extents with SEEK_DATA/SEEK_HOLE (the whole
// file counts as data where the file system cannot tell) and, by default, also
// drops blocks inside data extents that are entirely zero: kiln's images are
// sparse, and a zero block need not be written when the destination is sparse or
// pre-zeroed. Extent edges are widened to whole blocks; runs of consecutive mapped
// blocks become one Range, hashed over its bytes clipped at ImageSize (the last
// block of an image whose size is not a multiple of 4096 is short).
//
// BmapFileChecksum is the SHA-256 of the whole bmap file as it reads with that
// element's value replaced by 64 ASCII '0's. The writer renders the file with the
// zeros, hashes it and substitutes the digest (same length, nothing else moves);
// the reader zeroes the value's bytes in a copy and compares.
//
// The parser reads only the XML this schema needs (declaration, comments,
// elements, attributes, text, the five predefined entities) and refuses anything
// else (DOCTYPE, CDATA, processing instructions after the declaration) rather
// than guessing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::bmap {

namespace fs = std::filesystem;

inline constexpr std::uint64_t k_block_size = 4096;

// Inclusive block numbers and the SHA-256 (lower-case hex) of their bytes.
struct Range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::string sha256;

  std::uint64_t blocks() const noexcept { return last - first + 1; }
  // "FIRST-LAST", or "FIRST" for a one-block range: how errors name it.
  std::string text() const;
  bool operator==(const Range&) const = default;
};

struct Bmap {
  std::string version = "2.0";
  std::uint64_t image_size = 0;
  std::uint64_t block_size = k_block_size;
  std::uint64_t blocks_count = 0;
  std::uint64_t mapped_blocks_count = 0;
  std::string checksum_type = "sha256";
  std::string file_checksum; // BmapFileChecksum; empty until rendered or parsed
  std::vector<Range> ranges; // ascending, disjoint

  // Byte offset of `range` in the image and its length clipped at image_size.
  std::uint64_t offset_of(const Range& range) const noexcept { return range.first * block_size; }
  std::uint64_t length_of(const Range& range) const noexcept;
  // Bytes covered by all ranges (clipped at image_size).
  std::uint64_t mapped_bytes() const noexcept;
};

struct GenerateOptions {
  // Leave all-zero blocks inside data extents out of the map.
  bool skip_zero_blocks = true;
};

// Maps the image at `image` (see the file comment). Throws Error(image, reason).
Bmap generate(const fs::path& image, const GenerateOptions& options = {});

// The bmap 2.0 XML document for `bmap`, with BmapFileChecksum computed; the
// model's file_checksum is ignored.
std::string render(const Bmap& bmap);

// generate() + render(), published atomically at `bmap_path`; returns the model
// with file_checksum set.
Bmap write_bmap_file(const fs::path& image, const fs::path& bmap_path, const GenerateOptions& options = {});

// Parses and validates a bmap 2.x document, including BmapFileChecksum and every
// Range's chksum attribute (required here, since kiln verifies every range).
// Errors are Error(subject, reason).
Bmap parse(std::string_view xml, const std::string& subject);

// parse() of the file at `path`; errors name the path.
Bmap read_bmap_file(const fs::path& path);

} // namespace kiln::bmap
