// The real MesosApi: POST /api/v1 with JSON, the operator's token, the cluster's CA file,
// a deadline and a bound on every answer.
#pragma once

#include "core/fleet/cluster.hpp"
#include "core/fleet/mesos_api.hpp"

namespace kiln::fleet {

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
