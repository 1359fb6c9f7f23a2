// kiln's bmap 2.0 generator, parser and range copier, checked against the real
// bmaptool (bmap-tools): bmaptool must accept what kiln writes and reproduce the
// image, and both must refuse a bmap whose file checksum is wrong.
#include "core/bmap/bmap.hpp"
#include "core/bmap/copy.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <fcntl.h>
#include <thread>
#include <unistd.h>

namespace kiln {
namespace {

using test::error_of;
using test::ScratchDir;
namespace fs = std::filesystem;

constexpr std::uint64_t k_bs = 4096;
// Not a multiple of the block size: the last block (256) is 1000 bytes long.
constexpr std::uint64_t k_image_size = 256 * k_bs + 1000;

void
pwrite_text(const fs::path& path, std::uint64_t offset, const std::string& data)
{
  util::Fd fd = util::open_file(path, O_WRONLY);
  ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(data.size()));
}

// A sparse image: data in blocks 0-1, written zeros in 10-12, a few bytes in 20,
// a write straddling 30-31, and a tail in the short last block 256.
fs::path
make_image(const ScratchDir& dir)
{
  fs::path image = dir / "disk.img";
  util::Fd fd = util::open_file(image, O_WRONLY | O_CREAT | O_TRUNC);
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(k_image_size)), 0);
  fd.close(image.string());
  std::string head(2 * k_bs, 'A');
  for (size_t i = 0; i < head.size(); ++i) {
    head[i] = static_cast<char>('A' + i % 23);
  }
  pwrite_text(image, 0, head);
  pwrite_text(image, 10 * k_bs, std::string(3 * k_bs, '\0'));
  pwrite_text(image, 20 * k_bs + 100, "hello");
  pwrite_text(image, 30 * k_bs + 4000, std::string(200, 'x'));
  pwrite_text(image, k_image_size - 4, "tail");
  return image;
}

std::string
region_sha(const fs::path& file, std::uint64_t first, std::uint64_t last)
{
  std::string data = util::read_file(file);
  std::uint64_t begin = first * k_bs;
  std::uint64_t end = std::min<std::uint64_t>((last + 1) * k_bs, data.size());
  return crypto::sha256_hex(std::string_view(data).substr(begin, end - begin));
}

std::string
bmaptool()
{
  return test::require_program("bmaptool", "bmap-tools");
}

util::RunResult
bmaptool_copy(const fs::path& bmap, const fs::path& image, const fs::path& dest)
{
  return util::run({bmaptool(), "copy", "--bmap", bmap.string(), image.string(), dest.string()});
}

std::string
replace_once(std::string text, const std::string& from, const std::string& to)
{
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::uint64_t
copy_file(const bmap::Bmap& map, const fs::path& source, const fs::path& dest, const bmap::Progress& progress = {})
{
  util::Fd in = util::open_file(source, O_RDONLY);
  util::Fd out = util::open_file(dest, O_WRONLY | O_CREAT);
  return bmap::copy_mapped(map, {in.get(), source.string()}, {out.get(), dest.string()}, progress);
}

TEST(Bmap, GenerateSkipsHolesAndZeroBlocks)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  EXPECT_EQ(map.image_size, k_image_size);
  EXPECT_EQ(map.block_size, k_bs);
  EXPECT_EQ(map.blocks_count, 257u);
  ASSERT_EQ(map.ranges.size(), 4u);
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> expected = {{0, 1}, {20, 20}, {30, 31}, {256, 256}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(map.ranges[i].first, expected[i].first) << i;
    EXPECT_EQ(map.ranges[i].last, expected[i].second) << i;
    EXPECT_EQ(map.ranges[i].sha256, region_sha(image, expected[i].first, expected[i].second)) << i;
  }
  EXPECT_EQ(map.mapped_blocks_count, 6u);
  // The short last block is hashed over its 1000 bytes only.
  EXPECT_EQ(map.length_of(map.ranges.back()), 1000u);
  EXPECT_EQ(map.mapped_bytes(), 5 * k_bs + 1000);
}

TEST(Bmap, GenerateCanKeepZeroBlocksOfDataExtents)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image, {.skip_zero_blocks = false});
  ASSERT_EQ(map.ranges.size(), 5u);
  EXPECT_EQ(map.ranges[1].first, 10u);
  EXPECT_EQ(map.ranges[1].last, 12u);
  EXPECT_EQ(map.ranges[1].sha256, crypto::sha256_hex(std::string(3 * k_bs, '\0')));
  EXPECT_EQ(map.mapped_blocks_count, 9u);
}

