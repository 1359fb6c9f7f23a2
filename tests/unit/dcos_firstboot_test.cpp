// The first-boot installer's generated text: the unit's ordering, guard and deadline, and
// the script's shape (EL7: bash 4.2 syntax, systemd 219 options). The script is run for
// real against a fake systemd in tests/integration/dcos_firstboot_run_test.cpp.
#include "core/dcos/firstboot.hpp"
#include "core/util/process.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace kiln {
namespace {

TEST(DcosFirstboot, UnitOrderingGuardAndDeadline)
{
  std::string unit = dcos::firstboot_unit();
  for (const char* line :
       {"Type=oneshot\n", "RemainAfterExit=yes\n", "After=docker.service network-online.target time-sync.target\n",
        "Wants=docker.service network-online.target time-sync.target\n",
        "ConditionPathExists=!/var/lib/kiln/dcos-installed\n", "WantedBy=multi-user.target\n",
        "ExecStart=/bin/bash /usr/libexec/kiln/dcos-install\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
  // A deadline past both of the script's own bounds, so the script, not systemd, decides
  // and leaves the marker.
  static_assert(dcos::k_unit_timeout_s > dcos::k_installer_timeout_s + dcos::k_setup_timeout_s);
  EXPECT_NE(unit.find("TimeoutStartSec=" + std::to_string(dcos::k_unit_timeout_s) + "\n"), std::string::npos) << unit;
  EXPECT_EQ(unit.find("TimeoutStartSec=0"), std::string::npos) << unit;
  // systemd 219 (EL7) knows no StandardOutput=append:/file:; the script writes its log.
  EXPECT_NE(unit.find("StandardOutput=journal+console\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("StandardError=journal+console\n"), std::string::npos) << unit;
  EXPECT_EQ(unit.find('@'), std::string::npos) << unit;
}

TEST(DcosFirstboot, ScriptWaitsForDcosSetupAndWritesItsOwnLog)
{
  std::string s = dcos::firstboot_script(dcos::Role::slave);
  EXPECT_FALSE(std::regex_search(s, std::regex("@[A-Z_]+@"))) << "a placeholder left";
  EXPECT_NE(s.find("default_role=\"slave\"\n"), std::string::npos);
  EXPECT_NE(s.find("--no-block-dcos-setup \"$role\""), std::string::npos);
  EXPECT_NE(s.find("installer_timeout=" + std::to_string(dcos::k_installer_timeout_s) + "\n"), std::string::npos);
  EXPECT_NE(s.find("KILN_DCOS_SETUP_TIMEOUT:-" + std::to_string(dcos::k_setup_timeout_s) + "}"), std::string::npos);
  // The wait: systemctl show as systemd 219 has it (no --value), bounded.
  EXPECT_NE(s.find("timeout 60 systemctl show -p Job,ActiveState,SubState,Result,ExecMainStatus,"
                   "ExecMainExitTimestampMonotonic"),
            std::string::npos);
  EXPECT_FALSE(std::regex_search(s, std::regex("\n[^#\n]*systemctl[^\n]*--value"))) << "systemd >= 230 only";
  EXPECT_NE(s.find("journalctl --no-pager -b -n 300 -u dcos-download.service -u dcos-setup.service"),
            std::string::npos);
  // The log goes to the file directly, not through a pipe that journald's restart breaks.
  EXPECT_NE(s.find("exec >>\"$log\" 2>&1"), std::string::npos);
  EXPECT_EQ(s.find("| tee"), std::string::npos);
  // The stamp is written after the wait, never before.
  EXPECT_LT(s.find("dcos-setup.service finished"), s.find("> \"$stamp.tmp\""));
  util::RunResult bashn = util::run({"bash", "-n", "/dev/stdin"}, {s, {}, "", true, true});
  EXPECT_EQ(bashn.exit_code, 0) << bashn.err;
}

} // namespace
} // namespace kiln
