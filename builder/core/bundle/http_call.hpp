// One bounded HTTP request whose answer is kept in memory: kiln-node's health gates
// (GET /metrics/snapshot on localhost) and kiln-fleet's Mesos operator API (POST JSON
// to the master, a token and a CA file). Bundles and cached blobs stream to files
// elsewhere; this is for small answers only.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace kiln::bundle {

struct HttpCall {
  std::string url;
  std::string method = "GET"; // GET or POST
  std::string body; // POST only
  std::vector<std::string> headers; // "Name: value"
  const char* protocols = "http,https";
  std::string ca_file; // "" : libcurl's default trust store
  std::string user_agent = "kiln";
  std::chrono::milliseconds timeout{5000}; // connect and answer together
  std::size_t limit = 4u << 20; // the answer may not be larger
  bool no_proxy = false; // never through a proxy of the environment
};

struct HttpAnswer {
  long status = 0;
  std::string body;
  // A 3xx answer's Location, resolved against the call's URL (a relative or scheme-relative
  // one made whole); never followed here: "" when there is none.
  std::string redirect_url;
};

// Performs `call`. Throws Error(url, ...) when there is no answer in time, the answer is
// larger than the limit, the process is interrupted, or TLS fails; any HTTP status is
// returned (the caller judges it).
HttpAnswer http_call(const HttpCall& call);

} // namespace kiln::bundle
