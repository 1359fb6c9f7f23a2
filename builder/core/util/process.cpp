#include "core/util/process.hpp"

#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kiln::util {

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe()
  {
    if (::pipe2(fd, O_CLOEXEC) != 0) {
      throw Error("pipe", errno_text(errno));
    }
  }
  ~Pipe()
  {
    for (int f : fd) {
      if (f >= 0) {
        ::close(f);
      }
    }
  }
  int take(int i)
  {
    int f = fd[i];
    fd[i] = -1;
    return f;
  }
};

std::vector<std::string>
make_env(const std::map<std::string, std::string>& extra)
{
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    if (extra.count(name) == 0) {
      env.push_back(entry);
    }
  }
  for (const auto& [k, v] : extra) {
    env.push_back(k + "=" + v);
  }
  return env;
}

int
decode_status(int status)
{
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

// fork+exec with the given pipe ends as stdin/stdout/stderr (-1: inherit, -2: /dev/null).
pid_t
spawn(const std::vector<std::string>& argv, const RunOptions& options, int in, int out, int err)
{
  if (argv.empty()) {
    throw Error("run", "empty command");
  }
  std::string program = argv[0].find('/') == std::string::npos ? find_program(argv[0]) : argv[0];
  if (program.empty()) {
    throw Error(argv[0], "program not found in PATH");
  }
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  std::vector<std::string> env = make_env(options.env);
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  Pipe status; // reports an exec failure back to the parent
  pid_t pid = ::fork();
  if (pid < 0) {
    throw Error(argv[0], "fork failed: " + errno_text(errno));
  }
  if (pid == 0) {
    auto redirect = [](int from, int to) {
      if (from == -2) {
        from = ::open("/dev/null", O_RDWR);
      }
      if (from >= 0) {
        ::dup2(from, to);
      }
    };
    redirect(in, 0);
    redirect(out, 1);
    redirect(err, 2);
    ::signal(SIGPIPE, SIG_DFL);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) {
      int e = errno;
      ssize_t ignored = ::write(status.fd[1], &e, sizeof(e));
      (void)ignored;
      ::_exit(127);
    }
    ::execve(program.c_str(), args.data(), envp.data());
    int e = errno;
    ssize_t ignored = ::write(status.fd[1], &e, sizeof(e));
    (void)ignored;
    ::_exit(127);
  }
  ::close(status.take(1));
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(status.fd[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(child_errno)) {
    int st;
    ::waitpid(pid, &st, 0);
    throw Error(argv[0], "cannot run: " + errno_text(child_errno));
  }
  return pid;
}

} // namespace

std::string
find_program(const std::string& program)
{
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) {
      end = dirs.size();
    }
    std::string candidate = dirs.substr(start, end - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return {};
}

std::string
RunResult::tail(size_t lines) const
{
  const std::string& text = err.empty() ? out : err;
  size_t end = text.find_last_not_of("\n ");
  if (end == std::string::npos) {
    return {};
  }
  size_t pos = end + 1;
  size_t count = 0;
  while (pos > 0 && count < lines) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    pos = nl;
    ++count;
  }
  std::string out_text = text.substr(pos == 0 ? 0 : pos + 1, end + 1 - (pos == 0 ? 0 : pos + 1));
  for (auto& c : out_text) {
    if (c == '\n') {
      c = '|';
    }
  }
  return out_text;
}

