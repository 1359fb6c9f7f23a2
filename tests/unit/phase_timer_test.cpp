// The build's phase timing (kiln build -v): one "time:" line per phase that ends
// normally, none for a phase that fails, laps measured from the previous lap.
#include "image/pipeline/phase_timer.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace kiln::build {
namespace {

TEST(PhaseTimer, ReportsAPhaseThatEndsAndNotOneThatFails)
{
  std::vector<std::string> lines;
  std::function<void(const std::string&)> log = [&](const std::string& l) { lines.push_back(l); };
  {
    PhaseTimer t(log, "relabel");
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
  }
  ASSERT_EQ(lines.size(), 1u);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, std::regex(R"(time: relabel (\d+\.\d) s)"))) << lines[0];
  EXPECT_GE(std::stod(m[1]), 0.1);
  try {
    PhaseTimer t(log, "steps");
    throw std::runtime_error("step failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(lines.size(), 1u);
  // No log, no line and no crash.
  std::function<void(const std::string&)> none;
  {
    PhaseTimer t(none, "quiet");
  }
}

TEST(PhaseTimer, LapsMeasureFromThePreviousLap)
{
  std::vector<std::string> lines;
  std::function<void(const std::string&)> log = [&](const std::string& l) { lines.push_back(l); };
  Laps laps(log);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  laps.lap("first");
  laps.lap("second");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(time: first 0\.[2-9] s)"))) << lines[0];
  EXPECT_EQ(lines[1], "time: second 0.0 s");
}

} // namespace
} // namespace kiln::build
