#include "core/bmap/bmap.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <optional>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::bmap {

namespace {

constexpr size_t k_io_size = 1 << 20;
constexpr size_t k_digest_chars = 64;
constexpr size_t k_max_depth = 16;

std::string
blocks_text(const Range& range)
{
  return range.text();
}

// ---------------------------------------------------------------------------
// A minimal XML reader: exactly what bmap files use, nothing more.

struct Element {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<Element> children;
  std::string text; // decoded character data directly inside
  size_t content_begin = 0; // raw bytes between the start and end tags
  size_t content_end = 0;
  size_t line = 0;

  const std::string* attribute(std::string_view key) const
  {
    for (const auto& [k, v] : attributes) {
      if (k == key) {
        return &v;
      }
    }
    return nullptr;
  }
};

class XmlReader {
public:
  XmlReader(std::string_view doc, const std::string& subject) : m_doc(doc), m_subject(subject) {}

  Element read_document()
  {
    if (m_doc.starts_with("<?xml")) {
      size_t end = m_doc.find("?>");
      if (end == std::string_view::npos) {
        fail("unterminated XML declaration");
      }
      m_pos = end + 2;
    }
    skip_misc();
    if (at_end() || m_doc[m_pos] != '<') {
      fail("no root element");
    }
    Element root = read_element(0);
    skip_misc();
    if (!at_end()) {
      fail("content after the root element");
    }
    return root;
  }

private:
  [[noreturn]] void fail(const std::string& reason) const
  {
    throw Error(m_subject, "invalid XML at line " + std::to_string(line_at(m_pos)) + ": " + reason);
  }

  size_t line_at(size_t pos) const
  {
    std::string_view before = m_doc.substr(0, std::min(pos, m_doc.size()));
    return 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  }

  bool at_end() const { return m_pos >= m_doc.size(); }
  bool looking_at(std::string_view s) const { return m_doc.substr(m_pos).starts_with(s); }

  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
  static bool is_name_char(char c)
  {
    return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  }

  void skip_space()
  {
    while (!at_end() && is_space(m_doc[m_pos])) {
      ++m_pos;
    }
  }

  void skip_comment()
  {
    size_t end = m_doc.find("-->", m_pos + 4);
    if (end == std::string_view::npos) {
      fail("unterminated comment");
    }
    m_pos = end + 3;
  }

  // Whitespace and comments outside the root element.
  void skip_misc()
  {
    for (;;) {
      skip_space();
      if (looking_at("<!--")) {
        skip_comment();
      } else if (looking_at("<!") || looking_at("<?")) {
        fail("unsupported markup (DOCTYPE or processing instruction)");
      } else {
        return;
      }
    }
  }

  std::string read_name()
  {
    size_t start = m_pos;
    if (at_end() || !is_name_start(m_doc[m_pos])) {
      fail("expected a name");
    }
    while (!at_end() && is_name_char(m_doc[m_pos])) {
      ++m_pos;
    }
    return std::string(m_doc.substr(start, m_pos - start));
  }

