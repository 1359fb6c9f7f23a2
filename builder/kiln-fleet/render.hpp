// kiln-fleet's output: run events as one line each (terminal and CI alike: "HOST: PHASE:
// what was done"), or as JSON lines with --json; `status` as a table or JSON.
#pragma once

#include "core/fleet/cluster.hpp"
#include "core/fleet/events.hpp"
#include "core/fleet/state.hpp"

#include <mutex>
#include <ostream>
#include <utility>
#include <vector>

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

// On a terminal: the current batch as one line per node, redrawn in place as its phases
// pass; batch headers, failures and the end as lines that stay.
class TerminalEvents : public Events {
public:
  explicit TerminalEvents(std::ostream& out) : m_out(out) {}
  void emit(const Event& event) override;

private:
  void redraw();

  std::ostream& m_out;
  std::mutex m_lock;
  std::vector<std::pair<std::string, std::string>> m_rows; // host, its line
  std::size_t m_drawn = 0;
};

void render_status(std::ostream& out, const Cluster& cluster, const RunState& state, bool json);

} // namespace kiln::fleet::cli
