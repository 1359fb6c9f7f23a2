// kiln-mark-good.service as the A/B stage writes it into slot A: kiln-node keeps asking
// for health until a deadline, then the slot stays unconfirmed and GRUB's tries decide.
#include "image/build/ab_layout.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(AbMarkGoodUnit, AsksUntilADeadlineThenGivesUp)
{
  const std::string& unit = build::mark_good_unit_text();
  EXPECT_NE(unit.find("\nExecStart=/usr/bin/kiln-node mark-good --when-healthy --deadline 3600 --interval 30\n"),
            std::string::npos)
    << unit;
  // The retrying is kiln-node's: systemd must not restart it past the deadline.
  EXPECT_EQ(unit.find("\nRestart="), std::string::npos) << unit;
  EXPECT_EQ(unit.find("\nRestartSec="), std::string::npos) << unit;
  EXPECT_EQ(unit.find("StartLimitInterval=0"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nConditionKernelCommandLine=kiln.slot\n"), std::string::npos);
  EXPECT_NE(unit.find("\nAfter=multi-user.target\n"), std::string::npos);
  EXPECT_NE(unit.find("\nType=simple\nRemainAfterExit=yes\n"), std::string::npos);
  EXPECT_NE(unit.find("\nWantedBy=multi-user.target\n"), std::string::npos);
}

} // namespace
} // namespace kiln
