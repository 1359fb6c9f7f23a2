#include "core/bmap/copy.hpp"

#include "core/bmap/read_ahead.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/parallel.hpp"
#include "core/util/term.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <cerrno>
#include <cstring>
#include <linux/fs.h>
#include <memory>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kiln::bmap {

namespace {

constexpr std::size_t k_chunk = 1 << 20;
// Chunks the reader may be ahead of the writes.
constexpr std::size_t k_depth = 8;

// A BlockSink over a file descriptor (a regular file or a block device) for copy_mapped.
class FdSink final : public BlockSink {
public:
  FdSink(int fd, std::string name) : m_fd(fd), m_name(std::move(name)) {}
  const std::string& name() const override { return m_name; }
  void pread_exact(char* buffer, std::size_t size, std::uint64_t offset) const override
  {
    if (util::pread_full(m_fd, buffer, size, offset, m_name) != size) {
      throw Error(m_name, "ends before byte " + std::to_string(offset + size));
    }
  }
  void pwrite_all(const char* data, std::size_t size, std::uint64_t offset) override
  {
    util::pwrite_full(m_fd, data, size, offset, m_name);
  }
  std::uint64_t ensure_zero(std::uint64_t, std::uint64_t) override { return 0; } // copy_mapped: zero_gaps off
  void sync() override
  {
    if (::fsync(m_fd) != 0) {
      throw Error(m_name, "fsync failed: " + errno_text(errno));
    }
  }

private:
  int m_fd;
  std::string m_name;
};

} // namespace

WriteStats
write_mapped(const Bmap& bmap, BlockSink& sink, const Reader& next, const WriteOptions& options)
{
  WriteStats stats;
  std::vector<char> have(options.compare ? k_chunk : 0);
  const std::uint64_t total = bmap.mapped_bytes();
  std::uint64_t done = 0; // mapped bytes through, in bmap order
  std::uint64_t gap_start = 0; // the end of the data before the next chunk
  std::uint64_t next_checkpoint = options.checkpoint_every;
  bool half_pending = static_cast<bool>(options.at_half);
  ReadAhead data(bmap, next, options.source, k_chunk, k_depth);
  while (std::optional<ReadAhead::Chunk> c = data.next()) {
    util::check_interrupted();
    // Already on the sink: journalled by an interrupted write of the same data.
    const bool resumed = done + c->size <= options.resume_from;
    if (options.zero_gaps && c->offset > gap_start && !resumed) {
      stats.zeroed += sink.ensure_zero(gap_start, c->offset - gap_start);
    }
    gap_start = c->offset + c->size;
    bool same = resumed;
    if (!resumed && options.compare) {
      // The sink's next chunks are read ahead while this one is compared and written.
      const std::uint64_t ahead = std::min<std::uint64_t>(c->offset + c->size, bmap.image_size);
      sink.prefetch(ahead, std::min<std::uint64_t>(k_chunk * k_depth, bmap.image_size - ahead));
      sink.pread_exact(have.data(), c->size, c->offset);
      same = std::memcmp(have.data(), c->data, c->size) == 0;
    }
    if (same) {
      stats.skipped += c->size;
    } else {
      sink.pwrite_all(c->data, c->size, c->offset);
      stats.written += c->size;
    }
    if (options.consumed) {
      options.consumed(c->data, c->size);
    }
    done += c->size;
    if (options.progress) {
      options.progress(done, total);
    }
    if (options.checkpoint && next_checkpoint != 0 && done >= next_checkpoint && done < total) {
      sink.sync();
      options.checkpoint(done);
      next_checkpoint = (done / options.checkpoint_every + 1) * options.checkpoint_every;
    }
    if (half_pending && done * 2 >= total) {
      half_pending = false;
      options.at_half(done);
    }
  }
  if (options.zero_gaps && bmap.image_size > gap_start) {
    stats.zeroed += sink.ensure_zero(gap_start, bmap.image_size - gap_start);
  }
  return stats;
}

void
verify_mapped(const Bmap& bmap, BlockSink& sink)
{
  if (std::optional<std::string> differs = read_back(bmap, sink)) {
    throw Error(sink.name(), *differs);
  }
}

std::optional<std::string>
read_back(const Bmap& bmap, BlockSink& sink)
{
  sink.begin_read_back();
  // Hashing is the cost: the ranges are read and hashed on every processor, the longest
  // first so that no long one is left for last.
  std::vector<const Range*> order;
  for (const auto& range : bmap.ranges) {
    order.push_back(&range);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](const Range* a, const Range* b) { return bmap.length_of(*a) > bmap.length_of(*b); });
  std::mutex mutex;
  std::optional<std::string> differs;
  std::atomic<bool> stop = false;
  util::parallel_for(order.size(), 0, [&](std::size_t i) {
    if (stop) {
      return;
    }
    const Range& range = *order[i];
    util::AlignedBuffer buffer(k_chunk); // O_DIRECT reads need aligned memory
    std::uint64_t offset = bmap.offset_of(range);
    std::uint64_t left = bmap.length_of(range);
    crypto::Sha256 hash;
    while (left > 0) {
      util::check_interrupted();
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, k_chunk));
      sink.pread_exact(buffer.data(), n, offset);
      hash.update(buffer.data(), n);
      offset += n;
      left -= n;
    }
    std::string digest = hash.hex_digest();
    if (digest != range.sha256) {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
      if (!differs) {
        differs = "read-back verification failed in blocks " + range.text() + ": the device holds sha256 " + digest +
                  ", the bmap says " + range.sha256;
      }
    }
  });
  return differs;
}

