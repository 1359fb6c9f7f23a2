// The tests' deadlines follow the machine's measured pace (support/pace.hpp): a machine
// whose probe boot is slower than the reference machine's gets proportionally more time,
// a faster one never less than the reference's budget, always with the load margin.
#include "support/pace.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace kiln {
namespace {

using namespace std::chrono_literals;

TEST(pace, a_deadline_scales_with_the_probe_boot_and_the_load_margin)
{
  const double margin = test::k_load_margin;
  const double ref = test::k_reference_probe_seconds;
  auto at = [](double s) { return std::chrono::seconds(static_cast<long>(std::ceil(s))); };
  // Not measured, or faster than the reference: the reference budget times the margin.
  EXPECT_EQ(test::scaled_deadline(60s, 0), at(60 * margin));
  EXPECT_EQ(test::scaled_deadline(60s, ref / 2), at(60 * margin));
  EXPECT_EQ(test::scaled_deadline(60s, ref), at(60 * margin));
  // Twice as slow as the reference: twice the time.
  EXPECT_EQ(test::scaled_deadline(60s, ref * 2), at(120 * margin));
  EXPECT_EQ(test::scaled_deadline(10s, ref * 1.5), at(15 * margin));
}

} // namespace
} // namespace kiln
