// Errors: one exception type that carries a subject and a reason, printed by the
// executables as `kiln: error: SUBJECT: REASON`. Code throws at the call site with
// the context it knows (a path, a URL, an operation); nothing throws from destructors.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// Exit status conventions shared by kiln and kiln-node.
inline constexpr int k_exit_failure = 1; // the operation failed
inline constexpr int k_exit_usage = 2; // bad input: arguments, recipes, bundles
inline constexpr int k_exit_interrupted = 130;

class Error : public std::runtime_error {
public:
  Error(std::string subject, std::string reason, int exit_code = k_exit_failure);

  const std::string& subject() const noexcept { return m_subject; }
  const std::string& reason() const noexcept { return m_reason; }
  int exit_code() const noexcept { return m_exit_code; }

private:
  std::string m_subject;
  std::string m_reason;
  int m_exit_code;
};

// Bad input given by the user (exit status 2).
class UsageError : public Error {
public:
  UsageError(std::string subject, std::string reason) : Error(std::move(subject), std::move(reason), k_exit_usage) {}
};

// An error reported as several `PROG: error: LINE` lines (a recipe's diagnostics, for one).
// The front door (core/cli/report) prints it without knowing the module that threw it.
class MultiLineError : public std::exception {
public:
  virtual std::vector<std::string> lines() const = 0;
  virtual int exit_code() const noexcept { return k_exit_usage; }
};

// `strerror(errnum)` as a std::string.
std::string errno_text(int errnum);

} // namespace kiln
