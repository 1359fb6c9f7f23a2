#include "image/guestfs/accel_probe.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"

#include <guestfs.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <poll.h>
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kiln::gfs {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using nlohmann::json;

namespace {

// What the probe kernel prints when it got as far as mounting a root file system.
constexpr std::string_view k_panic_marker = "Kernel panic";
// TCG's boot must finish within this (a busy 2-core machine takes 6-12 s).
constexpr auto k_tcg_cap = std::chrono::seconds(180);
// KVM must reach the panic by this factor of TCG's time, plus a second.
constexpr double k_kvm_factor = 1.25;

// Function-local, so other translation units' static initialisers may use them.
struct ProcessState {
  std::mutex mutex;
  fs::path state_dir;
  std::optional<AccelDecision> decision; // this process's decision
};
ProcessState&
process_state()
{
  static ProcessState s;
  return s;
}

std::string
one_line(std::string text)
{
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    } else if (static_cast<unsigned char>(c) < 0x20) {
      c = '?';
    }
  }
  if (text.size() > 300) {
    text.resize(300);
  }
  return text;
}

std::string
seconds_text(double s)
{
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", s);
  return buf;
}

std::optional<AccelDecision>
override_from_env()
{
  const char* env = std::getenv("KILN_ACCEL");
  if (env == nullptr || *env == '\0') {
    return std::nullopt;
  }
  std::string value = env;
  if (value == "kvm") {
    return AccelDecision{Accel::kvm, "KILN_ACCEL=kvm", false, 0, 0};
  }
  if (value == "tcg") {
    return AccelDecision{Accel::tcg, "KILN_ACCEL=tcg", false, 0, 0};
  }
  return std::nullopt; // an unknown value is ignored: the probe decides
}

// One qemu boot of the probe kernel, its serial console on a pipe.
class BootRun {
public:
  BootRun(const std::string& hv, const fs::path& kernel, const std::string& accel) : m_accel(accel)
  {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      throw Error("pipe", errno_text(errno));
    }
    util::Fd read_end(fds[0]);
    util::Fd write_end(fds[1]);
    std::vector<std::string> argv{hv,
                                  "-no-user-config",
                                  "-nodefaults",
                                  "-display",
                                  "none",
                                  "-no-reboot",
                                  "-machine",
                                  "pc,accel=" + accel,
                                  "-cpu",
                                  "max",
                                  "-m",
                                  "256",
                                  "-kernel",
                                  kernel.string(),
                                  "-append",
                                  "console=ttyS0 panic=-1 loglevel=1",
                                  "-serial",
                                  "stdio"};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    int rc = ::posix_spawnp(&m_pid, hv.c_str(), &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      throw Error(hv, "cannot run: " + errno_text(rc));
    }
    m_fd = std::move(read_end);
    m_started = clock_type::now();
  }
  BootRun(const BootRun&) = delete;
  BootRun& operator=(const BootRun&) = delete;
  ~BootRun() { stop(); }

  int fd() const { return m_fd ? m_fd.get() : -1; }
  bool done() const { return m_done; }
  const KernelBoot& result() const { return m_result; }
  double elapsed() const { return std::chrono::duration<double>(clock_type::now() - m_started).count(); }

  // Reads what is ready; finishes the run at the panic marker or when qemu closed the console.
  void pump()
  {
    if (m_done || !m_fd) {
      return;
    }
    char buf[4096];
    ssize_t n = ::read(m_fd.get(), buf, sizeof(buf));
    if (n > 0) {
      if (m_output.size() < 65536) {
        m_output.append(buf, static_cast<size_t>(n));
      }
      if (m_output.find(k_panic_marker) != std::string::npos) {
        finish(true, "a real kernel booted under " + m_accel + " in " + seconds_text(elapsed()) + " s");
      }
      return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      return;
    }
    // qemu closed its console: it exited before the kernel got anywhere.
    int status = reap();
    std::string last;
    std::string out = m_output;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
      out.pop_back();
    }
    if (size_t nl = out.rfind('\n'); nl != std::string::npos) {
      last = out.substr(nl + 1);
    } else {
      last = out;
    }
    std::string why = "qemu (accel=" + m_accel + ") exited before the kernel booted";
    if (WIFEXITED(status)) {
      why += " (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
    } else if (WIFSIGNALED(status)) {
      why += " (signal " + std::to_string(WTERMSIG(status)) + ")";
    }
    if (!last.empty()) {
      why += ": " + last;
    }
    finish(false, why);
  }

  void time_out(double limit)
  {
    finish(false, "qemu (accel=" + m_accel + ") did not boot the probe kernel within " + seconds_text(limit) + " s");
  }

