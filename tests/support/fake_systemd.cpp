#include "support/fake_systemd.hpp"

#include "support/test_support.hpp"

#include <csignal>
#include <cstdlib>
#include <string>

namespace kiln::test {

namespace fs = std::filesystem;

namespace {

fs::path
bin_dir()
{
  return fs::path(KILN_TEST_SUPPORT_DIR) / "fake-systemd";
}

} // namespace

FakeSystemd::FakeSystemd(const fs::path& dir) : dir_(dir)
{
  fs::create_directories(dir_ / "units");
}

FakeSystemd::~FakeSystemd()
{
  std::error_code ec;
  for (fs::directory_iterator it(dir_ / "units", ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".pid") {
      continue;
    }
    // The worker of a --no-block start leads its own process group (setsid).
    pid_t pid = static_cast<pid_t>(std::atoi(read_text(it->path()).c_str()));
    if (pid > 1) {
      ::kill(-pid, SIGKILL);
    }
  }
}

std::map<std::string, std::string>
FakeSystemd::env() const
{
  const char* path = std::getenv("PATH");
  return {{"KILN_FAKE_SYSTEMD", dir_.string()}, {"PATH", bin_dir().string() + ":" + (path ? path : "/usr/bin:/bin")}};
}

void
FakeSystemd::set_exec(const std::string& unit, const std::string& bash) const
{
  write_text(dir_ / "units" / (unit + ".exec"), bash);
}

fs::path
FakeSystemd::journald() const
{
  return bin_dir() / "journald";
}

std::string
FakeSystemd::calls() const
{
  return fs::exists(dir_ / "calls") ? read_text(dir_ / "calls") : std::string();
}

} // namespace kiln::test
