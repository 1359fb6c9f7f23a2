// old-kernel PROGRAM ARGS...: runs PROGRAM as if on Linux 3.10 (CentOS 7's kernel), on
// x86_64, so the tests find what kiln-node would meet on such a node. It installs a
// seccomp filter (set with no_new_privs, kept across execve and by every child) and
// execvp's PROGRAM. The filter:
//   - fails every system call added after 3.10 with ENOSYS (post_3_10_syscalls.h);
//   - fails open/openat with O_TMPFILE with EISDIR, as 3.10 does;
//   - fails fallocate modes 3.10 does not have, and PUNCH_HOLE, with EOPNOTSUPP.
// Everything else reaches the real kernel. `old-kernel --list` prints the system calls it
// blocks ("NAME NUMBER SINCE"). A setup failure is one line,
// "old-kernel: error: SUBJECT: REASON", and exit status 127.
#include "support/post_3_10_syscalls.h"

#include <seccomp.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <memory>
#include <string>
#include <unistd.h>

namespace {

using kiln::test::k_post_3_10_syscalls;

[[noreturn]] void
fail(const std::string& subject, const std::string& reason)
{
  std::fprintf(stderr, "old-kernel: error: %s: %s\n", subject.c_str(), reason.c_str());
  std::exit(127);
}

struct FilterRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterRelease>;

// libseccomp returns -errno.
void
check(int rc, const std::string& subject)
{
  if (rc < 0) {
    fail(subject, std::strerror(-rc));
  }
}

// 3.10 does not know O_TMPFILE (Linux 3.11: "[O_TMPFILE] it's still short a few helpers,
// but infrastructure should be OK now"). O_TMPFILE is __O_TMPFILE | O_DIRECTORY precisely
// so that an old kernel, ignoring the unknown bit, opens the directory with a write mode
// and fails: open(2), ERRORS, "EISDIR ... O_TMPFILE and one of O_WRONLY or O_RDWR were
// specified in flags, but this kernel version does not provide the O_TMPFILE
// functionality". The filter gives EISDIR whenever the __O_TMPFILE bit is set. (O_TMPFILE |
// O_RDONLY, which 3.10 would open as a plain directory, is refused by every kernel that
// knows O_TMPFILE, so no caller relies on it.) openat2 (5.6) is ENOSYS already.
void
add_o_tmpfile_rules(scmp_filter_ctx ctx)
{
  constexpr scmp_datum_t tmpfile_bit = __O_TMPFILE;
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EISDIR), SCMP_SYS(open), 1,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, tmpfile_bit, tmpfile_bit)),
        "open O_TMPFILE rule");
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EISDIR), SCMP_SYS(openat), 1,
                         SCMP_A2(SCMP_CMP_MASKED_EQ, tmpfile_bit, tmpfile_bit)),
        "openat O_TMPFILE rule");
}

// fallocate(2) on 3.10 (fs/open.c, do_fallocate) fails with EOPNOTSUPP for any mode bit
// but FALLOC_FL_KEEP_SIZE and FALLOC_FL_PUNCH_HOLE: ZERO_RANGE and COLLAPSE_RANGE came in
// 3.15, INSERT_RANGE in 4.1, UNSHARE_RANGE in 4.5, WRITE_ZEROES in 6.17 (fallocate(2)).
// PUNCH_HOLE itself works on 3.10 for regular files of ext4, xfs and tmpfs, but not on
// block devices: blkdev_fallocate, which gives it a meaning there, is Linux 4.9 (commit
// 25f4c41415e5 "block: implement (some of) fallocate for block devices"). A seccomp
// filter cannot see what kind of file a descriptor is, so this one refuses PUNCH_HOLE on
// every descriptor: stricter than 3.10, and kiln-node must (and does) fall back to
// writing zeros wherever it punches.
void
add_fallocate_rules(scmp_filter_ctx ctx)
{
  for (unsigned bit = 0; bit < 32; ++bit) {
    scmp_datum_t mode_bit = scmp_datum_t{1} << bit;
    if (mode_bit == FALLOC_FL_KEEP_SIZE) {
      continue;
    }
    check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EOPNOTSUPP), SCMP_SYS(fallocate), 1,
                           SCMP_A1(SCMP_CMP_MASKED_EQ, mode_bit, mode_bit)),
          "fallocate mode bit " + std::to_string(bit) + " rule");
  }
}

Filter
make_filter()
{
  // SCMP_ACT_ALLOW by default: only what 3.10 lacks is refused. The filter is for the
  // native ABI (x86_64); a system call of another ABI (i386, x32) gets libseccomp's
  // default bad-architecture action, SCMP_ACT_KILL, and nothing under test makes one. SCMP_FLTATR_CTL_NNP (on by default) sets no_new_privs
  // when the filter is loaded, which lets an unprivileged caller load it too.
  Filter ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) {
    fail("seccomp_init", "cannot create a filter");
  }
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 1), "no_new_privs");
  for (const auto& call : k_post_3_10_syscalls) {
    int number = seccomp_syscall_resolve_name(call.name);
    if (number == __NR_SCMP_ERROR) {
      continue; // newer than the installed libseccomp: it cannot name it
    }
    if (number != call.number) {
      fail(call.name,
           "libseccomp numbers it " + std::to_string(number) + ", post_3_10_syscalls.h " + std::to_string(call.number));
    }
    check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), number, 0), call.name);
  }
  add_o_tmpfile_rules(ctx.get());
  add_fallocate_rules(ctx.get());
  return ctx;
}

void
list_blocked()
{
  for (const auto& call : k_post_3_10_syscalls) {
    if (seccomp_syscall_resolve_name(call.name) != __NR_SCMP_ERROR) {
      std::printf("%s %d %s\n", call.name, call.number, call.since);
    }
  }
}

} // namespace

int
main(int argc, char** argv)
{
  if (argc < 2) {
    fail("usage", "old-kernel PROGRAM ARGS... | old-kernel --list");
  }
  if (std::string(argv[1]) == "--list") {
    list_blocked();
    return 0;
  }
  Filter filter = make_filter();
  // seccomp(2) is among the blocked calls, and this load is the last one it answers.
  check(seccomp_load(filter.get()), "seccomp_load");
  filter.reset();
  execvp(argv[1], argv + 1);
  fail(argv[1], std::strerror(errno));
}