TEST(Bmap, LongExtentsSpanReadBatches)
{
  // 768 data blocks (3 MiB, several 1 MiB read batches) with one zero block inside.
  ScratchDir dir;
  fs::path image = dir / "big.img";
  util::Fd fd = util::open_file(image, O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_EQ(::ftruncate(fd.get(), static_cast<off_t>(1280 * k_bs)), 0);
  fd.close(image.string());
  std::string data(768 * k_bs, '\0');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>(1 + (i * 7919) % 251);
  }
  std::fill_n(data.begin() + (500 - 10) * k_bs, k_bs, '\0');
  pwrite_text(image, 10 * k_bs, data);
  bmap::Bmap map = bmap::generate(image);
  ASSERT_EQ(map.ranges.size(), 2u);
  EXPECT_EQ(map.ranges[0].first, 10u);
  EXPECT_EQ(map.ranges[0].last, 499u);
  EXPECT_EQ(map.ranges[1].first, 501u);
  EXPECT_EQ(map.ranges[1].last, 777u);
  EXPECT_EQ(map.ranges[1].sha256, region_sha(image, 501, 777));

  fs::path map_path = dir / "big.bmap";
  bmap::write_bmap_file(image, map_path);
  util::RunResult r = bmaptool_copy(map_path, image, dir / "dest.img");
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(crypto::sha256_file(dir / "dest.img"), crypto::sha256_file(image));
}

TEST(Bmap, RenderedDocumentParsesBack)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap written = bmap::write_bmap_file(image, dir / "disk.bmap");
  EXPECT_TRUE(crypto::is_sha256_hex(written.file_checksum));
  bmap::Bmap read = bmap::read_bmap_file(dir / "disk.bmap");
  EXPECT_EQ(read.version, "2.0");
  EXPECT_EQ(read.image_size, written.image_size);
  EXPECT_EQ(read.blocks_count, written.blocks_count);
  EXPECT_EQ(read.mapped_blocks_count, written.mapped_blocks_count);
  EXPECT_EQ(read.ranges, written.ranges);
  EXPECT_EQ(read.file_checksum, written.file_checksum);
  std::string xml = test::read_text(dir / "disk.bmap");
  EXPECT_NE(xml.find("<BmapFileChecksum> " + written.file_checksum + " </BmapFileChecksum>"), std::string::npos);
  EXPECT_NE(xml.find("<Range chksum=\"" + written.ranges[2].sha256 + "\"> 30-31 </Range>"), std::string::npos);
  EXPECT_NE(xml.find("\"> 20 </Range>"), std::string::npos);
  // The file checksum is the digest of the document with the value zeroed.
  EXPECT_EQ(crypto::sha256_hex(replace_once(xml, written.file_checksum, std::string(64, '0'))), written.file_checksum);
}

TEST(Bmap, BmaptoolCopiesWhatKilnMaps)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  const std::string image_sha = crypto::sha256_file(image);
  for (bool skip_zero : {true, false}) {
    SCOPED_TRACE(skip_zero ? "skip zero blocks" : "keep zero blocks");
    fs::path map_path = dir / "disk.bmap";
    bmap::write_bmap_file(image, map_path, {.skip_zero_blocks = skip_zero});
    fs::path dest = dir / "dest.img";
    fs::remove(dest);
    util::RunResult r = bmaptool_copy(map_path, image, dest);
    ASSERT_TRUE(r.ok()) << r.out << r.err;
    EXPECT_EQ(fs::file_size(dest), k_image_size);
    EXPECT_EQ(crypto::sha256_file(dest), image_sha);
  }
}

TEST(Bmap, KilnCopyReproducesImage)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  fs::path dest = dir / "dest.img";
  test::write_text(dest, std::string(300 * k_bs, 'z')); // old content must not survive
  std::vector<std::uint64_t> seen;
  std::uint64_t written = copy_file(map, image, dest, [&](std::uint64_t done, std::uint64_t total) {
    EXPECT_EQ(total, map.mapped_bytes());
    seen.push_back(done);
  });
  EXPECT_EQ(written, map.mapped_bytes());
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.back(), map.mapped_bytes());
  EXPECT_EQ(crypto::sha256_file(dest), crypto::sha256_file(image));
}

