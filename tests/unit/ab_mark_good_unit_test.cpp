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

// kiln-grow-data.service: grows kiln-data once it is mounted, before DC/OS's first-boot
// install and Docker use it; a failure blocks neither (ordering only).
TEST(AbGrowDataUnit, RunsGrowDataAfterTheMountBeforeDcosAndDocker)
{
  const std::string& unit = build::grow_data_unit_text();
  EXPECT_NE(unit.find("\nExecStart=/usr/bin/kiln-node grow-data\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nRequiresMountsFor=/var/lib/kiln-data\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nBefore=kiln-dcos-install.service docker.service\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nType=oneshot\nRemainAfterExit=yes\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nConditionKernelCommandLine=kiln.slot\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nWantedBy=multi-user.target\n"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("Requires=kiln-dcos"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("RequiredBy="), std::string::npos) << unit;
}

} // namespace
} // namespace kiln
