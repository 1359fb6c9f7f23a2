#include "core/node/write_journal.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <cerrno>
#include <charconv>
#include <unistd.h>

namespace kiln::node {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_header = "kiln-write 1\n";
constexpr std::uint64_t k_max_journal = 512;

} // namespace

const char*
write_mode_name(WriteMode mode)
{
  switch (mode) {
    case WriteMode::compare:
      return "compare";
    case WriteMode::resume:
      return "resume";
    case WriteMode::straight:
      break;
  }
  return "straight";
}

WritePlan
plan_write(const slots::SlotEnv& slot, const std::optional<WriteJournal>& journal, const std::string& digest,
           std::uint64_t mapped)
{
  // The grubenv's record first: a journal left beside a slot that was switched to (its
  // removal failed) says nothing the record does not say better.
  if (slot.state != "empty" && !slot.digest.empty() && slot.digest == digest) {
    return {WriteMode::compare, 0};
  }
  if (journal && journal->digest == digest) {
    return {WriteMode::resume, std::min(journal->bytes, mapped)};
  }
  return {WriteMode::straight, 0};
}

JournalFile::JournalFile(const fs::path& grub_dir, char slot) : m_path(grub_dir / (std::string("kiln-write-") + slot))
{}

std::optional<WriteJournal>
JournalFile::read() const
{
  std::optional<std::string> text = util::read_file_within(m_path, k_max_journal);
  if (!text || !text->starts_with(k_header)) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(*text).substr(k_header.size());
  constexpr std::string_view digest_key = "digest=";
  constexpr std::string_view bytes_key = "\nbytes=";
  if (!rest.starts_with(digest_key) || rest.size() < digest_key.size() + 64 + bytes_key.size() + 2) {
    return std::nullopt;
  }
  WriteJournal j;
  j.digest = std::string(rest.substr(digest_key.size(), 64));
  rest.remove_prefix(digest_key.size() + 64);
  if (!crypto::is_sha256_hex(j.digest) || !rest.starts_with(bytes_key) || !rest.ends_with("\n")) {
    return std::nullopt;
  }
  std::string_view number = rest.substr(bytes_key.size(), rest.size() - bytes_key.size() - 1);
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), j.bytes);
  if (ec != std::errc() || end != number.data() + number.size()) {
    return std::nullopt;
  }
  return j;
}

void
JournalFile::record(const WriteJournal& journal) const
{
  util::write_file_atomic(m_path, std::string(k_header) + "digest=" + journal.digest +
                                    "\nbytes=" + std::to_string(journal.bytes) + "\n");
}

void
JournalFile::remove() const
{
  if (!try_remove()) {
    throw Error(m_path.string(), "cannot remove: " + errno_text(errno));
  }
}

bool
JournalFile::try_remove() const noexcept
{
  return ::unlink(m_path.c_str()) == 0 || errno == ENOENT;
}

} // namespace kiln::node