TEST(Bmap, KilnCopyStreamsFromPipe)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  util::Fd read_end(fds[0]);
  util::Fd write_end(fds[1]);
  std::string data = util::read_file(image);
  std::thread feeder([&] {
    util::Fd out = std::move(write_end);
    try {
      util::write_all(out.get(), data, "pipe");
    } catch (const Error&) {
      // the reader stops after the last range; the rest of the stream is not needed
    }
  });
  fs::path dest = dir / "dest.img";
  util::Fd out = util::open_file(dest, O_WRONLY | O_CREAT);
  bmap::copy_mapped(map, {read_end.get(), "pipe"}, {out.get(), dest.string()});
  read_end = util::Fd();
  feeder.join();
  EXPECT_EQ(crypto::sha256_file(dest), crypto::sha256_file(image));
}

// The write engine against an in-memory sink: it compares before writing, zeroes the
// gaps, calls the half-way hook once, and reads everything back.
class MemorySink final : public bmap::BlockSink {
public:
  explicit MemorySink(std::string bytes) : data(std::move(bytes)) {}
  const std::string& name() const override { return m_name; }
  void pread_exact(char* buffer, std::size_t size, std::uint64_t offset) const override
  {
    std::memcpy(buffer, data.data() + offset, size);
    ++reads;
  }
  void pwrite_all(const char* buffer, std::size_t size, std::uint64_t offset) override
  {
    if (fail_at_write != 0 && ++writes_seen == fail_at_write) {
      throw Error(m_name, "write failed: Input/output error");
    }
    data.replace(offset, size, buffer, size);
    written_at.push_back(offset);
  }
  std::uint64_t ensure_zero(std::uint64_t offset, std::uint64_t size) override
  {
    data.replace(offset, size, std::string(size, '\0'));
    return size;
  }
  void sync() override { ++syncs; }
  bool begin_read_back() override
  {
    ++drops;
    return false;
  }
  std::string data;
  mutable std::atomic<int> reads = 0; // the read-back reads ranges side by side
  int syncs = 0;
  int drops = 0;
  std::vector<std::uint64_t> written_at; // the offset of every write, in order
  int fail_at_write = 0; // the nth write throws (0: none)
  int writes_seen = 0;

private:
  std::string m_name = "memory";
};

TEST(BmapEngine, ComparesZeroesGapsCallsTheHalfHookAndVerifies)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  const std::string bytes = util::read_file(image);
  MemorySink sink(std::string(bytes.size(), '\x55')); // old content everywhere
  util::Fd in = util::open_file(image, O_RDONLY);
  int halves = 0;
  bmap::WriteOptions options;
  options.source = image.string();
  options.at_half = [&](std::uint64_t done) {
    ++halves;
    EXPECT_GE(done * 2, map.mapped_bytes());
  };
  bmap::WriteStats first = bmap::write_mapped(map, sink, bmap::image_reader(map, {in.get(), image.string()}), options);
  EXPECT_EQ(sink.data, bytes); // mapped data written, every gap zeroed
  EXPECT_EQ(first.written, map.mapped_bytes());
  EXPECT_EQ(first.skipped, 0u);
  EXPECT_EQ(first.zeroed, bytes.size() - map.mapped_bytes());
  EXPECT_EQ(halves, 1);
  bmap::verify_mapped(map, sink);
  EXPECT_EQ(sink.drops, 1);

  // The same image again: every chunk compares equal, nothing is written.
  bmap::WriteStats again = bmap::write_mapped(map, sink, bmap::image_reader(map, {in.get(), image.string()}), options);
  EXPECT_EQ(again.written, 0u);
  EXPECT_EQ(again.skipped, map.mapped_bytes());

  // compare off: written straight, the sink never read.
  sink.reads = 0;
  options.compare = false;
  bmap::WriteStats straight =
    bmap::write_mapped(map, sink, bmap::image_reader(map, {in.get(), image.string()}), options);
  EXPECT_EQ(straight.written, map.mapped_bytes());
  EXPECT_EQ(sink.reads, 0);

  // What the sink holds is checked on read-back, range by range.
  sink.data[30 * k_bs + 4001] = 'z';
  Error e = error_of([&] { bmap::verify_mapped(map, sink); });
  EXPECT_EQ(e.subject(), "memory");
  EXPECT_TRUE(e.reason().starts_with("read-back verification failed in blocks 30-31: the device holds sha256 "))
    << e.reason();
}

