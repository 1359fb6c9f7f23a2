// libcurl ownership shared by kiln's HTTP clients (bundle sources, the fetch cache,
// kiln-node's health checks): the one-time global initialisation, owning easy and multi
// handles, and the one place a download's common options are set.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace kiln::bundle {

// curl_global_init, once per process (thread-safe); throws Error when it fails.
void curl_global();

struct CurlFree {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
// An easy handle, cleaned up when it goes.
using CurlHandle = std::unique_ptr<CURL, CurlFree>;

struct CurlMultiFree {
  void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
using CurlMultiHandle = std::unique_ptr<CURLM, CurlMultiFree>;

// What differs between kiln's downloads; everything else is the same for all of them.
struct Transfer {
  std::string url;
  const char* protocols = "http,https"; // CURLOPT_PROTOCOLS_STR
  long connect_timeout_s = 30;
  long low_speed_limit = 1; // bytes/s below which...
  long low_speed_time_s = 60; // ...for this long the transfer fails
  const char* user_agent = "kiln";
  std::string ca_file; // "" : libcurl's default trust store
  char* errbuf = nullptr; // CURL_ERROR_SIZE bytes, or null
};

// A new easy handle for `t`: redirects among http/https only (at most 10), TLS peer and
// host always verified, HTTP errors fail the transfer, no signals, the connect and
// low-speed bounds of `t`. Throws Error(url, ...) when libcurl cannot make a handle.
CurlHandle new_transfer(const Transfer& t);
// The same for a multi handle.
CurlMultiHandle new_multi(const std::string& url);

} // namespace kiln::bundle
