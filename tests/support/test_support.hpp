// Helpers shared by kiln's tests: a scratch directory per test (kept when the test
// fails), running the real binaries, and a loopback HTTP server with failure modes.
#pragma once

#include "core/crypto/signing.hpp"
#include "core/util/error.hpp"
#include "core/util/process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::test {

namespace fs = std::filesystem;

// A fresh directory for the current test under $TMPDIR/kiln-tests; removed on
// success, kept (and its path printed) on failure.
class ScratchDir {
public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return m_path; }
  fs::path operator/(const std::string& name) const { return m_path / name; }

private:
  fs::path m_path;
};

// Writes `content` to `path`, creating parent directories.
void write_text(const fs::path& path, const std::string& content);
std::string read_text(const fs::path& path);

// Runs the kiln (or kiln-node) binary built with the tests.
util::RunResult run_kiln(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});
util::RunResult run_kiln_node(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});

// Sets (value non-null) or unsets an environment variable for one scope and restores it.
class EnvVar {
public:
  EnvVar(const char* name, const char* value);
  ~EnvVar();
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

private:
  std::string m_name;
  std::optional<std::string> m_old;
};

// Splits text into lines (without the newlines).
std::vector<std::string> lines(const std::string& text);

// tests/support/httpd.py serving `root` on 127.0.0.1.
class HttpServer {
public:
  explicit HttpServer(const fs::path& root, const std::vector<std::string>& extra_args = {});
  std::string url(const std::string& path) const; // path starts with '/'
  int port() const { return m_port; }
  // The requests seen so far: [{"path": ..., "range": ...}].
  nlohmann::json requests() const;
  // How many requests named exactly `path`.
  int count(const std::string& path) const;

private:
  std::unique_ptr<util::Child> m_child;
  std::string m_scheme = "http";
  int m_port = 0;
};

// The full path of a tool the tests run for real; records a failure naming the Debian
// package when it is missing (a missing tool must fail a test, never skip it).
std::string require_program(const std::string& program, const std::string& package);

// Runs `fn` and returns the exception of type E it throws; records a test failure and
// returns `fallback` when it throws none.
template <typename E, typename Fn>
E
thrown_by(Fn&& fn, E fallback)
{
  try {
    fn();
  } catch (const E& e) {
    return e;
  }
  ADD_FAILURE() << "the expected exception was not thrown";
  return fallback;
}

// The kiln::Error `fn` throws.
template <typename Fn>
Error
error_of(Fn&& fn)
{
  return thrown_by<Error>(std::forward<Fn>(fn), Error("", ""));
}

// The refusal of the crypto::VerificationError `fn` throws.
template <typename Fn>
crypto::Refusal
refusal_of(Fn&& fn)
{
  return thrown_by<crypto::VerificationError>(std::forward<Fn>(fn),
                                              crypto::VerificationError(crypto::Refusal::not_signed, "", ""))
    .refusal();
}

// Source tree paths.
fs::path source_dir();
fs::path support_dir();

// Whether the file system of `dir` opens files O_DIRECT (the kernel's answer).
bool o_direct_allowed(const fs::path& dir);

} // namespace kiln::test
