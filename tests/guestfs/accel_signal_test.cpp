// A build on a machine whose KVM passes a small probe but hangs a real appliance falls
// back to TCG by itself, says so once, remembers it, and the next build skips KVM at once;
// and SIGTERM in the middle of a stage ends a build promptly and cleanly. Both on a tiny
// base made here (static busybox, an os-release, a dpkg-query stand-in), each test in a
// cache of its own. The hanging KVM is tests/support/standin-hv (LIBGUESTFS_HV).
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <algorithm>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// A root file system tar that libguestfs inspects as Debian and kiln can build on.
fs::path
tiny_root_tar(const fs::path& dir)
{
  const fs::path root = dir / "root";
  const fs::path tar = dir / "root.tar";
  if (fs::exists(tar)) {
    return tar;
  }
  fs::create_directories(root / "bin");
  fs::copy_file(test::require_program("busybox", "busybox-static"), root / "bin/busybox");
  for (const char* tool : {"sh", "sleep", "echo", "cat", "rm", "mkdir", "true", "ls", "sync"}) {
    fs::create_symlink("busybox", root / "bin" / tool);
  }
  test::write_text(root / "etc/os-release", "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\n");
  test::write_text(root / "etc/debian_version", "12.0\n");
  test::write_text(root / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  test::write_text(root / "etc/group", "root:x:0:\n");
  test::write_text(root / "usr/bin/dpkg-query", "#!/bin/sh\nprintf 'busybox\\t1.35\\tamd64\\n'\n");
  fs::permissions(root / "usr/bin/dpkg-query", fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::create_directories(root / "var/lib/dpkg");
  fs::create_directories(root / "tmp");
  util::run_checked({"tar", "-C", root.string(), "--owner=0", "--group=0", "-cf", tar.string(), "."});
  return tar;
}

fs::path
write_recipe(const fs::path& dir, const std::string& name, const std::string& step)
{
  fs::path tar = tiny_root_tar(dir);
  test::write_text(dir / (name + ".yaml"), "name: " + name +
                                             "\n"
                                             "base: {path: " +
                                             tar.string() +
                                             ", format: tar}\n"
                                             "size: 64M\n"
                                             "sysprep: false\n"
                                             "trim: false\n"
                                             "outputs: {formats: [qcow2]}\n"
                                             "stages:\n"
                                             "  - name: s\n"
                                             "    steps:\n"
                                             "      - " +
                                             step + "\n");
  return dir / (name + ".yaml");
}

int
count(const std::string& text, const std::string& what)
{
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

std::string
standin()
{
  return (test::support_dir() / "standin-hv").string();
}

TEST(Accel, KvmThatHangsTheApplianceFallsBackOnceAndIsRemembered)
{
  test::ScratchDir dir;
  const fs::path cache = dir / "cache";
  const fs::path log = dir / "hv.log";
  const std::map<std::string, std::string> env{{"LIBGUESTFS_HV", standin()},
                                               {"KILN_TEST_HV_MODE", "hang-kvm-appliance"},
                                               {"KILN_TEST_HV_LOG", log.string()},
                                               {"KILN_ACCEL", ""}};
  fs::path recipe = write_recipe(dir.path(), "fallback", "file: {path: /etc/kiln-nonce, content: one}");
  auto first =
    test::run_kiln({"build", recipe.string(), "-o", (dir / "out1").string(), "--cache", cache.string(), "--json"}, env);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // Without -v the appliance's messages stay out of sight; notices (below) do not.
  EXPECT_EQ(count(first.err, "  | "), 0) << first.err;
  const bool have_kvm = ::access("/dev/kvm", R_OK | W_OK) == 0;
  std::string hv_log = test::read_text(log);
  if (!have_kvm) {
    // No KVM device: nothing is tried under KVM and nothing is said about it.
    EXPECT_EQ(count(hv_log, "kvm"), 0) << hv_log;
    EXPECT_EQ(count(first.err, "kvm unusable"), 0) << first.err;
    return;
  }
  // The probe kernel "booted" under the stand-in's KVM, the appliance hung under it and was
  // stopped at its deadline, and the build went on under TCG, saying so exactly once.
  EXPECT_EQ(count(hv_log, "kvm probe-passes"), 1) << hv_log;
  EXPECT_EQ(count(hv_log, "kvm hang appliance=1"), 1) << hv_log;
  EXPECT_GE(count(hv_log, "tcg appliance=1"), 1) << hv_log;
  EXPECT_EQ(count(first.err, "kvm unusable"), 1) << first.err;
  EXPECT_NE(first.err.find("the appliance did not come up under KVM within"), std::string::npos) << first.err;
  EXPECT_TRUE(fs::exists(dir / "out1/fallback.qcow2"));
  // Remembered for this machine (kernel, qemu, CPU, hypervisor) in the cache.
  std::vector<fs::path> records;
  for (const auto& e : fs::directory_iterator(cache / "accel")) {
    records.push_back(e.path());
  }
  ASSERT_EQ(records.size(), 1u);
  json record = json::parse(test::read_text(records[0]));
  EXPECT_EQ(record["accel"], "tcg") << record;
  EXPECT_NE(record["reason"].get<std::string>().find("did not come up under KVM"), std::string::npos) << record;

  // The next build (a changed stage: one launch) skips KVM at once: no KVM run at all.
  fs::remove(log);
  fs::path recipe2 = write_recipe(dir.path(), "fallback", "file: {path: /etc/kiln-nonce, content: two}");
  auto second = test::run_kiln(
    {"build", recipe2.string(), "-o", (dir / "out2").string(), "--cache", cache.string(), "--json"}, env);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(json::parse(second.out)["launches"], 1) << second.out;
  hv_log = test::read_text(log);
  EXPECT_EQ(count(hv_log, "kvm"), 0) << hv_log;
  EXPECT_EQ(count(hv_log, "tcg appliance=1"), 1) << hv_log;
  EXPECT_EQ(count(second.err, "kvm unusable (remembered: "), 1) << second.err;
}

// The processes whose command line mentions `needle` (the scratch cache: its qemu).
std::vector<std::string>
processes_mentioning(const std::string& needle)
{
  std::vector<std::string> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return found;
  }
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || std::to_string(::getpid()) == e->d_name) {
      continue;
    }
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) {
      std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
      found.push_back(std::string(e->d_name) + ": " + cmdline);
    }
  }
  ::closedir(proc);
  return found;
}

