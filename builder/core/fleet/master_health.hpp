// Whether a master may go, and whether one is back: Mesos has a leader, each master's
// registrar/log/recovered is 1 (its /metrics/snapshot), and its ZooKeeper answers `ruok`
// with `imok`. One seam (MasterProbe) with the real probe over HTTP and TCP, and a fake in
// the unit tests.
#pragma once

#include "core/fleet/cluster.hpp"

#include <string>
#include <vector>

namespace kiln::fleet {

struct MasterHealth {
  bool elected = false; // master/elected is 1: this master leads
  std::string problem; // empty when recovered and ZooKeeper is serving
};

class MasterProbe {
public:
  virtual ~MasterProbe() = default;
  virtual MasterHealth probe(const Node& master) = 0;
};

class NetworkMasterProbe : public MasterProbe {
public:
  // `token`: sent with every request (strict clusters guard the metrics too).
  NetworkMasterProbe(const Cluster& cluster, std::string token) : m_cluster(cluster), m_token(std::move(token)) {}
  MasterHealth probe(const Node& master) override;

private:
  const Cluster& m_cluster;
  std::string m_token;
};

// Empty when every master of `masters` but `except` is healthy and one of all of them
// leads; else one phrase.
std::string others_problem(MasterProbe& probe, const std::vector<Node>& masters, const std::string& except);
// Empty when `master` is healthy and one of `masters` leads.
std::string master_problem(MasterProbe& probe, const std::vector<Node>& masters, const Node& master);

} // namespace kiln::fleet
