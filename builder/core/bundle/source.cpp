// Byte sources for bundles and installer images: local files and http(s) URLs read
// front to back. The URL reader drives libcurl's multi interface from read(), so the
// caller pulls bytes at its own pace (libcurl is paused while the buffer is full), and
// a dropped connection is resumed with a Range request from the first byte the caller
// has not received yet.
#include "core/bundle/bundle.hpp"
#include "core/bundle/curl.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <array>
#include <curl/curl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kiln::bundle {

namespace {

constexpr std::size_t k_pause_above = 4u << 20;

// A source that does not exist (no such file, HTTP 404/410): read_small may accept it.
class Missing : public Error {
public:
  using Error::Error;
};

bool
starts_with(const std::string& s, std::string_view prefix)
{
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string
local_path(const std::string& source)
{
  if (starts_with(source, "file://")) {
    return source.substr(7);
  }
  return source;
}

class FileStream final : public Stream {
public:
  FileStream(const std::string& path, std::uint64_t offset, std::optional<std::uint64_t> length)
    : m_name(path), m_pos(offset), m_length(length)
  {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) {
        throw Missing(path, "no such file");
      }
      throw Error(path, errno_text(err));
    }
    m_fd = util::Fd(fd);
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      m_total = static_cast<std::uint64_t>(st.st_size);
    }
    m_seekable = ::lseek(fd, 0, SEEK_CUR) >= 0;
    if (!m_seekable && offset > 0) {
      throw Error(path, "cannot start at byte " + std::to_string(offset) + " of a pipe");
    }
  }

  std::size_t read(char* buffer, std::size_t size) override
  {
    if (m_length) {
      size = static_cast<std::size_t>(std::min<std::uint64_t>(size, *m_length - m_done));
      if (size == 0) {
        return 0;
      }
    }
    for (;;) {
      ssize_t n =
        m_seekable ? ::pread(m_fd.get(), buffer, size, static_cast<off_t>(m_pos)) : ::read(m_fd.get(), buffer, size);
      if (n < 0 && errno == EINTR) {
        util::check_interrupted();
        continue;
      }
      if (n < 0) {
        throw Error(m_name, "read failed at byte " + std::to_string(m_pos) + ": " + errno_text(errno));
      }
      if (n == 0 && m_length) {
        throw Error(m_name, "ends at byte " + std::to_string(m_pos) + ", before the " + std::to_string(*m_length) +
                              " bytes asked for");
      }
      m_pos += static_cast<std::uint64_t>(n);
      m_done += static_cast<std::uint64_t>(n);
      return static_cast<std::size_t>(n);
    }
  }

  std::uint64_t total_size() const override { return m_total; }
  int resumes() const override { return 0; }

private:
  std::string m_name;
  util::Fd m_fd;
  std::uint64_t m_pos = 0;
  std::uint64_t m_done = 0;
  std::optional<std::uint64_t> m_length;
  std::uint64_t m_total = 0;
  bool m_seekable = true;
};

class HttpStream final : public Stream {
public:
  HttpStream(std::string url, std::uint64_t offset, std::optional<std::uint64_t> length, SourceOptions options)
    : m_url(std::move(url)), m_offset(offset), m_length(length), m_options(std::move(options))
  {
    m_multi = new_multi(m_url);
    start();
  }

  ~HttpStream() override { stop(); }

  std::size_t read(char* buffer, std::size_t size) override
  {
    for (;;) {
      if (m_buffer_pos < m_buffer.size()) {
        std::size_t n = std::min(size, m_buffer.size() - m_buffer_pos);
        std::memcpy(buffer, m_buffer.data() + m_buffer_pos, n);
        m_buffer_pos += n;
        if (m_buffer_pos == m_buffer.size()) {
          m_buffer.clear();
          m_buffer_pos = 0;
        }
        if (m_paused && m_buffer.size() - m_buffer_pos < k_pause_above / 2) {
          m_paused = false;
          curl_easy_pause(m_easy, CURLPAUSE_CONT); // may call on_data right away
        }
        return n;
      }
      if (m_eof) {
        return 0;
      }
      util::check_interrupted();
      pump();
    }
  }

