// kiln's one write engine for bmap-described data: the mapped ranges streamed to a
// block sink, each range hashed against the bmap as it passes, unmapped blocks made
// zero, and a read-back verification. kiln-node's reimage and install write partitions
// and disks through it (node::PartitionIo is a BlockSink); copy_mapped is the same
// engine from an image file or a pipe to a file or a block device.
#pragma once

#include "core/bmap/bmap.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kiln::bmap {

// Where the engine writes: positioned reads and writes within one device or file.
class BlockSink {
public:
  virtual ~BlockSink() = default;
  virtual const std::string& name() const = 0; // for errors
  // Safe to call from several threads at once (verify_mapped reads ranges side by side).
  virtual void pread_exact(char* buffer, std::size_t size, std::uint64_t offset) const = 0;
  virtual void pwrite_all(const char* buffer, std::size_t size, std::uint64_t offset) = 0;
  // Makes [offset, offset+size) read as zeros; returns the bytes it zeroed.
  virtual std::uint64_t ensure_zero(std::uint64_t offset, std::uint64_t size) = 0;
  virtual void sync() = 0;
  // A hint: start reading a range now.
  virtual void prefetch(std::uint64_t /*offset*/, std::uint64_t /*size*/) {}
  // Before a read-back (after sync): from now on reads come from the device, not the
  // page cache. Returns whether they bypass it (O_DIRECT) rather than find it emptied.
  virtual bool begin_read_back() { return false; }
};

// Called with the mapped bytes done so far and bmap.mapped_bytes().
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;
// Fills the buffer with the next bytes of the mapped data, ranges back to back in bmap
// order (a bundle's packed data, or an image read range by range); throws when short.
using Reader = std::function<void(char* buffer, std::size_t size)>;

struct WriteOptions {
  // Reads what the sink holds first and writes only chunks that differ (a rewrite of the
  // image the sink already holds); else writes straight.
  bool compare = true;
  // Mapped bytes (counted in bmap order) an interrupted write of the same data put on
  // the sink and synced: read from the source and hashed, but neither read from the
  // sink nor written (nor their gaps zeroed again). The read-back finds any that differ.
  std::uint64_t resume_from = 0;
  // Unmapped blocks inside ImageSize: made zero (ensure_zero), or left as they are.
  bool zero_gaps = true;
  Progress progress;
  // Every `checkpoint_every` mapped bytes (0: never) the sink is synced and `checkpoint`
  // told how many mapped bytes are now on it (a resume journal).
  std::uint64_t checkpoint_every = 0;
  std::function<void(std::uint64_t done)> checkpoint;
  // Called once when half of the mapped bytes are through, with the bytes done
  // (kiln-node's fault hook).
  std::function<void(std::uint64_t done)> at_half;
  std::string source; // names the data in a checksum mismatch
  // Each chunk of mapped data once written (or skipped), in bmap order, on the calling
  // thread (a bundle's whole-data digest).
  std::function<void(const char* data, std::size_t size)> consumed;
};

struct WriteStats {
  std::uint64_t written = 0; // bytes written
  std::uint64_t skipped = 0; // bytes already equal (compare) or already written (resume_from)
  std::uint64_t zeroed = 0; // bytes of gaps made zero
  bool direct_read_back = false; // the read-back bypassed the page cache (O_DIRECT)
};

// Streams the mapped ranges from `next` to the same offsets of `sink`. `next` runs on a
// reader thread of its own, a few chunks ahead of the writes (reading and hashing the
// source overlap with writing); everything else, the sink and the callbacks, on the
// calling thread. A range whose data does not hash to the bmap's digest throws
// Error(source, "checksum mismatch in blocks A-B (bytes X-Y): the bmap records S, the
// data hashes to D") once the range is written; the sink then holds unverified data.
WriteStats write_mapped(const Bmap& bmap, BlockSink& sink, const Reader& next, const WriteOptions& options);

// Reads every mapped range back from the sink (its cache dropped first) and compares it
// with the bmap, ranges side by side on every processor (pread_exact must allow that);
// a difference throws Error(sink, "read-back verification failed in blocks A-B ...")
// naming a range that differs.
void verify_mapped(const Bmap& bmap, BlockSink& sink);
// The same read-back, with the difference returned instead of thrown (nullopt: every
// range matches). Failed reads and interrupts still throw.
std::optional<std::string> read_back(const Bmap& bmap, BlockSink& sink);

// Makes every unmapped block inside ImageSize read as zeros (ensure_zero on each gap);
// returns the bytes zeroed.
std::uint64_t zero_unmapped(const Bmap& bmap, BlockSink& sink);

// One side of a copy: a file descriptor and the name errors use for it.
struct Endpoint {
  int fd = -1;
  std::string name;
};

// A Reader over an image: its mapped ranges read with pread (a seekable file) or front
// to back, unmapped bytes dropped (a pipe). An early end is an Error naming the range.
// It refers to `bmap`, which must outlive it.
Reader image_reader(const Bmap& bmap, const Endpoint& source);

// Copies the mapped ranges of the image `source` to the same offsets of `dest` through
// the engine (no comparison). A regular-file dest is emptied and sized to ImageSize, so
// unmapped blocks read as zeros; a block device must be large enough and keeps its old
// content in unmapped blocks. dest is fsynced at the end. Returns the bytes written.
std::uint64_t copy_mapped(const Bmap& bmap, const Endpoint& source, const Endpoint& dest,
                          const Progress& progress = {});

} // namespace kiln::bmap
