#include "support/fleet_fakes.hpp"

#include "core/util/fs.hpp"
#include "support/test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace kiln::test {

namespace fs = std::filesystem;

namespace {

int
free_port()
{
  util::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("no free port");
  }
  return ntohs(a.sin_port);
}

bool
listening(const std::string& address, int port)
{
  util::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

void
must_run(const std::vector<std::string>& argv)
{
  util::RunResult r = util::run(argv);
  if (!r.ok()) {
    throw std::runtime_error(argv[0] + ": " + r.tail(3));
  }
}

} // namespace

Sshd::Sshd(const fs::path& dir, const std::vector<std::string>& addresses) : m_dir(dir)
{
  const std::string sshd = require_program("sshd", "openssh-server");
  require_program("ssh", "openssh-client");
  require_program("ssh-keygen", "openssh-client");
  fs::create_directories(dir);
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / "host_key").string()});
  must_run({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / "client_key").string()});
  fs::copy_file(dir / "client_key.pub", dir / "authorized_keys", fs::copy_options::overwrite_existing);
  // sshd's privilege separation directory (Debian's package makes it at boot).
  fs::create_directories("/run/sshd");
  m_port = free_port();
  std::string config = "Port " + std::to_string(m_port) + "\n";
  std::string known;
  const std::string host_key = read_text(dir / "host_key.pub");
  for (const auto& a : addresses) {
    config += "ListenAddress " + a + "\n";
    known += "[" + a + "]:" + std::to_string(m_port) + " " + host_key.substr(0, host_key.find_last_of(' ')) + "\n";
  }
  config += "HostKey " + (dir / "host_key").string() +
            "\n"
            "AuthorizedKeysFile " +
            (dir / "authorized_keys").string() +
            "\n"
            "PidFile " +
            (dir / "sshd.pid").string() +
            "\n"
            "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nMaxStartups 100\nMaxSessions 100\nLogLevel ERROR\n";
  write_text(dir / "sshd_config", config);
  write_text(dir / "known_hosts", known);
  util::RunOptions o;
  o.capture_stdout = false;
  o.capture_stderr = false;
  m_child = std::make_unique<util::Child>(
    std::vector<std::string>{sshd, "-D", "-E", (dir / "sshd.log").string(), "-f", (dir / "sshd_config").string()}, o);
  for (int i = 0; i < 200; ++i) {
    bool all = true;
    for (const auto& a : addresses) {
      all = all && listening(a, m_port);
    }
    if (all) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("sshd did not listen on port " + std::to_string(m_port));
}

std::string
Sshd::transport() const
{
  return "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" +
         (m_dir / "known_hosts").string() + " -o LogLevel=ERROR -i " + (m_dir / "client_key").string() + " -p " +
         std::to_string(m_port) + " root@{address}";
}

FakeMesosMaster::FakeMesosMaster(const fs::path& dir, const nlohmann::json& agents, const std::string& token,
                                 const std::vector<std::string>& extra)
  : m_log(dir / "master.log")
{
  fs::create_directories(dir);
  write_text(dir / "agents.json", agents.dump());
  std::vector<std::string> argv{"python3",  (support_dir() / "mesos_master.py").string(),
                                "--agents", (dir / "agents.json").string(),
                                "--log",    m_log.string(),
                                "--token",  token};
  argv.insert(argv.end(), extra.begin(), extra.end());
  util::RunOptions o;
  o.capture_stderr = false;
  m_child = std::make_unique<util::Child>(argv, o);
  std::istringstream words(m_child->read_line().value_or(""));
  std::string port, zk;
  if (!(words >> port >> m_port >> zk >> m_zk) || port != "PORT") {
    throw std::runtime_error("the fake Mesos master did not start");
  }
}

std::string
FakeMesosMaster::url() const
{
  return "http://127.0.0.1:" + std::to_string(m_port);
}

nlohmann::json
FakeMesosMaster::state() const
{
  util::RunResult r =
    util::run({"python3", "-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1]).read().decode())",
               url() + "/fake/state"});
  return nlohmann::json::parse(r.out);
}

std::vector<nlohmann::json>
FakeMesosMaster::log() const
{
  std::vector<nlohmann::json> out;
  if (!fs::exists(m_log)) {
    return out;
  }
  for (const auto& line : lines(read_text(m_log))) {
    if (!line.empty()) {
      out.push_back(nlohmann::json::parse(line));
    }
  }
  return out;
}

} // namespace kiln::test
