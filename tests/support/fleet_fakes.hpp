// kiln-fleet's integration tests' other side, on loopback: a real OpenSSH server (Debian's
// sshd) with keys made for the test, and the fake Mesos master (mesos_master.py: the
// operator API v1, a master's metrics, ZooKeeper's ruok).
#pragma once

#include "core/util/process.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::test {

// sshd -D on `addresses` (127.0.0.x) and a free port, as root, with a host key and a
// client key made by ssh-keygen in `dir`, public-key logins only, no PAM.
class Sshd {
public:
  Sshd(const std::filesystem::path& dir, const std::vector<std::string>& addresses);
  int port() const { return m_port; }
  // The default transport's shape, with this server's options:
  // ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile=... -i KEY -p PORT root@{address}
  std::string transport() const;

private:
  std::unique_ptr<util::Child> m_child;
  std::filesystem::path m_dir;
  int m_port = 0;
};

class FakeMesosMaster {
public:
  // agents: [{"id": .., "hostname": ..}]; extra: mesos_master.py's options.
  FakeMesosMaster(const std::filesystem::path& dir, const nlohmann::json& agents, const std::string& token,
                  const std::vector<std::string>& extra = {});
  std::string url() const; // http://127.0.0.1:PORT
  int zookeeper_port() const { return m_zk; }
  nlohmann::json state() const; // GET /fake/state
  std::vector<nlohmann::json> log() const; // every call and registration, in order

private:
  std::unique_ptr<util::Child> m_child;
  std::filesystem::path m_log;
  int m_port = 0;
  int m_zk = 0;
};

} // namespace kiln::test
