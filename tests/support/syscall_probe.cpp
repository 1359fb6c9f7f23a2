// syscall-probe: tries the kernel features tests/support/old-kernel takes away and prints
// one line per try, "NAME RESULT", RESULT being "ok" or the errno's name (ENOSYS, EISDIR,
// ...). tests/integration/old_kernel_test.cpp runs it with and without old-kernel.
//   syscall-probe DIR            the named probes, on files it makes in DIR
//   syscall-probe --numbers N... syscall(N, -1, -1, -1, -1, -1, -1) for each number (only
//                                under old-kernel: every argument is invalid, so a call the
//                                filter lets through fails harmlessly in the kernel)
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <linux/falloc.h>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

void
report(const std::string& name, long rc)
{
  const char* errno_name = rc < 0 ? strerrorname_np(errno) : nullptr;
  std::printf("%s %s\n", name.c_str(), rc >= 0 ? "ok" : errno_name != nullptr ? errno_name : "unknown-errno");
}

// Runs `call` on a fresh file of 64 KiB of data (closed afterwards).
long
on_data_file(const std::string& path, const std::function<long(int)>& call)
{
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return -1;
  }
  std::string data(65536, 'x');
  long rc = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) ? call(fd) : -1;
  int saved = errno;
  ::close(fd);
  errno = saved;
  return rc;
}

long
close_if_open(long fd)
{
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
  }
  return fd;
}

void
probe_features(const std::string& dir)
{
  char buffer[256] = {};
  report("getrandom", ::syscall(SYS_getrandom, buffer, 16, 0x1 /* GRND_NONBLOCK */));
  report("statx", ::syscall(SYS_statx, AT_FDCWD, dir.c_str(), 0, 0x7ffU /* STATX_BASIC_STATS */, buffer));
  report("memfd_create", close_if_open(::syscall(SYS_memfd_create, "probe", 0)));
  // A real kernel refuses a null clone_args with EINVAL; only one without clone3 says ENOSYS.
  report("clone3", ::syscall(SYS_clone3, nullptr, 0));
  report("close_range", ::syscall(SYS_close_range, 1000000U, 1000001U, 0U));

  std::string from = dir + "/rename-from";
  close_if_open(::open(from.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  report("renameat2", ::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, (dir + "/rename-to").c_str(),
                                1U /* RENAME_NOREPLACE */));
  report("copy_file_range", on_data_file(dir + "/copy-from", [&](int in) -> long {
           int out = ::open((dir + "/copy-to").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
           loff_t offset = 0;
           long rc = ::syscall(SYS_copy_file_range, in, &offset, out, nullptr, 4096, 0U);
           int saved = errno;
           ::close(out);
           errno = saved;
           return rc;
         }));

  report("open_o_tmpfile", close_if_open(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)));
  report("openat_o_tmpfile", close_if_open(::openat(AT_FDCWD, dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600)));
  report("openat_plain",
         close_if_open(::openat(AT_FDCWD, (dir + "/plain").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)));

  report("fallocate_allocate",
         on_data_file(dir + "/allocate", [](int fd) -> long { return ::fallocate(fd, 0, 0, 1 << 17); }));
  report("fallocate_keep_size", on_data_file(dir + "/keep-size", [](int fd) -> long {
           return ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 17);
         }));
  report("fallocate_punch_hole", on_data_file(dir + "/punch", [](int fd) -> long {
           return ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
         }));
  report("fallocate_zero_range",
         on_data_file(dir + "/zero", [](int fd) -> long { return ::fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096); }));
}

} // namespace

int
main(int argc, char** argv)
{
  if (argc < 2) {
    std::fprintf(stderr, "usage: syscall-probe DIR | syscall-probe --numbers N...\n");
    return 2;
  }
  if (std::string(argv[1]) == "--numbers") {
    for (int i = 2; i < argc; ++i) {
      long number = std::strtol(argv[i], nullptr, 10);
      report(argv[i], ::syscall(number, -1L, -1L, -1L, -1L, -1L, -1L));
    }
  } else {
    probe_features(argv[1]);
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}