TEST(Bmap, CopyDetectsFlippedByteAndNamesRange)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  fs::path bad = dir / "bad.img";
  fs::copy_file(image, bad);
  pwrite_text(bad, 31 * k_bs + 7, "y"); // inside the straddling write: blocks 30-31
  Error e = error_of([&] { copy_file(map, bad, dir / "dest.img"); });
  EXPECT_EQ(e.subject(), bad.string());
  EXPECT_TRUE(e.reason().starts_with("checksum mismatch in blocks 30-31 (bytes 122880-131071): the bmap records " +
                                     map.ranges[2].sha256 + ", the data hashes to "))
    << e.reason();
}

TEST(Bmap, CopyRefusesShortSource)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  fs::path shorter = dir / "short.img";
  fs::copy_file(image, shorter);
  fs::resize_file(shorter, 31 * k_bs);
  Error e = error_of([&] { copy_file(map, shorter, dir / "dest.img"); });
  EXPECT_EQ(e.reason(), "source ends at byte 126976, inside blocks 30-31");
}

TEST(Bmap, WrongFileChecksumIsRefusedByKilnAndBmaptool)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::write_bmap_file(image, dir / "good.bmap");
  std::string xml = test::read_text(dir / "good.bmap");

  // A wrong digest, and a changed range checksum under the original digest.
  std::string digest = map.file_checksum;
  digest[10] = digest[10] == 'a' ? 'b' : 'a';
  std::string other_range = map.ranges[0].sha256;
  other_range[0] = other_range[0] == '0' ? '1' : '0';
  const std::vector<std::string> bad_docs = {replace_once(xml, map.file_checksum, digest),
                                             replace_once(xml, map.ranges[0].sha256, other_range)};
  for (size_t i = 0; i < bad_docs.size(); ++i) {
    SCOPED_TRACE(i);
    fs::path path = dir / ("bad" + std::to_string(i) + ".bmap");
    test::write_text(path, bad_docs[i]);
    Error e = error_of([&] { bmap::read_bmap_file(path); });
    EXPECT_EQ(e.subject(), path.string());
    EXPECT_TRUE(e.reason().starts_with("BmapFileChecksum mismatch: the file hashes to ")) << e.reason();

    util::RunResult r = bmaptool_copy(path, image, dir / "dest.img");
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.err.find("checksum mismatch for bmap file"), std::string::npos) << r.err;
  }
}

TEST(Bmap, MissingElementsAreNamed)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::write_bmap_file(image, dir / "disk.bmap");
  std::string xml = test::read_text(dir / "disk.bmap");
  for (std::string name :
       {"ImageSize", "BlockSize", "BlocksCount", "MappedBlocksCount", "ChecksumType", "BmapFileChecksum", "BlockMap"}) {
    size_t begin = xml.find("<" + name + ">");
    std::string close = "</" + name + ">";
    size_t end = xml.find(close, begin);
    ASSERT_NE(end, std::string::npos) << name;
    std::string doc = xml.substr(0, begin) + xml.substr(end + close.size());
    Error e = error_of([&] { bmap::parse(doc, "x.bmap"); });
    EXPECT_EQ(e.what(), "x.bmap: missing <" + name + "> element");
  }
}

