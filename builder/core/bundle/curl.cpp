#include "core/bundle/curl.hpp"

#include "core/util/error.hpp"

#include <mutex>

namespace kiln::bundle {

void
curl_global()
{
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error("libcurl", "global initialisation failed");
    }
  });
}

CurlHandle
new_transfer(const Transfer& t)
{
  curl_global();
  CurlHandle curl(curl_easy_init());
  if (!curl) {
    throw Error(t.url, "cannot create a libcurl handle");
  }
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, t.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, t.protocols);
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L); // TLS verification is never turned off
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, t.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, t.low_speed_limit);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, t.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_USERAGENT, t.user_agent);
  if (t.errbuf != nullptr) {
    t.errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t.errbuf);
  }
  if (!t.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, t.ca_file.c_str());
  }
  return curl;
}

CurlMultiHandle
new_multi(const std::string& url)
{
  curl_global();
  CurlMultiHandle multi(curl_multi_init());
  if (!multi) {
    throw Error(url, "cannot create a libcurl handle");
  }
  return multi;
}

} // namespace kiln::bundle
