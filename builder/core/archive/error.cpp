#include "core/archive/error.hpp"

#include "core/util/error.hpp"

#include <archive.h>

#include <cerrno>

namespace kiln::archive {

std::string
error_message(struct archive* a, std::string_view fallback)
{
  const char* msg = archive_error_string(a);
  std::string out = msg != nullptr ? msg : std::string(fallback);
  const int err = archive_errno(a);
  // On Linux libarchive reports a bad format as EILSEQ and misuse as EINVAL (its
  // archive_platform.h); neither says more than its message. Other codes are the system's.
  if (err > 0 && err != EILSEQ && err != EINVAL) {
    const std::string reason = errno_text(err);
    if (out.find(reason) == std::string::npos) {
      out += ": " + reason;
    }
  }
  return out;
}

} // namespace kiln::archive
