// The real MesosApi: POST /api/v1 with JSON, the operator's token, the cluster's CA file,
// a deadline and a bound on every answer. A master that is not the leader answers 307
// Temporary Redirect to the leader: the call is sent there again (at most 3 hops).
#pragma once

#include "core/fleet/cluster.hpp"
#include "core/fleet/mesos_api.hpp"

#include <string>
#include <vector>

namespace kiln::fleet {

// The cluster's token file, read and checked (bounded, one line); "" when none is set.
std::string read_token(const Cluster& cluster);

// The headers every request to the cluster carries: "Authorization: token=..." when a
// token is set.
std::vector<std::string> auth_headers(const std::string& token);

class HttpMesosApi : public MesosApi {
public:
  // Reads the token file now (bounded; a missing file is an Error).
  explicit HttpMesosApi(const Cluster& cluster);
  nlohmann::json call(const nlohmann::json& request) override;

private:
  std::string m_url;
  std::string m_ca_file;
  std::string m_token;
};

} // namespace kiln::fleet