TEST(Bmap, InvalidDocumentsAreRefused)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::write_bmap_file(image, dir / "disk.bmap");
  const std::string xml = test::read_text(dir / "disk.bmap");
  const std::string r1 = "<Range chksum=\"" + map.ranges[0].sha256 + "\"> 0-1 </Range>";
  const std::vector<std::pair<std::string, std::string>> cases = {
    {"not xml at all", "invalid XML at line 1: no root element"},
    {replace_once(xml, "</bmap>", ""), "invalid XML at line 21: element <bmap> is not closed"},
    {replace_once(xml, "version=\"2.0\"", "version=\"1.3\""), "bmap version 1.3 is not supported (kiln reads 2.x)"},
    {replace_once(xml, "<BlocksCount> 257 <", "<BlocksCount> 256 <"),
     "inconsistent bmap: BlocksCount is 256 but ImageSize 1049576 needs 257 blocks of 4096 bytes"},
    {replace_once(xml, "<MappedBlocksCount> 6 <", "<MappedBlocksCount> 7 <"),
     "inconsistent bmap: MappedBlocksCount is 7 but the ranges cover 6 blocks"},
    {replace_once(xml, "<ImageSize> ", "<ImageSize> -"), "<ImageSize> is not a non-negative integer: \"-1049576\""},
    {replace_once(xml, "<ChecksumType> sha256 <", "<ChecksumType> sha512 <"),
     "ChecksumType sha512 is not supported (kiln verifies sha256 only)"},
    {replace_once(xml, "<BlockSize>", "<BlockSize> 1 </BlockSize><BlockSize>"),
     "duplicate <BlockSize> element (line 8)"},
    {replace_once(xml, "> 256 </Range>", "> 256-257 </Range>"),
     "Range 4 (blocks 256-257) reaches past the image's 257 blocks"},
    {replace_once(xml, "> 20 </Range>", "> 1-20 </Range>"),
     "Range 2 (blocks 1-20) overlaps or precedes the range before it"},
    {replace_once(xml, "> 20 </Range>", "> 21-20 </Range>"), "Range 2 (blocks 21-20): first block after last block"},
    {replace_once(xml, "> 20 </Range>", "> x </Range>"), "Range 2 (line 16): bad block range \"x\""},
    {replace_once(xml, r1, "<Range> 0-1 </Range>"),
     "Range 1 (blocks 0-1) has no chksum attribute (kiln verifies every range)"},
    {replace_once(xml, "<Range chksum", "<Range size=\"1\" chksum"), "Range 1 (blocks 0-1): unknown attribute size"},
    {replace_once(xml, "</BlockMap>", "<Extra/></BlockMap>"), "unexpected <Extra> in <BlockMap> (line 19)"},
  };
  for (const auto& [doc, reason] : cases) {
    Error e = error_of([&] { bmap::parse(doc, "x.bmap"); });
    EXPECT_EQ(e.subject(), "x.bmap");
    EXPECT_EQ(e.reason(), reason);
  }
}

// An image of `mib` MiB in DIR/image.raw, every block mapped with bytes that differ
// block to block, its bmap, and a sink holding other bytes of the same size.
struct Patterned {
  Patterned(const ScratchDir& dir, std::size_t mib) : bytes(mib << 20, '\0')
  {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>('a' + (i / 4096 + i) % 26);
    }
    test::write_text(dir / "image.raw", bytes);
    map = bmap::generate(dir / "image.raw");
  }
  MemorySink dirty_sink() const { return MemorySink(std::string(bytes.size(), '\x55')); }
  static bmap::WriteOptions straight()
  {
    bmap::WriteOptions options;
    options.compare = false;
    return options;
  }
  std::string bytes;
  bmap::Bmap map;
};

// A reader over `bytes` (the mapped data back to back) that counts its calls.
bmap::Reader
memory_reader(const std::string& bytes, std::atomic<int>& calls)
{
  auto at = std::make_shared<std::size_t>(0);
  return [&bytes, &calls, at](char* buffer, std::size_t size) {
    ++calls;
    if (*at + size > bytes.size()) {
      throw Error("memory source", "ends early");
    }
    std::memcpy(buffer, bytes.data() + *at, size);
    *at += size;
  };
}

TEST(BmapEngine, AResumeNeitherReadsNorWritesTheJournalledBytesButStillHashesThem)
{
  ScratchDir dir;
  const Patterned p(dir, 8);
  const std::string& image = p.bytes;
  const bmap::Bmap& map = p.map;
  ASSERT_EQ(map.mapped_bytes(), image.size());
  // An interrupted write left the first 3 MiB and a little more; the rest is old bytes.
  const std::uint64_t journalled = (3u << 20) + 100;
  MemorySink sink(image.substr(0, journalled) + std::string(image.size() - journalled, '\x55'));
  std::atomic<int> calls = 0;
  bmap::WriteOptions options = Patterned::straight();
  options.resume_from = journalled;
  bmap::WriteStats stats = bmap::write_mapped(map, sink, memory_reader(image, calls), options);
  EXPECT_EQ(sink.data, image);
  EXPECT_EQ(sink.reads, 0);
  EXPECT_EQ(calls.load(), 8); // every chunk read and hashed, the journalled ones too
  // Only whole chunks inside the journal are skipped: the one it ends in is written again.
  EXPECT_EQ(stats.skipped, 3u << 20);
  EXPECT_EQ(stats.written, 5u << 20);
  ASSERT_FALSE(sink.written_at.empty());
  EXPECT_EQ(sink.written_at.front(), 3u << 20);

  // A journal whose bytes are not what the source hashes to is caught by the read-back.
  MemorySink stale = p.dirty_sink();
  bmap::write_mapped(map, stale, memory_reader(image, calls), options);
  Error e = error_of([&] { bmap::verify_mapped(map, stale); });
  EXPECT_TRUE(e.reason().starts_with("read-back verification failed")) << e.reason();
}

