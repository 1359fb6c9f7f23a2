// libcurl ownership shared by kiln's HTTP clients (bundle sources, the fetch cache,
// kiln-node's health checks): the one-time global initialisation and an owning handle.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace kiln::bundle {

// curl_global_init, once per process (thread-safe); throws Error when it fails.
void curl_global();

struct CurlFree {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
// An easy handle, cleaned up when it goes.
using CurlHandle = std::unique_ptr<CURL, CurlFree>;

} // namespace kiln::bundle
