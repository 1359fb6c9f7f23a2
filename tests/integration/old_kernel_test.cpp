// tests/support/old-kernel, the Linux 3.10 stand-in the integration.el7.* tests run
// kiln-node under: syscall-probe shows, with and without it, that the filter takes away
// exactly what it claims (post-3.10 system calls, O_TMPFILE, fallocate modes), that a
// child's child is filtered too, and that test::run_kiln_node runs kiln-node through
// $KILN_NODE_WRAPPER.
#include "support/post_3_10_syscalls.h"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

const std::string k_old_kernel = KILN_OLD_KERNEL_BIN;
const std::string k_probe = KILN_SYSCALL_PROBE_BIN;

// "NAME RESULT" lines -> {NAME: RESULT}.
std::map<std::string, std::string>
results(const util::RunResult& r)
{
  EXPECT_TRUE(r.ok()) << r.err << r.out;
  std::map<std::string, std::string> out;
  for (const auto& line : test::lines(r.out)) {
    std::istringstream words(line);
    std::string name, result;
    words >> name >> result;
    out[name] = result;
  }
  return out;
}

// What syscall-probe reports under old-kernel (Linux 3.10).
const std::map<std::string, std::string> k_on_3_10 = {
  {"getrandom", "ENOSYS"},
  {"statx", "ENOSYS"},
  {"memfd_create", "ENOSYS"},
  {"clone3", "ENOSYS"},
  {"close_range", "ENOSYS"},
  {"renameat2", "ENOSYS"},
  {"copy_file_range", "ENOSYS"},
  {"open_o_tmpfile", "EISDIR"},
  {"openat_o_tmpfile", "EISDIR"},
  {"openat_plain", "ok"},
  {"fallocate_allocate", "ok"},
  {"fallocate_keep_size", "ok"},
  {"fallocate_punch_hole", "EOPNOTSUPP"},
  {"fallocate_zero_range", "EOPNOTSUPP"},
};

TEST(old_kernel, takes_away_what_linux_3_10_lacks_and_nothing_else)
{
  ScratchDir control_dir;
  auto control = results(util::run({k_probe, control_dir.path().string()}));
  ScratchDir old_dir;
  auto old = results(util::run({k_old_kernel, k_probe, old_dir.path().string()}));
  EXPECT_EQ(old, k_on_3_10);
  // The control: this kernel has all of it (clone3 refuses the null argument).
  ASSERT_EQ(control.size(), k_on_3_10.size());
  for (const auto& [name, result] : control) {
    EXPECT_EQ(result, name == "clone3" ? "EINVAL" : "ok") << name;
  }
}

TEST(old_kernel, every_system_call_it_lists_fails_with_enosys)
{
  auto list = util::run({k_old_kernel, "--list"});
  ASSERT_TRUE(list.ok()) << list.err;
  std::vector<std::string> argv = {k_old_kernel, k_probe, "--numbers"};
  std::map<std::string, std::string> listed; // number -> name
  for (const auto& line : test::lines(list.out)) {
    std::istringstream words(line);
    std::string name, number, since;
    words >> name >> number >> since;
    listed[number] = name;
    argv.push_back(number);
  }
  // The installed libseccomp (2.5.4 on Debian 12) names at least everything up to 5.17.
  ASSERT_GE(listed.size(), 50u) << list.out;
  for (const char* name : {"getrandom", "renameat2", "clone3", "close_range", "statx", "seccomp"}) {
    bool found = false;
    for (const auto& entry : listed) {
      found = found || entry.second == name;
    }
    EXPECT_TRUE(found) << name << " is not blocked:\n" << list.out;
  }
  auto answers = results(util::run(argv));
  EXPECT_EQ(answers.size(), listed.size());
  for (const auto& [number, result] : answers) {
    EXPECT_EQ(result, "ENOSYS") << listed[number] << " (" << number << ")";
  }
}

TEST(old_kernel, a_child_of_a_child_is_filtered)
{
  ScratchDir dir;
  // sh forks a child (a background job) that runs sh, whose own background job runs the
  // probe: two forks and three execs below the filter's installation.
  std::string inner = "'" + k_probe + "' '" + dir.path().string() + "' & wait";
  auto r = util::run({k_old_kernel, "sh", "-c", "sh -c \"" + inner + "\" & wait"});
  EXPECT_EQ(results(r), k_on_3_10);
}

TEST(old_kernel, setup_errors_are_one_line_with_exit_127)
{
  auto r = util::run({k_old_kernel});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_EQ(r.err.rfind("old-kernel: error: usage: ", 0), 0u) << r.err;
  EXPECT_EQ(test::lines(r.err).size(), 1u) << r.err;
  r = util::run({k_old_kernel, "/nonexistent/program"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_EQ(r.err, "old-kernel: error: /nonexistent/program: No such file or directory\n");
}

TEST(old_kernel, run_kiln_node_runs_kiln_node_through_the_wrapper)
{
  ScratchDir dir;
  // A wrapper that notes its command line, then runs it under old-kernel as the el7 run does.
  fs::path wrapper = dir / "wrapper";
  fs::path log = dir / "log";
  test::write_text(wrapper, "#!/bin/sh\necho \"$@\" >> '" + log.string() + "'\nexec '" + k_old_kernel + "' \"$@\"\n");
  fs::permissions(wrapper, fs::perms::owner_all);
  test::EnvVar env("KILN_NODE_WRAPPER", wrapper.c_str());
  auto r = test::run_kiln_node({"--version"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out.rfind("kiln-node " KILN_VERSION, 0), 0u) << r.out;
  EXPECT_EQ(test::read_text(log), std::string(KILN_NODE_TEST_BIN) + " --version\n");
}

} // namespace
} // namespace kiln