TEST(BmapEngine, CheckpointsComeAfterASyncWithTheBytesThatAreOnTheSink)
{
  ScratchDir dir;
  const Patterned p(dir, 8);
  const std::string& image = p.bytes;
  MemorySink sink = p.dirty_sink();
  std::atomic<int> calls = 0;
  std::vector<std::uint64_t> points;
  bmap::WriteOptions options = Patterned::straight();
  options.checkpoint_every = 3u << 20;
  options.checkpoint = [&](std::uint64_t done) {
    points.push_back(done);
    EXPECT_EQ(sink.syncs, static_cast<int>(points.size())); // synced before each
    EXPECT_TRUE(sink.data.compare(0, done, image, 0, done) == 0); // and all of it there
  };
  bmap::write_mapped(p.map, sink, memory_reader(image, calls), options);
  // Every 3 MiB, not at the end (the caller records the whole write after its own sync).
  EXPECT_EQ(points, (std::vector<std::uint64_t>{3u << 20, 6u << 20}));
}

TEST(BmapEngine, TheReaderRunsAheadYetAMismatchIsThrownAfterTheRangesBeforeIt)
{
  ScratchDir dir;
  fs::path image = make_image(dir);
  bmap::Bmap map = bmap::generate(image);
  std::string mapped;
  for (const auto& r : map.ranges) {
    mapped += util::read_file(image).substr(map.offset_of(r), map.length_of(r));
  }
  // The source differs from the bmap in the range of blocks 20-20.
  const auto bad = std::find_if(map.ranges.begin(), map.ranges.end(), [](const auto& r) { return r.first == 20; });
  ASSERT_NE(bad, map.ranges.end());
  std::uint64_t at = 0;
  for (auto r = map.ranges.begin(); r != bad; ++r) {
    at += map.length_of(*r);
  }
  std::string corrupt = mapped;
  corrupt[at + 7] ^= 1;
  MemorySink sink(std::string(k_image_size, '\x55'));
  std::atomic<int> calls = 0;
  bmap::WriteOptions options;
  options.compare = false;
  options.source = "bundle";
  Error e = error_of([&] { bmap::write_mapped(map, sink, memory_reader(corrupt, calls), options); });
  EXPECT_EQ(e.subject(), "bundle");
  EXPECT_TRUE(e.reason().starts_with("checksum mismatch in blocks 20 ")) << e.reason();
  // The ranges before it and the bad one itself were written; nothing after it.
  EXPECT_EQ(sink.written_at.back(), map.offset_of(*bad));
  EXPECT_EQ(sink.data.substr(0, 2 * k_bs), util::read_file(image).substr(0, 2 * k_bs));
}

TEST(BmapEngine, AFailedWriteStopsTheReaderAndAShortSourceIsNamed)
{
  ScratchDir dir;
  const Patterned p(dir, 32);
  const std::string& image = p.bytes;
  const bmap::Bmap& map = p.map;
  MemorySink sink = p.dirty_sink();
  sink.fail_at_write = 3;
  std::atomic<int> calls = 0;
  bmap::WriteOptions options = Patterned::straight();
  Error e = error_of([&] { bmap::write_mapped(map, sink, memory_reader(image, calls), options); });
  EXPECT_EQ(e.reason(), "write failed: Input/output error");
  // The reader stopped a few chunks ahead, not at the end of the 32.
  EXPECT_LT(calls.load(), 16);

  // A source that ends early: its error, where the stream reached it.
  const std::string half = image.substr(0, 5u << 20);
  MemorySink other = p.dirty_sink();
  e = error_of([&] { bmap::write_mapped(map, other, memory_reader(half, calls), options); });
  EXPECT_EQ(e.subject(), "memory source");
  EXPECT_EQ(other.written_at.size(), 5u);
}

} // namespace
} // namespace kiln
