#include "core/util/error.hpp"

#include <cstring>

namespace kiln {

Error::Error(std::string subject, std::string reason, int exit_code)
  : std::runtime_error(subject.empty() ? reason : subject + ": " + reason), m_subject(std::move(subject)),
    m_reason(std::move(reason)), m_exit_code(exit_code)
{}

std::string
errno_text(int errnum)
{
  char buf[256];
  // GNU strerror_r may return a static string instead of filling buf.
  return ::strerror_r(errnum, buf, sizeof(buf));
}

} // namespace kiln