private:
  int reap()
  {
    int status = 0;
    if (m_pid > 0) {
      while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
      }
      m_pid = -1;
    }
    return status;
  }
  void stop()
  {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      reap();
    }
    m_fd = util::Fd();
  }
  void finish(bool panicked, const std::string& reason)
  {
    m_result.panicked = panicked;
    m_result.seconds = elapsed();
    m_result.reason = one_line(reason);
    m_done = true;
    stop();
  }

  std::string m_accel;
  pid_t m_pid = -1;
  util::Fd m_fd;
  std::string m_output;
  clock_type::time_point m_started;
  bool m_done = false;
  KernelBoot m_result;
};

// Polls the runs' consoles for up to `ms`.
void
poll_runs(std::initializer_list<BootRun*> runs, int ms)
{
  pollfd fds[2];
  BootRun* owners[2];
  nfds_t n = 0;
  for (BootRun* r : runs) {
    if (r != nullptr && !r->done() && r->fd() >= 0 && n < 2) {
      owners[n] = r;
      fds[n++] = {r->fd(), POLLIN, 0};
    }
  }
  if (n == 0) {
    return;
  }
  if (::poll(fds, n, ms) <= 0) {
    return;
  }
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].revents != 0) {
      owners[i]->pump();
    }
  }
}

fs::path
state_file()
{
  std::lock_guard lock(process_state().mutex);
  if (process_state().state_dir.empty()) {
    return {};
  }
  return process_state().state_dir / (machine_key() + ".json");
}

std::optional<AccelDecision>
read_remembered(const fs::path& file)
{
  if (file.empty()) {
    return std::nullopt;
  }
  const std::optional<std::string> text = util::read_file_within(file, 65536);
  if (!text) {
    return std::nullopt;
  }
  try {
    json j = json::parse(*text);
    AccelDecision d;
    std::string accel = j.at("accel").get<std::string>();
    if (accel != "kvm" && accel != "tcg") {
      return std::nullopt;
    }
    d.accel = accel == "kvm" ? Accel::kvm : Accel::tcg;
    d.reason = one_line(j.at("reason").get<std::string>());
    d.tcg_boot_seconds = j.value("tcg_boot_seconds", 0.0);
    d.kvm_boot_seconds = j.value("kvm_boot_seconds", 0.0);
    d.remembered = true;
    return d;
  } catch (const std::exception&) {
    return std::nullopt; // a damaged record is probed again, then rewritten
  }
}

void
write_remembered(const fs::path& file, const AccelDecision& d)
{
  if (file.empty()) {
    return;
  }
  try {
    fs::create_directories(file.parent_path());
    json j = {{"accel", accel_name(d.accel)},
              {"reason", d.reason},
              {"tcg_boot_seconds", d.tcg_boot_seconds},
              {"kvm_boot_seconds", d.kvm_boot_seconds},
              {"hypervisor", hypervisor()}};
    util::write_file_atomic(file, j.dump(2) + "\n");
  } catch (const std::exception&) {
    // Remembering is an optimisation: a read-only cache only costs the probe next time.
  }
}

} // namespace

const char*
accel_name(Accel accel)
{
  return accel == Accel::kvm ? "kvm" : "tcg";
}

void
set_accel_state_dir(const fs::path& dir)
{
  std::lock_guard lock(process_state().mutex);
  process_state().state_dir = dir;
}