RunResult
run(const std::vector<std::string>& argv, const RunOptions& options)
{
  Pipe in, out, err;
  pid_t pid = spawn(argv, options, options.stdin_data ? in.fd[0] : -2, options.capture_stdout ? out.fd[1] : -1,
                    options.capture_stderr ? err.fd[1] : -1);
  ::close(in.take(0));
  ::close(out.take(1));
  ::close(err.take(1));
  RunResult result;
  std::string_view input = options.stdin_data ? std::string_view(*options.stdin_data) : std::string_view();
  if (!options.stdin_data || input.empty()) {
    ::close(in.take(1));
  }
  // Pump stdin, stdout and stderr together so neither side can block the other, waking
  // every 200 ms to notice the deadline, an interrupt, or a child that exited while a
  // grandchild still holds its pipes.
  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  const auto deadline = started + options.timeout;
  int status = 0;
  bool reaped = false;
  auto stop_child = [&](const Error& why) {
    ::kill(pid, SIGTERM);
    const auto grace_end = clock::now() + options.kill_grace;
    while (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) {
        reaped = true;
      } else if (clock::now() >= grace_end) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        reaped = true;
      } else {
        ::usleep(20000);
      }
    }
    throw why;
  };
  for (;;) {
    if (options.stop_on_interrupt && interrupted()) {
      stop_child(Error("interrupted", argv[0] + " stopped by a signal", interrupted_exit_code()));
    }
    if (clock::now() >= deadline) {
      stop_child(Error(argv[0], "did not finish within " + std::to_string(options.timeout.count()) + " s"));
    }
    if (!reaped) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        reaped = true;
      }
    }
    pollfd fds[3];
    nfds_t n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in.fd[1] >= 0) {
      idx_in = static_cast<int>(n);
      fds[n++] = {in.fd[1], POLLOUT, 0};
    }
    if (out.fd[0] >= 0) {
      idx_out = static_cast<int>(n);
      fds[n++] = {out.fd[0], POLLIN, 0};
    }
    if (err.fd[0] >= 0) {
      idx_err = static_cast<int>(n);
      fds[n++] = {err.fd[0], POLLIN, 0};
    }
    if (n == 0 || (reaped && idx_out < 0 && idx_err < 0)) {
      if (reaped) {
        break;
      }
      ::usleep(20000);
      continue;
    }
    int ready = ::poll(fds, n, 200);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (ready == 0) {
      if (reaped) {
        // The child is gone; a grandchild that kept its pipes open does not hold us.
        break;
      }
      continue;
    }
    if (idx_in >= 0 && fds[idx_in].revents != 0) {
      ssize_t w = ::write(in.fd[1], input.data(), std::min<size_t>(input.size(), 65536));
      if (w > 0) {
        input.remove_prefix(static_cast<size_t>(w));
      }
      if (w < 0 && errno != EINTR && errno != EAGAIN) {
        input = {};
      }
      if (input.empty()) {
        ::close(in.take(1));
      }
    }
    for (auto [idx, pipe, sink] : {std::tuple{idx_out, &out, &result.out}, std::tuple{idx_err, &err, &result.err}}) {
      if (idx >= 0 && fds[idx].revents != 0) {
        char buf[65536];
        ssize_t r = ::read(pipe->fd[0], buf, sizeof(buf));
        if (r > 0) {
          const std::size_t room = options.max_output == 0
                                     ? static_cast<size_t>(r)
                                     : options.max_output - std::min(options.max_output, sink->size());
          sink->append(buf, std::min(room, static_cast<size_t>(r)));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(pipe->take(0));
        }
      }
    }
  }
  while (!reaped) {
    if (::waitpid(pid, &status, 0) >= 0 || errno != EINTR) {
      reaped = true;
    }
  }
  result.exit_code = decode_status(status);
  return result;
}

RunResult
run_checked(const std::vector<std::string>& argv, const RunOptions& options)
{
  RunResult result = run(argv, options);
  if (!result.ok()) {
    std::string tail = result.tail();
    throw Error(argv[0], "exit status " + std::to_string(result.exit_code) + (tail.empty() ? "" : ": " + tail));
  }
  return result;
}

Child::Child(const std::vector<std::string>& argv, const RunOptions& options)
{
  Pipe out;
  m_pid = spawn(argv, options, -2, options.capture_stdout ? out.fd[1] : -1, options.capture_stderr ? -2 : -1);
  if (options.capture_stdout) {
    m_out = out.take(0);
  }
}

Child::Child(Child&& other) noexcept : m_pid(other.m_pid), m_out(other.m_out), m_buffer(std::move(other.m_buffer))
{
  other.m_pid = -1;
  other.m_out = -1;
}

Child::~Child()
{
  if (m_pid > 0) {
    kill(SIGTERM);
    for (int i = 0; i < 50; ++i) {
      int status;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        break;
      }
      ::usleep(20000);
    }
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      int status;
      ::waitpid(m_pid, &status, 0);
    }
  }
  if (m_out >= 0) {
    ::close(m_out);
  }
}

std::optional<std::string>
Child::read_line()
{
  for (;;) {
    size_t nl = m_buffer.find('\n');
    if (nl != std::string::npos) {
      std::string line = m_buffer.substr(0, nl);
      m_buffer.erase(0, nl + 1);
      return line;
    }
    if (m_out < 0) {
      return std::nullopt;
    }
    char buf[4096];
    ssize_t r = ::read(m_out, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return std::nullopt;
    }
    m_buffer.append(buf, static_cast<size_t>(r));
  }
}

int
Child::wait()
{
  int status = 0;
  while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
  }
  m_pid = -1;
  return decode_status(status);
}

void
Child::kill(int signal)
{
  if (m_pid > 0) {
    ::kill(m_pid, signal);
  }
}

} // namespace kiln::util
