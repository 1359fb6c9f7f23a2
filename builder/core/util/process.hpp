// Running other programs (qemu-img, mmdebstrap, test servers) without a shell:
// argv vectors only, output captured, exit status reported precisely.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kiln::util {

struct RunOptions {
  std::optional<std::string> stdin_data; // fed to the child, then closed
  std::map<std::string, std::string> env; // added to (or replacing in) the environment
  std::string cwd;
  bool capture_stdout = true; // else inherited
  bool capture_stderr = true;
  // Bytes of each captured stream kept (0: all); the rest is read and dropped, so a child
  // that writes without end cannot fill the memory (output of another machine's commands).
  std::size_t max_output = 0;
  // Every wait has a deadline: past it the child is stopped (SIGTERM, then SIGKILL after
  // `kill_grace`) and run() throws Error("ARGV0", "did not finish within N s").
  std::chrono::seconds timeout{3600};
  std::chrono::seconds kill_grace{5};
  // When the process is interrupted (SIGINT/SIGTERM/SIGHUP, util::interrupted()), the child
  // is stopped the same way and run() throws the interrupted error (exit 128+signal).
  bool stop_on_interrupt = true;
};

struct RunResult {
  int exit_code = -1; // exit status, or 128+signal when killed by a signal
  std::string out;
  std::string err;

  bool ok() const noexcept { return exit_code == 0; }
  // The last `lines` lines of stderr (or stdout when stderr is empty), for error messages.
  std::string tail(size_t lines = 5) const;
};

// Runs argv[0] (searched in PATH) to completion. Throws Error when the program cannot be
// started, outlives options.timeout, or the process is interrupted; a non-zero exit is
// reported in the result.
RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs and throws Error("ARGV0", "exit N: TAIL") on a non-zero exit.
RunResult run_checked(const std::vector<std::string>& argv, const RunOptions& options = {});

// A child process running in the background; killed (SIGTERM, then SIGKILL) and
// reaped when the object dies unless wait() was called.
class Child {
public:
  Child(const std::vector<std::string>& argv, const RunOptions& options = {});
  Child(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child& operator=(Child&&) = delete;
  ~Child();

  pid_t pid() const noexcept { return m_pid; }
  // File descriptor of the child's stdout when captured, else -1.
  int stdout_fd() const noexcept { return m_out; }
  // Reads one line from the child's stdout (blocking); nullopt at EOF.
  std::optional<std::string> read_line();
  int wait();
  void kill(int signal);

private:
  pid_t m_pid = -1;
  int m_out = -1;
  std::string m_buffer;
};

// Finds `program` in PATH; empty when absent.
std::string find_program(const std::string& program);

} // namespace kiln::util