fs::path
accel_state_dir()
{
  std::lock_guard lock(process_state().mutex);
  return process_state().state_dir;
}

std::string
hypervisor()
{
  if (const char* env = std::getenv("LIBGUESTFS_HV"); env != nullptr && *env != '\0') {
    return env;
  }
  guestfs_h* g = guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT);
  if (g == nullptr) {
    return "qemu-system-x86_64";
  }
  guestfs_set_error_handler(g, nullptr, nullptr);
  char* hv = guestfs_get_hv(g);
  std::string out = hv != nullptr ? hv : "qemu-system-x86_64";
  std::free(hv);
  guestfs_close(g);
  return out;
}

fs::path
probe_kernel()
{
  if (const char* env = std::getenv("SUPERMIN_KERNEL"); env != nullptr && *env != '\0') {
    return env;
  }
  std::vector<fs::path> kernels;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/boot", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("vmlinuz-", 0) == 0 && ::access(e.path().c_str(), R_OK) == 0) {
      kernels.push_back(e.path());
    }
  }
  if (kernels.empty()) {
    return {};
  }
  // The newest by version, as supermin picks it.
  std::sort(kernels.begin(), kernels.end(), [](const fs::path& a, const fs::path& b) {
    return ::strverscmp(a.filename().c_str(), b.filename().c_str()) < 0;
  });
  return kernels.back();
}

std::string
machine_key()
{
  std::string id;
  struct utsname u {};
  if (::uname(&u) == 0) {
    id += std::string("kernel=") + u.release + " " + u.version + "\n";
  }
  std::string hv = hypervisor();
  id += "hv=" + hv + "\n";
  try {
    util::RunOptions o;
    o.timeout = std::chrono::seconds(20);
    o.stop_on_interrupt = false;
    util::RunResult r = util::run({hv, "--version"}, o);
    id += "qemu=" + r.out.substr(0, r.out.find('\n')) + "\n";
  } catch (const std::exception&) {
    id += "qemu=?\n";
  }
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      id += "cpu=" + line.substr(line.find(':') + 1) + "\n";
      break;
    }
  }
  return crypto::sha256_hex(id).substr(0, 32);
}

KernelBoot
boot_probe_kernel(const std::string& accel, std::chrono::milliseconds deadline)
{
  fs::path kernel = probe_kernel();
  if (kernel.empty()) {
    return {false, 0, "no readable kernel in /boot to probe with (set SUPERMIN_KERNEL)"};
  }
  BootRun run(hypervisor(), kernel, accel);
  const double limit = static_cast<double>(deadline.count()) / 1000.0;
  while (!run.done()) {
    if (run.elapsed() >= limit) {
      run.time_out(limit);
      break;
    }
    poll_runs({&run}, 100);
  }
  return run.result();
}

