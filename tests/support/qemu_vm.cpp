#include "support/qemu_vm.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "image/guestfs/guestfs.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace kiln::test {

namespace {

using clock = std::chrono::steady_clock;

std::string
read_all(const fs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  std::erase(text, '\r');
  return text;
}

std::string
last_lines(const std::string& text, size_t lines)
{
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') {
    --pos;
  }
  for (size_t n = 0; n < lines; ++n) {
    size_t nl = pos == 0 ? std::string::npos : text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      return text;
    }
    pos = nl;
  }
  return text.substr(pos + 1);
}

// qemu's option parser takes ",," for a literal comma.
std::string
qemu_escape(const std::string& s)
{
  std::string out;
  for (char c : s) {
    out += c;
    if (c == ',') {
      out += ',';
    }
  }
  return out;
}

} // namespace

void
make_overlay(const fs::path& base, const fs::path& overlay)
{
  util::run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", fs::absolute(base).string(), "-F",
                     base.extension() == ".raw" ? "raw" : "qcow2", overlay.string()});
}

void
make_blank_disk(const fs::path& path, std::uint64_t bytes)
{
  util::run_checked({"qemu-img", "create", "-q", "-f", "qcow2", path.string(), std::to_string(bytes)});
}

std::string
vm_accelerator()
{
  // kiln's own decision (a real kernel booted under KVM within a deadline), remembered in
  // the tests' cache like a build's.
  if (gfs::accel_state_dir().empty()) {
    gfs::set_accel_state_dir(std::filesystem::path(KILN_TEST_CACHE) / "accel");
  }
  return gfs::accel_name(gfs::probe_acceleration().accel);
}

