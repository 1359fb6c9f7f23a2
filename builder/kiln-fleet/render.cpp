#include "kiln-fleet/render.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <sys/ioctl.h>
#include <unistd.h>

namespace kiln::fleet::cli {

namespace {

std::string
clock_time()
{
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[16];
  std::strftime(buffer, sizeof buffer, "%H:%M:%S", &tm);
  return buffer;
}

// The terminal's width (80 when unknown), so no redrawn line wraps.
std::size_t
width()
{
  winsize w{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 10) {
    return w.ws_col;
  }
  return 80;
}

} // namespace

void
TerminalEvents::redraw()
{
  if (m_drawn > 0) {
    m_out << "\x1b[" << m_drawn << "A";
  }
  const std::size_t cols = width() - 1;
  for (const auto& [host, line] : m_rows) {
    std::string text = "  " + host + ": " + line;
    if (text.size() > cols) {
      text = text.substr(0, cols - 3) + "...";
    }
    m_out << "\r\x1b[2K" << text << "\n";
  }
  m_drawn = m_rows.size();
  m_out << std::flush;
}

void
TerminalEvents::emit(const Event& e)
{
  std::lock_guard<std::mutex> hold(m_lock);
  switch (e.kind) {
    case Event::Kind::batch:
      m_rows.clear();
      m_drawn = 0;
      for (const auto& h : e.hosts) {
        m_rows.emplace_back(h, "waiting");
      }
      m_out << clock_time() << " " << e.message << "\n";
      redraw();
      return;
    case Event::Kind::phase:
    case Event::Kind::failed:
      for (auto& [host, line] : m_rows) {
        if (host == e.host) {
          line = (e.kind == Event::Kind::failed ? "FAILED at " + e.phase + ": " : clock_time() + " " + e.phase + ": ") +
                 e.message;
        }
      }
      redraw();
      return;
    default:
      m_out << clock_time() << " " << e.message << std::endl;
  }
}

void
LineEvents::emit(const Event& e)
{
  std::lock_guard<std::mutex> hold(m_lock);
  if (m_json) {
    nlohmann::json j = {{"event", to_string(e.kind)}, {"message", e.message}};
    if (!e.host.empty()) {
      j["host"] = e.host;
    }
    if (!e.phase.empty()) {
      j["phase"] = e.phase;
    }
    m_out << j.dump() << std::endl;
    return;
  }
  m_out << clock_time() << " ";
  switch (e.kind) {
    case Event::Kind::phase:
      m_out << e.host << ": " << e.phase << ": " << e.message;
      break;
    case Event::Kind::failed:
      m_out << e.host << ": FAILED at " << e.phase << ": " << e.message;
      break;
    default:
      m_out << e.message;
  }
  m_out << std::endl;
}

void
render_status(std::ostream& out, const Cluster& cluster, const RunState& state, bool json)
{
  if (json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : cluster.nodes) {
      const NodeState& s = state.nodes.at(n.host);
      nlohmann::json j = {{"host", n.host}, {"role", to_string(n.role)}, {"phase", to_string(s.phase)}};
      if (!s.agent_id.empty()) {
        j["agent_id"] = s.agent_id;
      }
      if (!s.new_agent_id.empty()) {
        j["new_agent_id"] = s.new_agent_id;
      }
      if (!s.error.empty()) {
        j["error"] = s.error;
      }
      nodes.push_back(j);
    }
    out << nlohmann::json({{"action", state.action}, {"nodes", nodes}}).dump(2) << "\n";
    return;
  }
  out << state.action << "\n";
  for (const auto& n : cluster.nodes) {
    const NodeState& s = state.nodes.at(n.host);
    out << std::left << std::setw(24) << n.host << " " << std::setw(12) << to_string(n.role) << " " << std::setw(10)
        << to_string(s.phase);
    if (!s.new_agent_id.empty() && s.new_agent_id != s.agent_id) {
      out << " agent " << s.agent_id << " -> " << s.new_agent_id;
    }
    if (!s.error.empty()) {
      out << " FAILED: " << s.error;
    }
    out << "\n";
  }
}

} // namespace kiln::fleet::cli