namespace {

// One probe boot under TCG: its seconds, or 0 when it could not be timed (then the
// deadlines derived from the pace keep their fixed bounds).
double
timed_tcg_boot()
{
  try {
    KernelBoot tcg = boot_probe_kernel("tcg", std::chrono::duration_cast<std::chrono::milliseconds>(k_tcg_cap));
    return tcg.panicked ? tcg.seconds : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

} // namespace

AccelDecision
probe_acceleration_uncached()
{
  if (auto forced = override_from_env()) {
    return *forced;
  }
  // Cheap first: without a usable /dev/kvm qemu cannot use KVM at all. TCG's boot is still
  // timed: it is the machine's measured pace, which deadlines derive from
  // (tcg_launch_deadline, the tests' support/pace).
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    AccelDecision d{Accel::tcg, "/dev/kvm: " + errno_text(errno), false, 0, 0};
    d.tcg_boot_seconds = timed_tcg_boot();
    return d;
  }
  ::close(fd);
  fs::path kernel = probe_kernel();
  if (kernel.empty()) {
    return {Accel::tcg, "no readable kernel in /boot to prove KVM with (set SUPERMIN_KERNEL)", false, 0, 0};
  }
  AccelDecision d;
  try {
    const std::string hv = hypervisor();
    // Side by side: the same boot under KVM and under TCG.
    BootRun kvm(hv, kernel, "kvm");
    BootRun tcg(hv, kernel, "tcg");
    const double tcg_cap = std::chrono::duration<double>(k_tcg_cap).count();
    for (;;) {
      if (util::interrupted()) {
        return {Accel::tcg, "interrupted while probing KVM", false, 0, 0};
      }
      if (!tcg.done() && tcg.elapsed() >= tcg_cap) {
        tcg.time_out(tcg_cap);
      }
      // KVM's deadline: TCG's time (once known) by a factor, else the cap.
      double kvm_limit = tcg.done() && tcg.result().panicked ? tcg.result().seconds * k_kvm_factor + 1.0 : tcg_cap;
      if (!kvm.done() && kvm.elapsed() >= kvm_limit) {
        kvm.time_out(kvm_limit);
      }
      if (kvm.done() && tcg.done()) {
        break;
      }
      poll_runs({&kvm, &tcg}, 100);
    }
    d.tcg_boot_seconds = tcg.result().panicked ? tcg.result().seconds : 0;
    d.kvm_boot_seconds = kvm.result().panicked ? kvm.result().seconds : 0;
    if (kvm.result().panicked) {
      d.accel = Accel::kvm;
      d.reason =
        kvm.result().reason + (tcg.result().panicked ? " (TCG: " + seconds_text(tcg.result().seconds) + " s)" : "");
    } else {
      d.accel = Accel::tcg;
      d.reason = kvm.result().reason;
    }
  } catch (const std::exception& e) {
    d = {Accel::tcg, one_line(std::string("kvm probe failed: ") + e.what()), false, 0, 0};
  }
  return d;
}

AccelDecision
probe_acceleration()
{
  if (auto forced = override_from_env()) {
    return *forced;
  }
  {
    std::lock_guard lock(process_state().mutex);
    if (process_state().decision) {
      return *process_state().decision;
    }
  }
  fs::path file = state_file();
  std::optional<AccelDecision> d = read_remembered(file);
  if (!d) {
    d = probe_acceleration_uncached();
    if (!util::interrupted()) {
      write_remembered(file, *d);
    }
  } else if (d->tcg_boot_seconds <= 0) {
    // Remembered without TCG's pace (by an older kiln, or when the probe could not time
    // it): the decision stands, the pace that deadlines derive from is measured now.
    d->tcg_boot_seconds = timed_tcg_boot();
    if (d->tcg_boot_seconds > 0 && !util::interrupted()) {
      write_remembered(file, *d);
    }
  }
  std::lock_guard lock(process_state().mutex);
  if (!process_state().decision) {
    process_state().decision = *d;
  }
  return *process_state().decision;
}

fs::path
record_kvm_failure(const std::string& reason)
{
  AccelDecision d;
  {
    std::lock_guard lock(process_state().mutex);
    if (process_state().decision) {
      d = *process_state().decision;
    }
  }
  d.accel = Accel::tcg;
  d.remembered = false;
  d.reason = one_line(reason);
  fs::path file = state_file();
  write_remembered(file, d);
  std::lock_guard lock(process_state().mutex);
  process_state().decision = d;
  return file;
}

std::chrono::seconds
kvm_launch_deadline(const AccelDecision& decision)
{
  double tcg = decision.tcg_boot_seconds > 0 ? decision.tcg_boot_seconds : 12.0;
  auto s = static_cast<long>(tcg * 4.0 + 10.0);
  return std::chrono::seconds(std::max(30L, s));
}

std::chrono::seconds
tcg_launch_deadline(const AccelDecision& decision)
{
  if (decision.tcg_boot_seconds <= 0) {
    return std::chrono::seconds(900);
  }
  auto s = static_cast<long>(decision.tcg_boot_seconds * 2.5 * 12.0);
  return std::chrono::seconds(std::max(180L, s));
}

} // namespace kiln::gfs