QemuVm::QemuVm(VmOptions options) : m_options(std::move(options))
{
  m_open.assign(m_options.stages.size(), {std::string::npos, clock::now()});
  fs::create_directories(m_options.dir);
  m_serial = m_options.dir / (m_options.name + ".serial.log");
  m_qemu_log = m_options.dir / (m_options.name + ".qemu.log");
  util::write_file_atomic(m_serial, "");

  std::vector<std::string> argv{"qemu-system-x86_64",
                                "-nodefaults",
                                "-no-user-config",
                                "-display",
                                "none",
                                "-accel",
                                vm_accelerator(),
                                "-m",
                                std::to_string(m_options.memory_mb),
                                "-smp",
                                std::to_string(m_options.cpus),
                                "-serial",
                                "file:" + m_serial.string(),
                                "-monitor",
                                "none"};
  // A QMP socket, so that a failed wait can say where the guest's CPU was (monitor()).
  m_qmp = m_options.dir / (m_options.name + ".qmp");
  if (m_qmp.string().size() < sizeof(sockaddr_un{}.sun_path)) {
    fs::remove(m_qmp);
    argv.insert(argv.end(), {"-qmp", "unix:" + qemu_escape(m_qmp.string()) + ",server=on,wait=off"});
  } else {
    m_qmp.clear();
  }
  if (m_options.no_reboot) {
    argv.push_back("-no-reboot");
  }
  if (m_options.bios) {
    argv.insert(argv.end(), {"-bios", m_options.bios->string()});
  }
  if (m_options.uefi) {
    // OVMF's code read-only, its variable store a copy per guest (the firmware writes it).
    const fs::path code = "/usr/share/OVMF/OVMF_CODE_4M.fd", vars = "/usr/share/OVMF/OVMF_VARS_4M.fd";
    if (!fs::is_regular_file(code) || !fs::is_regular_file(vars)) {
      throw BootFailure("no OVMF firmware in /usr/share/OVMF: install ovmf (ci/packages.txt)");
    }
    const fs::path own_vars = m_options.dir / (m_options.name + ".OVMF_VARS.fd");
    fs::copy_file(vars, own_vars, fs::copy_options::overwrite_existing);
    argv.insert(argv.end(), {"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemu_escape(code.string()),
                             "-drive", "if=pflash,format=raw,unit=1,file=" + qemu_escape(own_vars.string())});
  }
  for (size_t i = 0; i < m_options.disks.size(); ++i) {
    // cache=unsafe: the guest's flushes cost nothing; the data still reaches the file
    // before qemu exits, which is all a test reads afterwards.
    const std::string drive =
      "file=" + qemu_escape(m_options.disks[i].string()) + ",format=qcow2,cache=unsafe,discard=unmap";
    if (m_options.uefi) {
      // The firmware boots the disk first (bootindex), not the NIC's PXE.
      const std::string id = "disk" + std::to_string(i);
      argv.insert(argv.end(), {"-drive", drive + ",if=none,id=" + id, "-device",
                               "virtio-blk-pci,drive=" + id + ",bootindex=" + std::to_string(i)});
    } else {
      argv.insert(argv.end(), {"-drive", drive + ",if=virtio"});
    }
  }
  if (m_options.network) {
    std::string netdev = "user,id=n0,restrict=on";
    for (const auto& f : m_options.forwards) {
      netdev += ",guestfwd=tcp:" + f.guest_ip + ":" + std::to_string(f.guest_port) + "-cmd:python3 " +
                qemu_escape((fs::path(KILN_TEST_SUPPORT_DIR) / "guestfwd_relay.py").string()) + " " +
                std::to_string(f.host_port);
    }
    if (m_options.tftp_root) {
      netdev += ",tftp=" + qemu_escape(m_options.tftp_root->string()) + ",bootfile=" + qemu_escape(m_options.bootfile);
    }
    argv.insert(argv.end(), {"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"});
  }
  if (m_options.boot_network_once) {
    argv.insert(argv.end(), {"-boot", "once=n"});
  }

  std::string program = util::find_program(argv[0]);
  if (program.empty()) {
    throw BootFailure("qemu-system-x86_64 not found: install qemu-system-x86 (ci/packages.txt)");
  }
  std::vector<char*> args;
  for (auto& a : argv) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  {
    std::ofstream log(m_qemu_log);
    for (const auto& a : argv) {
      log << a << ' ';
    }
    log << '\n';
  }
  int log_fd = ::open(m_qemu_log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  m_start = clock::now();
  m_pid = ::fork();
  if (m_pid == 0) {
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(program.c_str(), args.data());
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (m_pid < 0) {
    throw BootFailure("cannot start qemu: " + errno_text(fork_errno));
  }
}

QemuVm::~QemuVm()
{
  if (m_pid <= 0 || reap()) {
    return;
  }
  ::kill(m_pid, SIGTERM);
  for (int i = 0; i < 100 && !reap(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!reap()) {
    ::kill(m_pid, SIGKILL);
    int status;
    ::waitpid(m_pid, &status, 0);
  }
}

bool
QemuVm::reap()
{
  if (m_status >= 0) {
    return true;
  }
  int status = 0;
  pid_t r = ::waitpid(m_pid, &status, WNOHANG);
  if (r == m_pid) {
    m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }
  return false;
}

bool
QemuVm::running()
{
  return !reap();
}

double
QemuVm::elapsed() const
{
  return std::chrono::duration<double>(clock::now() - m_start).count();
}

std::string
QemuVm::console() const
{
  return read_all(m_serial);
}

std::string
QemuVm::console_since_cursor() const
{
  std::string text = console();
  return m_cursor < text.size() ? text.substr(m_cursor) : std::string();
}

std::string
QemuVm::tail(size_t lines) const
{
  std::string out = "---- serial console " + m_serial.string() + " (last " + std::to_string(lines) + " lines) ----\n" +
                    last_lines(console(), lines) + "\n---- qemu output " + m_qemu_log.string() + " ----\n" +
                    last_lines(read_all(m_qemu_log), 10) + "\n----";
  return out;
}

std::string
QemuVm::monitor(const std::string& command) const
{
  if (m_qmp.empty()) {
    return "(no monitor socket)";
  }
  util::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", m_qmp.c_str());
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return "(monitor: cannot connect: " + errno_text(errno) + ")";
  }
  // Every read has a deadline: a monitor that does not answer ends the attempt.
  timeval limit{2, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  std::string buffer;
  // Reads until a line holding `key`; returns that line.
  auto read_reply = [&](const std::string& key) -> std::optional<std::string> {
    for (int reads = 0; reads < 64; ++reads) {
      size_t nl;
      while ((nl = buffer.find('\n')) != std::string::npos) {
        std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        if (line.find(key) != std::string::npos) {
          return line;
        }
      }
      char chunk[4096];
      ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n <= 0) {
        return std::nullopt;
      }
      buffer.append(chunk, static_cast<size_t>(n));
    }
    return std::nullopt;
  };
  auto send = [&](const std::string& json) {
    return ::write(fd.get(), json.data(), json.size()) == static_cast<ssize_t>(json.size());
  };
  nlohmann::json request = {{"execute", "human-monitor-command"}, {"arguments", {{"command-line", command}}}};
  if (!read_reply("\"QMP\"") || !send("{\"execute\": \"qmp_capabilities\"}\n") || !read_reply("\"return\"") ||
      !send(request.dump() + "\n")) {
    return "(monitor: no answer)";
  }
  std::optional<std::string> reply = read_reply("\"return\"");
  if (!reply) {
    return "(monitor: no answer to " + command + ")";
  }
  try {
    return nlohmann::json::parse(*reply).at("return").get<std::string>();
  } catch (const nlohmann::json::exception&) {
    return *reply;
  }
}

void
QemuVm::fail(const std::string& why) const
{
  std::string where;
  if (!m_qmp.empty() && m_status < 0) {
    // Where the guest's CPU is (GRUB, the firmware, the kernel): its registers and code.
    // "paused (io-error)" would say the host failed a write (a full disk) and qemu stopped
    // the guest; "running" that the guest itself is stuck where its registers say.
    where = "\n---- guest CPU (qemu monitor) ----\n" + monitor("info status") + monitor("info registers") +
            monitor("x/8i $pc") + "----";
  }
  throw BootFailure(m_options.name + ": " + why + " (after " + std::to_string(static_cast<int>(elapsed())) + " s)\n" +
                    tail() + where);
}

void
QemuVm::check_stages(const std::string& text)
{
  const auto now = clock::now();
  for (size_t i = 0; i < m_options.stages.size(); ++i) {
    const ConsoleStage& stage = m_options.stages[i];
    auto& [offset, since] = m_open[i];
    const size_t start = text.rfind(stage.start);
    if (start == std::string::npos || text.find(stage.end, start + stage.start.size()) != std::string::npos) {
      offset = std::string::npos;
      continue;
    }
    if (offset != start) {
      offset = start;
      since = now;
      continue;
    }
    if (now - since > stage.limit) {
      fail(stage.name + " stopped making progress: \"" + stage.start + "\" (console byte " + std::to_string(start) +
           ") and no \"" + stage.end + "\" after it within " + std::to_string(stage.limit.count()) + " s");
    }
  }
}

std::optional<std::vector<std::string>>
QemuVm::expect_or_exit(const std::string& regex, std::chrono::seconds timeout)
{
  const std::regex re(regex, std::regex::ECMAScript);
  const auto until = clock::now() + timeout;
  const auto limit = m_start + m_options.limit;
  for (;;) {
    // Exited first? Read the console once more after reaping: qemu may have written the
    // last lines just before it went.
    bool exited = reap();
    std::string text = console();
    if (m_cursor < text.size()) {
      std::smatch m;
      std::string rest = text.substr(m_cursor);
      if (std::regex_search(rest, m, re)) {
        std::vector<std::string> groups(m.begin(), m.end());
        m_cursor += static_cast<size_t>(m.position(0) + m.length(0));
        return groups;
      }
    }
    if (exited) {
      return std::nullopt;
    }
    check_stages(text);
    auto now = clock::now();
    if (now > limit) {
      fail("the run's time limit (" + std::to_string(m_options.limit.count()) + " s) passed while waiting for /" +
           regex + "/");
    }
    if (now > until) {
      fail("no /" + regex + "/ on the console within " + std::to_string(timeout.count()) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

std::vector<std::string>
QemuVm::expect(const std::string& regex, std::chrono::seconds timeout)
{
  auto m = expect_or_exit(regex, timeout);
  if (!m) {
    fail("qemu exited (status " + std::to_string(m_status) + ") before /" + regex + "/ appeared on the console");
  }
  return *m;
}

int
QemuVm::wait_for_exit(std::chrono::seconds timeout)
{
  const auto until = std::min(clock::now() + timeout, m_start + m_options.limit);
  while (!reap()) {
    check_stages(console());
    if (clock::now() > until) {
      fail("qemu still running after " + std::to_string(timeout.count()) + " s (waiting for the guest to stop)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return m_status;
}

} // namespace kiln::test