  // Decodes one entity reference at m_pos ('&').
  char read_entity()
  {
    static const std::pair<std::string_view, char> entities[] = {
      {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (const auto& [text, c] : entities) {
      if (looking_at(text)) {
        m_pos += text.size();
        return c;
      }
    }
    fail("unsupported entity reference");
  }

  Element read_element(size_t depth)
  {
    if (depth > k_max_depth) {
      fail("elements nested too deeply");
    }
    Element element;
    element.line = line_at(m_pos);
    ++m_pos; // '<'
    element.name = read_name();
    for (;;) {
      bool spaced = !at_end() && is_space(m_doc[m_pos]);
      skip_space();
      if (at_end()) {
        fail("unterminated start tag <" + element.name + ">");
      }
      if (looking_at("/>")) {
        m_pos += 2;
        element.content_begin = element.content_end = m_pos;
        return element;
      }
      if (m_doc[m_pos] == '>') {
        ++m_pos;
        break;
      }
      if (!spaced) {
        fail("expected whitespace before an attribute in <" + element.name + ">");
      }
      std::string key = read_name();
      skip_space();
      if (at_end() || m_doc[m_pos] != '=') {
        fail("attribute " + key + " of <" + element.name + "> has no value");
      }
      ++m_pos;
      skip_space();
      if (at_end() || (m_doc[m_pos] != '"' && m_doc[m_pos] != '\'')) {
        fail("attribute " + key + " of <" + element.name + "> is not quoted");
      }
      char quote = m_doc[m_pos++];
      std::string value;
      for (;;) {
        if (at_end()) {
          fail("unterminated attribute value");
        }
        char c = m_doc[m_pos];
        if (c == quote) {
          ++m_pos;
          break;
        }
        if (c == '<') {
          fail("'<' in an attribute value");
        }
        if (c == '&') {
          value += read_entity();
        } else {
          value += c;
          ++m_pos;
        }
      }
      if (element.attribute(key) != nullptr) {
        fail("duplicate attribute " + key + " in <" + element.name + ">");
      }
      element.attributes.emplace_back(std::move(key), std::move(value));
    }

    element.content_begin = m_pos;
    for (;;) {
      if (at_end()) {
        fail("element <" + element.name + "> is not closed");
      }
      char c = m_doc[m_pos];
      if (c == '&') {
        element.text += read_entity();
      } else if (c != '<') {
        element.text += c;
        ++m_pos;
      } else if (looking_at("<!--")) {
        skip_comment();
      } else if (looking_at("</")) {
        element.content_end = m_pos;
        m_pos += 2;
        std::string closing = read_name();
        if (closing != element.name) {
          fail("</" + closing + "> closes <" + element.name + ">");
        }
        skip_space();
        if (at_end() || m_doc[m_pos] != '>') {
          fail("unterminated end tag </" + closing + ">");
        }
        ++m_pos;
        return element;
      } else if (looking_at("<!") || looking_at("<?")) {
        fail("unsupported markup (CDATA or processing instruction) in <" + element.name + ">");
      } else {
        element.children.push_back(read_element(depth + 1));
      }
    }
  }

  std::string_view m_doc;
  const std::string& m_subject;
  size_t m_pos = 0;
};

std::string_view
trim(std::string_view text)
{
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<std::uint64_t>
to_u64(std::string_view text)
{
  std::uint64_t value = 0;
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// The single child of `root` called `name`, which must hold text only.
const Element&
leaf(const Element& root, const std::string& name, const std::string& subject)
{
  const Element* found = nullptr;
  for (const auto& child : root.children) {
    if (child.name == name) {
      if (found != nullptr) {
        throw Error(subject, "duplicate <" + name + "> element (line " + std::to_string(child.line) + ")");
      }
      found = &child;
    }
  }
  if (found == nullptr) {
    throw Error(subject, "missing <" + name + "> element");
  }
  if (name != "BlockMap" && !found->children.empty()) {
    throw Error(subject, "<" + name + "> must hold text only (line " + std::to_string(found->line) + ")");
  }
  return *found;
}

std::uint64_t
leaf_number(const Element& root, const std::string& name, const std::string& subject)
{
  std::string_view text = trim(leaf(root, name, subject).text);
  auto value = to_u64(text);
  if (!value) {
    throw Error(subject, "<" + name + "> is not a non-negative integer: \"" + std::string(text) + "\"");
  }
  return *value;
}

Range
parse_range(const Element& element, size_t index, const std::string& subject)
{
  std::string label = "Range " + std::to_string(index + 1) + " (line " + std::to_string(element.line) + ")";
  if (!element.children.empty()) {
    throw Error(subject, label + " must hold text only");
  }
  std::string_view text = trim(element.text);
  Range range;
  size_t dash = text.find('-');
  auto first = to_u64(trim(text.substr(0, dash)));
  auto last = dash == std::string_view::npos ? first : to_u64(trim(text.substr(dash + 1)));
  if (!first || !last) {
    throw Error(subject, label + ": bad block range \"" + std::string(text) + "\"");
  }
  range.first = *first;
  range.last = *last;
  label = "Range " + std::to_string(index + 1) + " (blocks " + std::string(text) + ")";
  if (range.first > range.last) {
    throw Error(subject, label + ": first block after last block");
  }
  const std::string* chksum = element.attribute("chksum");
  if (chksum == nullptr) {
    throw Error(subject, label + " has no chksum attribute (kiln verifies every range)");
  }
  if (!crypto::is_sha256_hex(*chksum)) {
    throw Error(subject, label + ": chksum is not 64 lower-case hex digits");
  }
  range.sha256 = *chksum;
  for (const auto& [key, value] : element.attributes) {
    if (key != "chksum") {
      throw Error(subject, label + ": unknown attribute " + key);
    }
  }
  return range;
}

// Version "2.x" (or 1.4, the same format under an earlier number).
bool
supported_version(std::string_view version)
{
  if (version == "1.4") {
    return true;
  }
  size_t dot = version.find('.');
  return dot != std::string_view::npos && version.substr(0, dot) == "2" && to_u64(version.substr(dot + 1));
}

bool
all_zero(const char* data, size_t size)
{
  return size == 0 || (data[0] == 0 && std::memcmp(data, data + 1, size - 1) == 0);
}

// Collects mapped blocks in ascending order into hashed ranges.
class RangeBuilder {
public:
  explicit RangeBuilder(std::vector<Range>& out) : m_out(out) {}

  void add(std::uint64_t block, const char* data, size_t size)
  {
    if (!m_hash || block != m_last + 1) {
      finish();
      m_hash.emplace();
      m_first = block;
    }
    m_last = block;
    m_hash->update(data, size);
  }

  void finish()
  {
    if (m_hash) {
      m_out.push_back(Range{m_first, m_last, m_hash->hex_digest()});
      m_hash.reset();
    }
  }

private:
  std::vector<Range>& m_out;
  std::optional<crypto::Sha256> m_hash;
  std::uint64_t m_first = 0;
  std::uint64_t m_last = 0;
};

} // namespace

std::uint64_t
Bmap::length_of(const Range& range) const noexcept
{
  std::uint64_t begin = offset_of(range);
  std::uint64_t end = std::min((range.last + 1) * block_size, image_size);
  return end > begin ? end - begin : 0;
}

std::uint64_t
Bmap::mapped_bytes() const noexcept
{
  std::uint64_t total = 0;
  for (const auto& range : ranges) {
    total += length_of(range);
  }
  return total;
}

Bmap
generate(const fs::path& image, const GenerateOptions& options)
{
  const std::string subject = image.string();
  util::Fd fd = util::open_file(image, O_RDONLY);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw Error(subject, "stat failed: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw Error(subject, "not a regular file");
  }
  Bmap bmap;
  bmap.image_size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t bs = bmap.block_size;
  bmap.blocks_count = (bmap.image_size + bs - 1) / bs;

  RangeBuilder builder(bmap.ranges);
  std::vector<char> buf(k_io_size);
  std::uint64_t next_block = 0; // blocks before this one are done
  std::uint64_t offset = 0;
  while (offset < bmap.image_size) {
    std::uint64_t data_begin = offset;
    std::uint64_t data_end = bmap.image_size;
    off_t data = ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {
        break; // only a hole remains
      }
      if (errno != EINVAL && errno != EOPNOTSUPP) {
        throw Error(subject, "SEEK_DATA failed: " + errno_text(errno));
      }
      // The file system cannot report holes: treat the rest as data.
    } else {
      data_begin = static_cast<std::uint64_t>(data);
      off_t hole = ::lseek(fd.get(), data, SEEK_HOLE);
      if (hole < 0) {
        throw Error(subject, "SEEK_HOLE failed: " + errno_text(errno));
      }
      data_end = std::min(static_cast<std::uint64_t>(hole), bmap.image_size);
    }
    offset = data_end;
    if (data_begin >= data_end) {
      break;
    }
    // Widen the extent to whole blocks, skipping blocks an earlier extent covered.
    std::uint64_t block = std::max(data_begin / bs, next_block);
    std::uint64_t end_block = (data_end + bs - 1) / bs;
    while (block < end_block) {
      util::check_interrupted();
      std::uint64_t batch = std::min<std::uint64_t>(end_block - block, k_io_size / bs);
      std::uint64_t begin_byte = block * bs;
      size_t size = static_cast<size_t>(std::min((block + batch) * bs, bmap.image_size) - begin_byte);
      ssize_t n = ::pread(fd.get(), buf.data(), size, static_cast<off_t>(begin_byte));
      if (n != static_cast<ssize_t>(size)) {
        throw Error(subject, n < 0 ? "read failed: " + errno_text(errno) : "file shrank while being mapped");
      }
      for (std::uint64_t i = 0; i < batch; ++i) {
        size_t at = static_cast<size_t>(i * bs);
        size_t len = std::min(static_cast<size_t>(bs), size - at);
        if (options.skip_zero_blocks && all_zero(buf.data() + at, len)) {
          builder.finish();
        } else {
          builder.add(block + i, buf.data() + at, len);
        }
      }
      block += batch;
    }
    next_block = end_block;
    if (data < 0) {
      break;
    }
  }
  builder.finish();
  for (const auto& range : bmap.ranges) {
    bmap.mapped_blocks_count += range.blocks();
  }
  return bmap;
}

std::string
render(const Bmap& bmap)
{
  auto field = [](const char* name, const std::string& value) {
    return std::string("  <") + name + "> " + value + " </" + name + ">\n";
  };
  std::uint64_t mapped = bmap.mapped_bytes();
  std::string head;
  head += "<?xml version=\"1.0\" ?>\n";
  head += "<!-- Block map of a raw image, written by kiln in the bmap 2.0 format that\n"
          "     bmaptool reads. Only the listed block ranges carry data; a writer copies\n"
          "     them to the same offsets and leaves the other blocks alone. -->\n";
  head += "<bmap version=\"" + bmap.version + "\">\n";
  head += "  <!-- " + util::human_bytes(bmap.image_size) + " image, " + util::human_bytes(mapped) + " mapped -->\n";
  head += field("ImageSize", std::to_string(bmap.image_size));
  head += field("BlockSize", std::to_string(bmap.block_size));
  head += field("BlocksCount", std::to_string(bmap.blocks_count));
  head += field("MappedBlocksCount", std::to_string(bmap.mapped_blocks_count));
  head += field("ChecksumType", bmap.checksum_type);
  head += "  <!-- sha256 of this file with the digest below replaced by 64 '0' characters -->\n";
  head += "  <BmapFileChecksum> ";
  size_t digest_at = head.size();
  head += std::string(k_digest_chars, '0') + " </BmapFileChecksum>\n";
  head += "  <BlockMap>\n";
  for (const auto& range : bmap.ranges) {
    head += "    <Range chksum=\"" + range.sha256 + "\"> " + blocks_text(range) + " </Range>\n";
  }
  head += "  </BlockMap>\n</bmap>\n";
  std::string digest = crypto::sha256_hex(head);
  head.replace(digest_at, k_digest_chars, digest);
  return head;
}

Bmap
write_bmap_file(const fs::path& image, const fs::path& bmap_path, const GenerateOptions& options)
{
  Bmap bmap = generate(image, options);
  std::string xml = render(bmap);
  util::write_file_atomic(bmap_path, xml);
  return parse(xml, bmap_path.string());
}

Bmap
parse(std::string_view xml, const std::string& subject)
{
  Element root = XmlReader(xml, subject).read_document();
  if (root.name != "bmap") {
    throw Error(subject, "root element is <" + root.name + ">, expected <bmap>");
  }
  if (!trim(root.text).empty()) {
    throw Error(subject, "unexpected text inside <bmap>");
  }
  Bmap bmap;
  const std::string* version = root.attribute("version");
  if (version == nullptr) {
    throw Error(subject, "<bmap> has no version attribute");
  }
  if (!supported_version(*version)) {
    throw Error(subject, "bmap version " + *version + " is not supported (kiln reads 2.x)");
  }
  bmap.version = *version;
  bmap.image_size = leaf_number(root, "ImageSize", subject);
  bmap.block_size = leaf_number(root, "BlockSize", subject);
  bmap.blocks_count = leaf_number(root, "BlocksCount", subject);
  bmap.mapped_blocks_count = leaf_number(root, "MappedBlocksCount", subject);
  bmap.checksum_type = std::string(trim(leaf(root, "ChecksumType", subject).text));
  const Element& checksum = leaf(root, "BmapFileChecksum", subject);
  const Element& block_map = leaf(root, "BlockMap", subject);

  if (bmap.checksum_type != "sha256") {
    throw Error(subject, "ChecksumType " + bmap.checksum_type + " is not supported (kiln verifies sha256 only)");
  }
  if (bmap.block_size == 0) {
    throw Error(subject, "BlockSize is 0");
  }
  std::uint64_t needed = bmap.image_size / bmap.block_size + (bmap.image_size % bmap.block_size != 0 ? 1 : 0);
  if (bmap.blocks_count != needed) {
    throw Error(subject, "inconsistent bmap: BlocksCount is " + std::to_string(bmap.blocks_count) + " but ImageSize " +
                           std::to_string(bmap.image_size) + " needs " + std::to_string(needed) + " blocks of " +
                           std::to_string(bmap.block_size) + " bytes");
  }
  if (!trim(block_map.text).empty()) {
    throw Error(subject, "unexpected text inside <BlockMap>");
  }
  std::uint64_t covered = 0;
  for (size_t i = 0; i < block_map.children.size(); ++i) {
    const Element& child = block_map.children[i];
    if (child.name != "Range") {
      throw Error(subject, "unexpected <" + child.name + "> in <BlockMap> (line " + std::to_string(child.line) + ")");
    }
    Range range = parse_range(child, i, subject);
    std::string label = "Range " + std::to_string(i + 1) + " (blocks " + blocks_text(range) + ")";
    if (range.last >= bmap.blocks_count) {
      throw Error(subject, label + " reaches past the image's " + std::to_string(bmap.blocks_count) + " blocks");
    }
    if (!bmap.ranges.empty() && range.first <= bmap.ranges.back().last) {
      throw Error(subject, label + " overlaps or precedes the range before it");
    }
    covered += range.blocks();
    bmap.ranges.push_back(std::move(range));
  }
  if (covered != bmap.mapped_blocks_count) {
    throw Error(subject, "inconsistent bmap: MappedBlocksCount is " + std::to_string(bmap.mapped_blocks_count) +
                           " but the ranges cover " + std::to_string(covered) + " blocks");
  }

  // Last, the digest over the whole file with its own value zeroed.
  std::string_view raw = xml.substr(checksum.content_begin, checksum.content_end - checksum.content_begin);
  std::string_view recorded = trim(raw);
  if (!crypto::is_sha256_hex(recorded) || recorded != trim(checksum.text)) {
    throw Error(subject, "BmapFileChecksum is not 64 lower-case hex digits");
  }
  size_t digest_at = checksum.content_begin + static_cast<size_t>(recorded.data() - raw.data());
  std::string zeroed(xml);
  zeroed.replace(digest_at, k_digest_chars, std::string(k_digest_chars, '0'));
  std::string actual = crypto::sha256_hex(zeroed);
  if (actual != recorded) {
    throw Error(subject, "BmapFileChecksum mismatch: the file hashes to " + actual + " but records " +
                           std::string(recorded) + " (the bmap was modified or damaged)");
  }
  bmap.file_checksum = std::string(recorded);
  return bmap;
}

Bmap
read_bmap_file(const fs::path& path)
{
  return parse(util::read_file(path), path.string());
}

std::string
Range::text() const
{
  return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
}

} // namespace kiln::bmap
