// A fake systemd for the DC/OS first-boot script: tests/support/fake-systemd/systemctl and
// journalctl first on PATH, their state in a scratch directory ($KILN_FAKE_SYSTEMD). The
// test says what a unit's main process does (a bash snippet); systemctl show reports the
// unit's states as systemd 219 prints them. The destructor stops what a --no-block start
// left running.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace kiln::test {

class FakeSystemd {
public:
  explicit FakeSystemd(const std::filesystem::path& dir);
  ~FakeSystemd();
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  // KILN_FAKE_SYSTEMD and PATH for the process under test.
  std::map<std::string, std::string> env() const;
  // What UNIT's main process runs (its output goes to the fake journal).
  void set_exec(const std::string& unit, const std::string& bash) const;
  // The fake journald (the reader of a service's stdout that `restart systemd-journald` kills).
  std::filesystem::path journald() const;
  // Every systemctl and journalctl call, one a line.
  std::string calls() const;
  const std::filesystem::path& dir() const { return dir_; }

private:
  std::filesystem::path dir_;
};

} // namespace kiln::test
