// tests/support/mesosd.py: a Mesos master or agent's /metrics/snapshot and a ZooKeeper
// that answers (or not) `ruok`, on loopback, for kiln-node's health tests. The test
// build of kiln-node asks it instead of localhost:5050/5051/2181 (env()).
#pragma once

#include "core/util/process.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace kiln::test {

class MesosFake {
public:
  // role: "master" or "agent"; zookeeper: "imok" or "silent". `dir` holds the metrics file.
  MesosFake(const std::filesystem::path& dir, const std::string& role, const std::string& zookeeper = "imok");

  // The metrics the snapshot reports from now on, over the defaults (null drops one).
  void set(const nlohmann::json& metrics);
  std::string url() const; // http://127.0.0.1:PORT
  std::string zookeeper() const; // 127.0.0.1:PORT
  std::string refused() const; // http://127.0.0.1:PORT with nothing listening
  // KILN_NODE_MESOS and KILN_NODE_ZOOKEEPER pointing at this stand-in.
  std::map<std::string, std::string> env() const;

private:
  std::unique_ptr<util::Child> m_child;
  std::filesystem::path m_metrics;
  int m_http = 0;
  int m_zk = 0;
  int m_closed = 0;
};

} // namespace kiln::test
