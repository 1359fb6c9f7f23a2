// Handle::sh: a shell script run chrooted in the guest, its status and both streams
// returned (libguestfs's own sh call keeps neither the status nor stderr).
#include "image/guestfs/handle_impl.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln::gfs {

// --- commands ------------------------------------------------------------------------------

namespace {

// Removes a scratch directory inside the guest when the scope ends; errors are ignored
// (the directory is tiny, and a destructor must not throw).
class GuestTempDir {
public:
  GuestTempDir(guestfs_h* g, std::string path) : m_g(g), m_path(std::move(path)) {}
  GuestTempDir(const GuestTempDir&) = delete;
  GuestTempDir& operator=(const GuestTempDir&) = delete;
  ~GuestTempDir() { guestfs_rm_rf(m_g, m_path.c_str()); }
  const std::string& path() const { return m_path; }

private:
  guestfs_h* m_g;
  std::string m_path;
};

// Runs the uploaded script with its streams in files and prints the status on its own
// stdout. Positional: $1 script, $2 stdout file, $3 stderr file.
constexpr char k_sh_wrapper[] = "if [ -c /dev/null ]; then exec </dev/null; fi\n"
                                "/bin/sh \"$1\" >\"$2\" 2>\"$3\"\n"
                                "echo \"kiln-exit:$?\"\n";

} // namespace

CommandResult
Handle::sh(const std::string& script)
{
  Impl& im = impl();
  guestfs_h* g = im.g.get();
  // The guest's /tmp when it has one, else the root: either way a fresh private directory.
  int tmp_is_dir = guestfs_is_dir(g, "/tmp");
  std::string templ = (tmp_is_dir == 1 ? "/tmp" : "") + std::string("/.kiln-sh.XXXXXX");
  GuestTempDir dir(g, im.take_string(guestfs_mkdtemp(g, templ.c_str()), "sh", "mkdtemp " + templ));
  const std::string script_path = dir.path() + "/script";
  const std::string out_path = dir.path() + "/out";
  const std::string err_path = dir.path() + "/err";
  im.check(guestfs_write(g, script_path.c_str(), script.data(), script.size()), "sh", "write " + script_path);

  std::string wrapper = k_sh_wrapper;
  std::string name = "kiln-sh";
  std::vector<char*> argv = {const_cast<char*>("/bin/sh"),
                             const_cast<char*>("-c"),
                             wrapper.data(),
                             name.data(),
                             const_cast<char*>(script_path.c_str()),
                             const_cast<char*>(out_path.c_str()),
                             const_cast<char*>(err_path.c_str()),
                             nullptr};
  std::string status = im.take_string(guestfs_command(g, argv.data()), "sh", "/bin/sh");

  CommandResult result;
  const std::string marker = "kiln-exit:";
  size_t at = status.rfind(marker);
  if (at == std::string::npos) {
    throw Error(subject_of("sh", "/bin/sh"), "no exit status from the wrapper: " + one_line(status.c_str()));
  }
  result.exit_code = std::atoi(status.c_str() + at + marker.size());
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

} // namespace kiln::gfs