  std::uint64_t total_size() const override { return m_total; }
  int resumes() const override { return m_resumes; }

private:
  std::uint64_t position() const { return m_offset + m_delivered; }

  void start()
  {
    Transfer t;
    t.url = m_url;
    t.connect_timeout_s = m_options.connect_timeout_s;
    t.low_speed_time_s = m_options.stall_timeout_s;
    t.user_agent = "kiln-node/" KILN_VERSION;
    // The node's own trust store, not the build host's compiled-in path.
    t.ca_file = !m_options.ca_file.empty() ? m_options.ca_file : default_ca_file();
    t.errbuf = m_errbuf;
    m_easy = new_transfer(t).release(); // owned by stop() from here
    m_checked = false;
    m_skip = 0;
    CURL* c = m_easy;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &HttpStream::on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
    m_range.clear();
    if (position() > 0 || m_length) {
      m_range = std::to_string(position()) + "-";
      if (m_length) {
        m_range += std::to_string(m_offset + *m_length - 1);
      }
      curl_easy_setopt(c, CURLOPT_RANGE, m_range.c_str());
    }
    curl_multi_add_handle(m_multi.get(), m_easy);
    m_paused = false;
  }

  void stop()
  {
    if (m_easy != nullptr) {
      curl_multi_remove_handle(m_multi.get(), m_easy);
      curl_easy_cleanup(m_easy);
      m_easy = nullptr;
    }
  }

  static size_t on_data(char* data, size_t size, size_t count, void* opaque)
  {
    auto* self = static_cast<HttpStream*>(opaque);
    std::size_t bytes = size * count;
    if (!self->m_checked) {
      self->m_checked = true;
      long code = 0;
      curl_easy_getinfo(self->m_easy, CURLINFO_RESPONSE_CODE, &code);
      curl_off_t length = -1;
      curl_easy_getinfo(self->m_easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
      if (!self->m_range.empty() && code == 200) {
        // The server ignored the Range: drop what the caller already has.
        self->m_skip = self->position();
        if (length >= 0) {
          self->m_total = static_cast<std::uint64_t>(length);
        }
      } else if (length >= 0 && self->m_total == 0) {
        self->m_total = static_cast<std::uint64_t>(length) + (code == 206 ? self->position() : 0);
      }
    }
    if (self->m_buffer.size() - self->m_buffer_pos > k_pause_above) {
      self->m_paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    std::size_t used = bytes;
    if (self->m_skip > 0) {
      std::size_t skip = static_cast<std::size_t>(std::min<std::uint64_t>(self->m_skip, bytes));
      self->m_skip -= skip;
      data += skip;
      bytes -= skip;
    }
    if (self->m_length) {
      std::uint64_t room = *self->m_length - self->m_delivered;
      bytes = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, room));
    }
    self->m_buffer.append(data, bytes);
    self->m_delivered += bytes;
    return used;
  }

