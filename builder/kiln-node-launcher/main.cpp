// The launcher of the kiln-node artifact, installed as /usr/bin/kiln-node. It is linked
// statically (no loader, no library of the host) and does one thing: run the real
// kiln-node, LIBDIR/kiln-node, with the ELF loader and the libraries the artifact carries,
//   LIBDIR/lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path LIBDIR/lib
//                                   --argv0 ARGV0 LIBDIR/kiln-node ARGS...
// where LIBDIR is ../lib/kiln/node next to the launcher's own directory. The library path
// is an argument of the loader, not LD_LIBRARY_PATH, so the processes kiln-node starts
// (systemctl, mount, xfs_growfs) see the node's own libraries, and --inhibit-cache keeps
// the node's /etc/ld.so.cache out. See ARCHITECTURE.md, "The kiln-node artifact".
//
// Plain C calls only: no iostream, no exceptions, so the static binary stays small.
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace {

constexpr const char* k_libdir = "/../lib/kiln/node";

[[noreturn]] void
fail(const char* subject, const char* reason)
{
  std::fprintf(stderr, "kiln-node: error: %s: %s\n", subject, reason);
  std::exit(127);
}

// The directory holding this launcher: /proc/self/exe, else argv[0] when it is a path
// (an installer ramdisk without /proc).
void
own_dir(const char* argv0, char* out, std::size_t size)
{
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
  } else if (argv0 != nullptr && std::strchr(argv0, '/') != nullptr && realpath(argv0, self) != nullptr) {
    // resolved from argv[0]
  } else {
    fail("launcher", "cannot find its own path (/proc/self/exe unreadable and argv[0] is not a path)");
  }
  char* slash = std::strrchr(self, '/');
  if (slash == nullptr) {
    fail(self, "not an absolute path");
  }
  *slash = '\0';
  if (std::strlen(self) + std::strlen(k_libdir) + 64 >= size) {
    fail(self, "path too long");
  }
  std::snprintf(out, size, "%s%s", self, k_libdir);
}

} // namespace

int
main(int argc, char** argv)
{
  char libdir[PATH_MAX];
  own_dir(argc > 0 ? argv[0] : nullptr, libdir, sizeof(libdir));
  char loader[PATH_MAX + 64];
  char libpath[PATH_MAX + 64];
  char program[PATH_MAX + 64];
  std::snprintf(loader, sizeof(loader), "%s/lib/ld-linux-x86-64.so.2", libdir);
  std::snprintf(libpath, sizeof(libpath), "%s/lib", libdir);
  std::snprintf(program, sizeof(program), "%s/kiln-node", libdir);

  const int fixed = 7;
  char** args = static_cast<char**>(std::calloc(static_cast<std::size_t>(argc) + fixed + 1, sizeof(char*)));
  if (args == nullptr) {
    fail("launcher", "out of memory");
  }
  args[0] = loader;
  args[1] = const_cast<char*>("--inhibit-cache");
  args[2] = const_cast<char*>("--library-path");
  args[3] = libpath;
  args[4] = const_cast<char*>("--argv0");
  args[5] = argc > 0 ? argv[0] : const_cast<char*>("kiln-node");
  args[6] = program;
  for (int i = 1; i < argc; ++i) {
    args[fixed + i - 1] = argv[i];
  }
  execv(loader, args);
  fail(loader, std::strerror(errno));
}
