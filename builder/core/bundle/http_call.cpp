#include "core/bundle/http_call.hpp"

#include "core/bundle/curl.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <memory>

namespace kiln::bundle {

namespace {

struct Body {
  std::string text;
  std::size_t limit = 0;
  bool too_large = false;
};

size_t
on_body(char* data, size_t size, size_t count, void* opaque)
{
  auto* body = static_cast<Body*>(opaque);
  size_t n = size * count;
  if (body->text.size() + n > body->limit) {
    body->too_large = true;
    return 0; // libcurl ends the transfer (CURLE_WRITE_ERROR)
  }
  body->text.append(data, n);
  return n;
}

int
on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
  return util::interrupted() ? 1 : 0;
}

struct SlistFree {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

} // namespace

HttpAnswer
http_call(const HttpCall& call)
{
  curl_global();
  CurlHandle curl(curl_easy_init());
  if (!curl) {
    throw Error(call.url, "libcurl: cannot create a handle");
  }
  Body body;
  body.limit = call.limit;
  char error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, call.protocols);
  if (call.no_proxy) {
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(call.timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, call.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  if (!call.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, call.ca_file.c_str());
  }
  std::unique_ptr<curl_slist, SlistFree> headers;
  for (const auto& h : call.headers) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (l == nullptr) {
      throw Error(call.url, "libcurl: out of memory");
    }
    (void)headers.release();
    headers.reset(l);
  }
  if (headers) {
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  }
  if (call.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
  }
  CURLcode rc = curl_easy_perform(c);
  util::check_interrupted();
  if (body.too_large) {
    throw Error(call.url, "the answer is larger than " + std::to_string(call.limit) + " bytes");
  }
  if (rc != CURLE_OK) {
    throw Error(call.url, error[0] != '\0' ? error : curl_easy_strerror(rc));
  }
  HttpAnswer answer;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.status);
  char* location = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location != nullptr) {
    answer.redirect_url = location;
  }
  answer.body = std::move(body.text);
  return answer;
}

} // namespace kiln::bundle
