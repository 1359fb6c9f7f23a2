#include "support/mesos_fake.hpp"

#include "core/util/fs.hpp"
#include "support/test_support.hpp"

#include <sstream>
#include <stdexcept>

namespace kiln::test {

MesosFake::MesosFake(const std::filesystem::path& dir, const std::string& role, const std::string& zookeeper)
  : m_metrics(dir / ("mesos-" + role + "-metrics.json"))
{
  std::vector<std::string> argv{
    "python3", (support_dir() / "mesosd.py").string(), "--role", role, "--metrics", m_metrics.string(), "--zk",
    zookeeper};
  util::RunOptions options;
  options.capture_stderr = false;
  m_child = std::make_unique<util::Child>(argv, options);
  auto line = m_child->read_line();
  std::istringstream words(line.value_or(""));
  std::string port, zk, closed;
  if (!(words >> port >> m_http >> zk >> m_zk >> closed >> m_closed) || port != "PORT") {
    throw std::runtime_error("the Mesos stand-in did not start");
  }
}

void
MesosFake::set(const nlohmann::json& metrics)
{
  util::write_file_atomic(m_metrics, metrics.dump());
}

std::string
MesosFake::url() const
{
  return "http://127.0.0.1:" + std::to_string(m_http);
}

std::string
MesosFake::zookeeper() const
{
  return "127.0.0.1:" + std::to_string(m_zk);
}

std::string
MesosFake::refused() const
{
  return "http://127.0.0.1:" + std::to_string(m_closed);
}

std::map<std::string, std::string>
MesosFake::env() const
{
  return {{"KILN_NODE_MESOS", url()}, {"KILN_NODE_ZOOKEEPER", zookeeper()}};
}

} // namespace kiln::test
