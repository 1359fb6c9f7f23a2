#include "core/crypto/sha256.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace kiln::crypto {

namespace {
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
} // namespace

struct Sha256::Impl {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx{EVP_MD_CTX_new()};
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>())
{
  if (!m_impl->ctx || EVP_DigestInit_ex(m_impl->ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("sha256", "cannot initialise OpenSSL digest");
  }
}

Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

void
Sha256::update(const void* data, size_t size)
{
  if (EVP_DigestUpdate(m_impl->ctx.get(), data, size) != 1) {
    throw Error("sha256", "digest update failed");
  }
}

void
Sha256::update(std::string_view data)
{
  update(data.data(), data.size());
}

std::string
Sha256::hex_digest()
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(m_impl->ctx.get(), md, &len) != 1) {
    throw Error("sha256", "digest final failed");
  }
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string
sha256_hex(std::string_view data)
{
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

std::string
sha256_file(const std::filesystem::path& path)
{
  Sha256 h;
  util::read_chunks(path, [&](const char* chunk, size_t size) { h.update(chunk, size); });
  return h.hex_digest();
}

std::string
sha256_tree(const std::filesystem::path& dir)
{
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) {
    throw Error(dir.string(), "cannot read directory: " + ec.message());
  }
  std::sort(entries.begin(), entries.end());
  Sha256 h;
  for (const auto& path : entries) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      throw Error(path.string(), errno_text(errno));
    }
    std::string rel = path.lexically_relative(dir).generic_string();
    char mode[16];
    std::snprintf(mode, sizeof(mode), "%04o", st.st_mode & 07777);
    std::string record = rel + '\0' + mode + '\0';
    if (S_ISREG(st.st_mode)) {
      record += "f" + sha256_file(path);
    } else if (S_ISDIR(st.st_mode)) {
      record += "d";
    } else if (S_ISLNK(st.st_mode)) {
      record += "l" + fs::read_symlink(path).string();
    } else {
      throw Error(path.string(), "unsupported file type (only files, directories and symlinks)");
    }
    record += '\n';
    h.update(record);
  }
  return h.hex_digest();
}

bool
is_sha256_hex(std::string_view text)
{
  return text.size() == 64 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

} // namespace kiln::crypto