std::uint64_t
zero_unmapped(const Bmap& bmap, BlockSink& sink)
{
  std::uint64_t zeroed = 0;
  std::uint64_t gap_start = 0;
  for (const auto& range : bmap.ranges) {
    const std::uint64_t offset = bmap.offset_of(range);
    if (offset > gap_start) {
      zeroed += sink.ensure_zero(gap_start, offset - gap_start);
    }
    gap_start = offset + bmap.length_of(range);
  }
  if (bmap.image_size > gap_start) {
    zeroed += sink.ensure_zero(gap_start, bmap.image_size - gap_start);
  }
  return zeroed;
}

Reader
image_reader(const Bmap& bmap, const Endpoint& source)
{
  // Where the reader stands: the range it is in, the offset within the image, and (for
  // a pipe) the stream position.
  struct State {
    std::size_t range = 0;
    std::uint64_t at = 0;
    std::uint64_t position = 0;
    bool seekable = false;
    std::vector<char> skip;
  };
  auto state = std::make_shared<State>();
  state->seekable = ::lseek(source.fd, 0, SEEK_CUR) >= 0;
  if (!bmap.ranges.empty()) {
    state->at = bmap.offset_of(bmap.ranges.front());
  }
  return [&bmap, source, state](char* buffer, std::size_t size) {
    State& s = *state;
    while (size > 0) {
      if (s.range >= bmap.ranges.size()) {
        throw Error(source.name, "read past the last mapped range");
      }
      const Range& range = bmap.ranges[s.range];
      const std::uint64_t end = bmap.offset_of(range) + bmap.length_of(range);
      auto fail = [&](ssize_t n, std::uint64_t byte) {
        throw Error(source.name, n == 0
                                   ? "source ends at byte " + std::to_string(byte) + ", inside blocks " + range.text()
                                   : "read failed in blocks " + range.text() + ": " + errno_text(errno));
      };
      if (!s.seekable) {
        while (s.position < s.at) { // a pipe: read and drop the unmapped bytes
          s.skip.resize(k_chunk);
          std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(s.at - s.position, k_chunk));
          ssize_t n = ::read(source.fd, s.skip.data(), want);
          if (n < 0 && errno == EINTR) {
            continue;
          }
          if (n <= 0) {
            fail(n, s.position);
          }
          s.position += static_cast<std::uint64_t>(n);
        }
      }
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(end - s.at, size));
      ssize_t n =
        s.seekable ? ::pread(source.fd, buffer, want, static_cast<off_t>(s.at)) : ::read(source.fd, buffer, want);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        fail(n, s.seekable ? s.at : s.position);
      }
      auto got = static_cast<std::size_t>(n);
      buffer += got;
      size -= got;
      s.at += got;
      s.position += s.seekable ? 0 : got;
      if (s.at == end && ++s.range < bmap.ranges.size()) {
        s.at = bmap.offset_of(bmap.ranges[s.range]);
      }
    }
  };
}

std::uint64_t
copy_mapped(const Bmap& bmap, const Endpoint& source, const Endpoint& dest, const Progress& progress)
{
  struct stat st {};
  if (::fstat(dest.fd, &st) != 0) {
    throw Error(dest.name, "stat failed: " + errno_text(errno));
  }
  if (S_ISREG(st.st_mode)) {
    if (::ftruncate(dest.fd, 0) != 0 || ::ftruncate(dest.fd, static_cast<off_t>(bmap.image_size)) != 0) {
      throw Error(dest.name, "cannot size to " + std::to_string(bmap.image_size) + " bytes: " + errno_text(errno));
    }
  } else if (S_ISBLK(st.st_mode)) {
    std::uint64_t device_size = 0;
    if (::ioctl(dest.fd, BLKGETSIZE64, &device_size) != 0) {
      throw Error(dest.name, "cannot read the device size: " + errno_text(errno));
    }
    if (device_size < bmap.image_size) {
      throw Error(dest.name, "device has " + std::to_string(device_size) + " bytes, the image needs " +
                               std::to_string(bmap.image_size));
    }
  } else {
    throw Error(dest.name, "destination must be a regular file or a block device");
  }
  FdSink sink(dest.fd, dest.name);
  WriteOptions options;
  options.compare = false;
  options.zero_gaps = false;
  options.progress = progress;
  options.source = source.name;
  WriteStats stats = write_mapped(bmap, sink, image_reader(bmap, source), options);
  sink.sync();
  return stats.written;
}

} // namespace kiln::bmap
