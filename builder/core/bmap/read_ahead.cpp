#include "core/bmap/read_ahead.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <algorithm>

namespace kiln::bmap {

std::string
checksum_mismatch(const Bmap& bmap, const Range& range, const std::string& actual)
{
  std::uint64_t begin = bmap.offset_of(range);
  return "checksum mismatch in blocks " + range.text() + " (bytes " + std::to_string(begin) + "-" +
         std::to_string(begin + bmap.length_of(range) - 1) + "): the bmap records " + range.sha256 +
         ", the data hashes to " + actual;
}

ReadAhead::ReadAhead(const Bmap& bmap, std::function<void(char*, std::size_t)> next, std::string source,
                     std::size_t chunk_size, std::size_t depth)
  : m_bmap(bmap), m_source(std::move(source)), m_chunk_size(chunk_size)
{
  for (std::size_t i = 0; i < std::max<std::size_t>(depth, 2); ++i) {
    m_buffers.push_back(std::make_unique<char[]>(chunk_size));
    m_free.push_back(i);
  }
  m_thread = std::thread([this, next = std::move(next)] { run(next); });
}

ReadAhead::~ReadAhead()
{
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_changed.notify_all();
  m_thread.join();
}

void
ReadAhead::push(Item item)
{
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_ready.push_back(std::move(item));
  }
  m_changed.notify_all();
}

void
ReadAhead::run(const std::function<void(char*, std::size_t)>& next)
{
  try {
    for (const auto& range : m_bmap.ranges) {
      std::uint64_t offset = m_bmap.offset_of(range);
      std::uint64_t left = m_bmap.length_of(range);
      crypto::Sha256 hash;
      while (left > 0) {
        util::check_interrupted();
        std::size_t buffer = 0;
        {
          std::unique_lock<std::mutex> lock(m_mutex);
          m_changed.wait(lock, [&] { return m_stop || !m_free.empty(); });
          if (m_stop) {
            return;
          }
          buffer = m_free.front();
          m_free.pop_front();
        }
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, m_chunk_size));
        char* data = m_buffers[buffer].get();
        next(data, n);
        hash.update(data, n);
        push({{offset, data, n}, buffer, nullptr, false});
        offset += n;
        left -= n;
      }
      std::string actual = hash.hex_digest();
      if (actual != range.sha256) {
        throw Error(m_source, checksum_mismatch(m_bmap, range, actual));
      }
    }
    push({{}, 0, nullptr, true});
  } catch (...) {
    push({{}, 0, std::current_exception(), false});
  }
}

std::optional<ReadAhead::Chunk>
ReadAhead::next()
{
  Item item;
  {
    std::unique_lock<std::mutex> lock(m_mutex);
    if (m_held) {
      m_free.push_back(*m_held);
      m_held.reset();
      m_changed.notify_all();
    }
    m_changed.wait(lock, [&] { return !m_ready.empty(); });
    item = m_ready.front();
    if (!item.error && !item.end) { // the end and an error stay: every later call sees them too
      m_ready.pop_front();
      m_held = item.buffer;
    }
  }
  if (item.error) {
    std::rethrow_exception(item.error);
  }
  if (item.end) {
    return std::nullopt;
  }
  return item.chunk;
}

} // namespace kiln::bmap
