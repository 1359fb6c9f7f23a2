#include "core/util/four_letter.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <cerrno>
#include <memory>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace kiln::util {

namespace {

using Clock = std::chrono::steady_clock;

struct AddrinfoFree {
  void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};

// Waits until `fd` is ready for `events` or the deadline passes (false).
bool
wait_ready(int fd, short events, Clock::time_point deadline)
{
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) {
      check_interrupted();
      continue;
    }
    return n > 0;
  }
}

Fd
connect_before(const std::string& host, const std::string& port, Clock::time_point deadline,
               std::chrono::milliseconds timeout, const std::string& subject)
{
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw Error(subject, std::string("cannot resolve: ") + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, AddrinfoFree> owner(found);
  std::string failure = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Fd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) {
      failure = errno_text(errno);
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        failure = errno_text(errno);
        continue;
      }
      if (!wait_ready(fd.get(), POLLOUT, deadline)) {
        failure = "no connection within " + std::to_string(timeout.count()) + " ms";
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        failure = errno_text(err);
        continue;
      }
    }
    return fd;
  }
  throw Error(subject, failure);
}

} // namespace

std::string
four_letter_word(const std::string& address, const std::string& word, std::chrono::milliseconds timeout)
{
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    throw Error(address, "not HOST:PORT");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  Fd fd = connect_before(address.substr(0, colon), address.substr(colon + 1), deadline, timeout, address);
  if (::send(fd.get(), word.data(), word.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(word.size())) {
    throw Error(address, "cannot send " + word + ": " + errno_text(errno));
  }
  std::string answer;
  char buffer[64];
  while (answer.size() < sizeof buffer) {
    if (!wait_ready(fd.get(), POLLIN, deadline)) {
      throw Error(address, "no answer to " + word + " within " + std::to_string(timeout.count()) + " ms");
    }
    ssize_t n = ::recv(fd.get(), buffer, sizeof buffer - answer.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (n < 0) {
      throw Error(address, "reading the answer to " + word + ": " + errno_text(errno));
    }
    if (n == 0) {
      break;
    }
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  return answer;
}

} // namespace kiln::util
