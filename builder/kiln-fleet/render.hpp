// kiln-fleet's output: run events as one line each (terminal and CI alike: "HOST: PHASE:
// what was done"), or as JSON lines with --json; `status` as a table or JSON.
#pragma once

#include "core/fleet/cluster.hpp"
#include "core/fleet/events.hpp"
#include "core/fleet/state.hpp"

#include <mutex>
#include <ostream>

namespace kiln::fleet::cli {

class LineEvents : public Events {
public:
  LineEvents(std::ostream& out, bool json) : m_out(out), m_json(json) {}
  void emit(const Event& event) override;

private:
  std::ostream& m_out;
  bool m_json;
  std::mutex m_lock;
};

void render_status(std::ostream& out, const Cluster& cluster, const RunState& state, bool json);

} // namespace kiln::fleet::cli
