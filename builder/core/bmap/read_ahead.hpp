// The mapped data of a bmap, read from its source and hashed on a thread of its own, a
// few chunks ahead of the writer: reading (a file, a decompressing archive, a download)
// and hashing overlap with the writes instead of taking turns with them. Every range's
// digest is checked against the bmap as its last chunk passes.
#pragma once

#include "core/bmap/bmap.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kiln::bmap {

class ReadAhead {
public:
  struct Chunk {
    std::uint64_t offset = 0; // in the image
    const char* data = nullptr;
    std::size_t size = 0;
  };

  // Starts reading: `next` fills a buffer with the next bytes of the mapped data, ranges
  // back to back in bmap order (it runs on the reader thread only). `source` names the
  // data in a checksum mismatch. `bmap` must outlive this.
  ReadAhead(const Bmap& bmap, std::function<void(char*, std::size_t)> next, std::string source, std::size_t chunk_size,
            std::size_t depth);
  // Stops the reader (after the read it is in) and waits for it.
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next chunk in bmap order, valid until the next call; nullopt after the last.
  // The reader's error (a short source, a failed read, a range whose digest differs
  // from the bmap's, an interrupt) is thrown here, where the stream reached it: after
  // the chunks before it.
  std::optional<Chunk> next();

private:
  struct Item {
    Chunk chunk;
    std::size_t buffer = 0;
    std::exception_ptr error;
    bool end = false;
  };
  void run(const std::function<void(char*, std::size_t)>& next);
  void push(Item item);

  const Bmap& m_bmap;
  std::string m_source;
  std::size_t m_chunk_size;
  std::vector<std::unique_ptr<char[]>> m_buffers;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::deque<Item> m_ready;
  std::deque<std::size_t> m_free;
  std::optional<std::size_t> m_held; // the buffer the caller holds
  bool m_stop = false;
  std::thread m_thread; // last: starts once everything above exists
};

// "checksum mismatch in blocks A-B (bytes X-Y): the bmap records S, the data hashes to D"
std::string checksum_mismatch(const Bmap& bmap, const Range& range, const std::string& actual);

} // namespace kiln::bmap