TEST(Signals, SigtermInTheMiddleOfAStageEndsTheBuildCleanly)
{
  test::ScratchDir dir;
  const fs::path cache = dir / "cache";
  const fs::path err = dir / "stderr.log";
  fs::path recipe = write_recipe(dir.path(), "sigterm", "run: 'echo kiln-test-sleeping; sleep 600'");
  // The stage's key, to show it was never published.
  auto plan = test::run_kiln({"plan", recipe.string(), "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  const std::string stage_key = json::parse(plan.out)["stages"][0]["key"];

  util::Child kiln({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>" + err.string(), KILN_BIN, "build", recipe.string(), "-o",
                    (dir / "out").string(), "--cache", cache.string()});
  // Wait (bounded) until the stage's step runs in the guest, then give it a moment.
  const auto until = std::chrono::steady_clock::now() + 600s;
  auto err_text = [&] { return fs::exists(err) ? test::read_text(err) : std::string(); };
  while (err_text().find("[1/1] run") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << err_text();
    int status = 0;
    ASSERT_EQ(::waitpid(kiln.pid(), &status, WNOHANG), 0) << "kiln exited early:\n" << err_text();
    std::this_thread::sleep_for(200ms);
  }
  std::this_thread::sleep_for(3s);
  ASSERT_FALSE(processes_mentioning(cache.string() + "/tmp/build.").empty()) << "no appliance is running";

  const auto sent = std::chrono::steady_clock::now();
  ::kill(kiln.pid(), SIGTERM);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(kiln.pid(), &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() - sent < 120s) {
    std::this_thread::sleep_for(100ms);
  }
  if (done == 0) {
    ::kill(kiln.pid(), SIGKILL);
    ::waitpid(kiln.pid(), &status, 0);
    FAIL() << "kiln build did not end within 120 s of SIGTERM\n" << test::read_text(err);
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  std::printf("[ measure  ] SIGTERM to exit: %.1f s\n", took);
  kiln.wait(); // reaped above; lets the Child forget its pid
  const std::string stderr_text = test::read_text(err);
  ASSERT_TRUE(WIFEXITED(status)) << stderr_text;
  EXPECT_EQ(WEXITSTATUS(status), 143) << stderr_text;
  // One line about the interruption; never a relaunch (a machine whose KVM fails the
  // probe says so once, before any launch; the appliance killed by the signal is not
  // taken for a KVM failure).
  EXPECT_EQ(count(stderr_text, "kiln: error: interrupted"), 1) << stderr_text;
  EXPECT_EQ(count(stderr_text, "did not come up under KVM"), 0) << stderr_text;
  EXPECT_LE(count(stderr_text, "kvm unusable"), 1) << stderr_text;
  EXPECT_EQ(count(stderr_text, "appliance: launching"), 1) << stderr_text; // the stages, once
  // The appliance is gone with it, scratch is removed, nothing is published.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(processes_mentioning(cache.string()), std::vector<std::string>{});
  EXPECT_TRUE(fs::is_empty(cache / "tmp"));
  EXPECT_FALSE(fs::exists(cache / "layers" / (stage_key + ".qcow2")));
  EXPECT_FALSE(fs::exists(cache / "layers" / (stage_key + ".json")));
  EXPECT_FALSE(fs::exists(dir / "out"));
}

} // namespace
} // namespace kiln
