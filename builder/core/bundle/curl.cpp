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

} // namespace kiln::bundle
