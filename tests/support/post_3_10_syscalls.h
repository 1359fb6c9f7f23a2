// Every x86_64 system call that Linux added after 3.10 (CentOS 7's kernel), with its
// number and the release it arrived in. tests/support/old-kernel makes each of them fail
// with ENOSYS, as a 3.10 kernel answers a number it does not know.
//
// Source: the kernel's x86_64 system call table, arch/x86/syscalls/syscall_64.tbl
// (arch/x86/entry/syscalls/syscall_64.tbl since 4.2): an entry is listed under the first
// release whose table has its line (`git log -S NAME -- arch/x86/*/syscall_64.tbl` in
// torvalds/linux names the commit); the man pages' VERSIONS sections agree. 3.10's table
// ends at 313, finit_module (3.8). Numbers 512-547 are the x32 ABI's, not x86_64's.
//
// Not listed: uretprobe (335, 6.11), which only the kernel's own uprobe trampoline calls
// and which newer kernels pass through seccomp filters unfiltered.
//
// A name the installed libseccomp does not know is skipped by old-kernel (it cannot add
// a rule for it by name); `old-kernel --list` prints the ones it blocks.
#pragma once

namespace kiln::test {

struct PostSyscall {
  const char* name;
  int number; // x86_64
  const char* since; // the Linux release that added it
};

inline constexpr PostSyscall k_post_3_10_syscalls[] = {
  {"sched_setattr", 314, "3.14"},
  {"sched_getattr", 315, "3.14"},
  {"renameat2", 316, "3.15"},
  {"seccomp", 317, "3.17"}, // old-kernel itself installs its filter before the block applies
  {"getrandom", 318, "3.17"},
  {"memfd_create", 319, "3.17"},
  {"kexec_file_load", 320, "3.17"},
  {"bpf", 321, "3.18"},
  {"execveat", 322, "3.19"},
  {"userfaultfd", 323, "4.3"},
  {"membarrier", 324, "4.3"},
  {"mlock2", 325, "4.4"},
  {"copy_file_range", 326, "4.5"},
  {"preadv2", 327, "4.6"},
  {"pwritev2", 328, "4.6"},
  {"pkey_mprotect", 329, "4.9"},
  {"pkey_alloc", 330, "4.9"},
  {"pkey_free", 331, "4.9"},
  {"statx", 332, "4.11"},
  {"io_pgetevents", 333, "4.18"},
  {"rseq", 334, "4.18"},
  {"pidfd_send_signal", 424, "5.1"},
  {"io_uring_setup", 425, "5.1"},
  {"io_uring_enter", 426, "5.1"},
  {"io_uring_register", 427, "5.1"},
  {"open_tree", 428, "5.2"},
  {"move_mount", 429, "5.2"},
  {"fsopen", 430, "5.2"},
  {"fsconfig", 431, "5.2"},
  {"fsmount", 432, "5.2"},
  {"fspick", 433, "5.2"},
  {"pidfd_open", 434, "5.3"},
  {"clone3", 435, "5.3"},
  {"close_range", 436, "5.9"},
  {"openat2", 437, "5.6"},
  {"pidfd_getfd", 438, "5.6"},
  {"faccessat2", 439, "5.8"},
  {"process_madvise", 440, "5.10"},
  {"epoll_pwait2", 441, "5.11"},
  {"mount_setattr", 442, "5.12"},
  {"quotactl_fd", 443, "5.14"}, // 443 was reserved for quotactl_path in 5.13, never enabled
  {"landlock_create_ruleset", 444, "5.13"},
  {"landlock_add_rule", 445, "5.13"},
  {"landlock_restrict_self", 446, "5.13"},
  {"memfd_secret", 447, "5.14"},
  {"process_mrelease", 448, "5.15"},
  {"futex_waitv", 449, "5.16"},
  {"set_mempolicy_home_node", 450, "5.17"},
  {"cachestat", 451, "6.5"},
  {"fchmodat2", 452, "6.6"},
  {"map_shadow_stack", 453, "6.6"},
  {"futex_wake", 454, "6.7"},
  {"futex_wait", 455, "6.7"},
  {"futex_requeue", 456, "6.7"},
  {"statmount", 457, "6.8"},
  {"listmount", 458, "6.8"},
  {"lsm_get_self_attr", 459, "6.8"},
  {"lsm_set_self_attr", 460, "6.8"},
  {"lsm_list_modules", 461, "6.8"},
  {"mseal", 462, "6.10"},
  {"setxattrat", 463, "6.13"},
  {"getxattrat", 464, "6.13"},
  {"listxattrat", 465, "6.13"},
  {"removexattrat", 466, "6.13"},
  {"open_tree_attr", 467, "6.15"},
  {"file_getattr", 468, "6.17"},
  {"file_setattr", 469, "6.17"},
};

} // namespace kiln::test