  bool transient(CURLcode rc, long code) const
  {
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      return code == 408 || code == 429 || code >= 500;
    }
    switch (rc) {
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_LOGIN_DENIED:
      case CURLE_WRITE_ERROR:
        return false;
      default:
        return true;
    }
  }

  // Runs libcurl until data arrived or the transfer ended (then resumes or fails).
  void pump()
  {
    int running = 0;
    CURLMcode mc = curl_multi_perform(m_multi.get(), &running);
    if (mc != CURLM_OK) {
      throw Error(m_url, std::string("libcurl: ") + curl_multi_strerror(mc));
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(m_multi.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE || msg->easy_handle != m_easy) {
        continue;
      }
      finished(msg->data.result);
      return;
    }
    if (m_buffer_pos < m_buffer.size() || m_paused) {
      return;
    }
    mc = curl_multi_poll(m_multi.get(), nullptr, 0, 1000, nullptr);
    if (mc != CURLM_OK) {
      throw Error(m_url, std::string("libcurl: ") + curl_multi_strerror(mc));
    }
  }

  void finished(CURLcode rc)
  {
    long code = 0;
    curl_easy_getinfo(m_easy, CURLINFO_RESPONSE_CODE, &code);
    std::string error = m_errbuf[0] != '\0' ? m_errbuf : curl_easy_strerror(rc);
    stop();
    bool complete = !m_length || m_delivered == *m_length;
    if (rc == CURLE_OK && complete && m_skip == 0) {
      m_eof = true;
      return;
    }
    if (rc == CURLE_OK) {
      rc = CURLE_PARTIAL_FILE;
      error = "connection closed early";
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR && (code == 404 || code == 410)) {
      throw Missing(m_url, "HTTP " + std::to_string(code));
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      error = "HTTP " + std::to_string(code);
    }
    if (!transient(rc, code) || m_attempt >= m_options.retries) {
      throw Error(m_url, error + (m_attempt > 0 ? " (after " + std::to_string(m_attempt) + " retries)" : ""));
    }
    long delay = m_options.retry_delay_ms << std::min(m_attempt, 10);
    ++m_attempt;
    ++m_resumes;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    util::check_interrupted();
    start();
  }

  std::string m_url;
  std::uint64_t m_offset;
  std::optional<std::uint64_t> m_length;
  SourceOptions m_options;
  CurlMultiHandle m_multi;
  CURL* m_easy = nullptr;
  char m_errbuf[CURL_ERROR_SIZE] = {0};
  std::string m_range;
  std::string m_buffer;
  std::size_t m_buffer_pos = 0;
  std::uint64_t m_delivered = 0; // bytes handed to the buffer, from m_offset on
  std::uint64_t m_skip = 0;
  std::uint64_t m_total = 0;
  bool m_checked = false;
  bool m_paused = false;
  bool m_eof = false;
  int m_attempt = 0;
  int m_resumes = 0;
};

} // namespace

namespace {
// EL (CentOS 7's ca-certificates), Debian, SUSE, older EL, EL's extracted store, Alpine.
constexpr std::array<const char*, 6> k_ca_files = {"/etc/pki/tls/certs/ca-bundle.crt",
                                                   "/etc/ssl/certs/ca-certificates.crt",
                                                   "/etc/ssl/ca-bundle.pem",
                                                   "/etc/pki/tls/cacert.pem",
                                                   "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                                                   "/etc/ssl/cert.pem"};
} // namespace

std::string
default_ca_file()
{
  for (const char* path : k_ca_files) {
    if (::access(path, R_OK) == 0) {
      return path;
    }
  }
  return {};
}

std::string
well_known_ca_files_text()
{
  std::string text;
  for (const char* path : k_ca_files) {
    text += (text.empty() ? "" : ", ") + std::string(path);
  }
  return text;
}

bool
is_url(const std::string& source)
{
  return starts_with(source, "http://") || starts_with(source, "https://") || starts_with(source, "file://");
}

std::unique_ptr<Stream>
open_stream(const std::string& source, std::uint64_t offset, std::optional<std::uint64_t> length,
            const SourceOptions& options)
{
  if (starts_with(source, "http://") || starts_with(source, "https://")) {
    return std::make_unique<HttpStream>(source, offset, length, options);
  }
  return std::make_unique<FileStream>(local_path(source), offset, length);
}

std::optional<std::string>
read_small(const std::string& source, std::size_t limit, bool missing_ok, const SourceOptions& options)
{
  try {
    auto stream = open_stream(source, 0, std::nullopt, options);
    std::string text;
    std::vector<char> buffer(1 << 16);
    while (std::size_t n = stream->read(buffer.data(), buffer.size())) {
      text.append(buffer.data(), n);
      if (text.size() > limit) {
        throw Error(source, "larger than " + std::to_string(limit) + " bytes");
      }
    }
    return text;
  } catch (const Missing& e) {
    if (missing_ok) {
      return std::nullopt;
    }
    throw Error(e.subject(), e.reason());
  }
}

} // namespace kiln::bundle
