#include "core/fetch/http.hpp"

#include "core/bundle/curl.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::fetch {

namespace {

using bundle::CurlHandle;

struct Sink {
  CURL* curl = nullptr;
  util::Fd* fd = nullptr;
  crypto::Sha256* hasher = nullptr;
  std::uint64_t offset = 0; // bytes already in the file when the request started
  std::uint64_t written = 0; // bytes written by this request
  bool checked = false; // response code looked at
  bool restarted = false; // server ignored the Range: file truncated
  bool failed = false;
  bool too_large = false; // the body went past options->limit
  std::string error;
  const TransferOptions* options = nullptr;
};

size_t
on_data(char* data, size_t size, size_t count, void* opaque)
{
  auto* sink = static_cast<Sink*>(opaque);
  size_t bytes = size * count;
  if (!sink->checked) {
    sink->checked = true;
    long code = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &code);
    // A resumed request answered with the whole file (200, not 206): start over.
    if (sink->offset > 0 && code == 200) {
      if (::ftruncate(sink->fd->get(), 0) != 0 || ::lseek(sink->fd->get(), 0, SEEK_SET) != 0) {
        sink->failed = true;
        sink->error = "cannot truncate partial file: " + errno_text(errno);
        return 0;
      }
      *sink->hasher = crypto::Sha256();
      sink->offset = 0;
      sink->restarted = true;
    }
  }
  if (sink->offset + sink->written + bytes > sink->options->limit) {
    sink->too_large = true;
    sink->error = "larger than " + std::to_string(sink->options->limit) + " bytes";
    return 0;
  }
  try {
    util::write_all(sink->fd->get(), std::string_view(data, bytes), "partial file");
  } catch (const Error& e) {
    sink->failed = true;
    sink->error = e.reason();
    return 0;
  }
  sink->hasher->update(data, bytes);
  sink->written += bytes;
  return bytes;
}

// The reply's validators (ETag, Last-Modified) of the final response: a redirect's
// headers are dropped when the next status line arrives.
struct Validators {
  std::string etag;
  std::string last_modified;
};

size_t
on_header(char* data, size_t size, size_t count, void* opaque)
{
  auto* v = static_cast<Validators*>(opaque);
  std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    *v = Validators();
    return size * count;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || line.size() > 1024) {
    return size * count;
  }
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  if (name == "etag") {
    v->etag = value;
  } else if (name == "last-modified") {
    v->last_modified = value;
  }
  return size * count;
}

struct SlistFree {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistFree>;

int
on_progress(void* opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t)
{
  auto* sink = static_cast<Sink*>(opaque);
  if (util::interrupted()) {
    return 1;
  }
  if (sink->options->progress) {
    std::uint64_t total = dltotal > 0 ? sink->offset + static_cast<std::uint64_t>(dltotal) : 0;
    sink->options->progress(sink->offset + static_cast<std::uint64_t>(dlnow), total);
  }
  return 0;
}

// Feeds the bytes already in a partial download to the hasher, so the digest covers
// the whole file once the rest arrives.
void
hash_existing(const std::filesystem::path& path, crypto::Sha256& hasher)
{
  util::read_chunks(path, [&](const char* chunk, size_t size) { hasher.update(chunk, size); });
}

bool
transient_http(long code)
{
  return code == 408 || code == 429 || code >= 500;
}

} // namespace

std::string
curl_version_string()
{
  return curl_version_info(CURLVERSION_NOW)->version;
}

TransferResult
transfer(const std::string& url, const std::filesystem::path& partial, crypto::Sha256& hasher,
         const TransferOptions& options)
{
  bundle::curl_global();
  TransferResult result;
  util::Fd fd = util::open_file(partial, O_WRONLY | O_CREAT | O_APPEND, 0644);
  struct stat st {};
  ::fstat(fd.get(), &st);
  auto existing = static_cast<std::uint64_t>(st.st_size);
  hasher = crypto::Sha256();
  hash_existing(partial, hasher);

  char errbuf[CURL_ERROR_SIZE] = {0};
  bundle::Transfer t;
  t.url = url;
  t.protocols = "http,https,file";
  t.connect_timeout_s = options.connect_timeout_s;
  t.low_speed_limit = static_cast<long>(std::max<std::uint64_t>(1, options.min_rate));
  t.low_speed_time_s = options.stall_timeout_s;
  t.user_agent = "kiln/" KILN_VERSION;
  t.ca_file = options.ca_file;
  t.errbuf = errbuf;
  CurlHandle curl = bundle::new_transfer(t);
  Sink sink;
  sink.curl = curl.get();
  sink.fd = &fd;
  sink.hasher = &hasher;
  sink.offset = existing;
  sink.options = &options;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &sink);
  Validators validators;
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &validators);
  Slist headers;
  if (existing > 0) {
    curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(existing));
  } else {
    for (const auto& [name, value] : {std::pair{"If-None-Match: ", &options.if_none_match},
                                      std::pair{"If-Modified-Since: ", &options.if_modified_since}}) {
      if (!value->empty() && value->find_first_of("\r\n") == std::string::npos) {
        curl_slist* more = curl_slist_append(headers.get(), (name + *value).c_str());
        if (more == nullptr) {
          throw Error(url, "out of memory for a request header");
        }
        (void)headers.release();
        headers.reset(more);
      }
    }
    if (headers) {
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    }
  }

  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_RANGE_ERROR && existing > 0) {
    // The server cannot resume: drop the partial bytes and ask for the whole file.
    fd.close(partial.string());
    std::filesystem::remove(partial);
    return transfer(url, partial, hasher, options);
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  fd.close(partial.string());
  struct stat after {};
  ::stat(partial.c_str(), &after);
  result.size = static_cast<std::uint64_t>(after.st_size);

  if (rc == CURLE_OK) {
    // An empty 206/200 reply to a resume of a file that was already complete; or 304
    // to a conditional request: the copy kiln has is current.
    result.not_modified = code == 304 && headers != nullptr;
    result.etag = validators.etag;
    result.last_modified = validators.last_modified;
    return result;
  }
  if (sink.too_large) {
    result.outcome = TransferResult::Outcome::too_large;
    result.error = sink.error;
    return result;
  }
  if (sink.failed) {
    result.outcome = TransferResult::Outcome::permanent;
    result.error = sink.error;
    return result;
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK && util::interrupted()) {
    result.outcome = TransferResult::Outcome::interrupted;
    result.error = "interrupted";
    return result;
  }
  if (rc == CURLE_HTTP_RETURNED_ERROR) {
    if (code == 416 && existing > 0) {
      // The range starts at or past the end: the partial file is complete (or bad);
      // the digest check decides.
      result.outcome = TransferResult::Outcome::ok;
      return result;
    }
    result.error = "HTTP " + std::to_string(code);
    result.outcome = transient_http(code) ? TransferResult::Outcome::transient : TransferResult::Outcome::permanent;
    return result;
  }
  result.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT && sink.checked) {
    result.error = "slower than " + std::to_string(options.min_rate) + " bytes/s for " +
                   std::to_string(options.stall_timeout_s) + " s";
  }
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_LOGIN_DENIED:
      result.outcome = TransferResult::Outcome::permanent;
      break;
    default:
      result.outcome = TransferResult::Outcome::transient;
      break;
  }
  return result;
}

} // namespace kiln::fetch
