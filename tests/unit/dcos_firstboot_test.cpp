// The first-boot installer script, run for real with bash under a fake root
// ($KILN_ROOT), with the stand-in dcos_install.sh recording its arguments and
// environment: role selection order, the stamp, the failure marker, idempotence.
#include "core/dcos/firstboot.hpp"
#include "core/slots/abi.hpp"
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;

struct FakeRoot {
  test::ScratchDir dir;
  fs::path root = dir / "root";

  explicit FakeRoot(const std::string& default_role, int installer_status = 0)
  {
    test::ServeTreeOptions o;
    o.exit_status = installer_status;
    test::ServeTree t = test::make_serve_tree(dir / "serve", o);
    fs::create_directories(root / "opt/dcos_install_tmp");
    fs::copy_file(t.dir / "dcos_install.sh", root / "opt/dcos_install_tmp/dcos_install.sh");
    test::write_text(root / std::string(dcos::k_firstboot_script).substr(1), dcos::firstboot_script(default_role));
  }
  fs::path at(std::string_view p) const { return root / std::string(p).substr(1); }
  util::RunResult run() const
  {
    util::RunOptions o;
    o.env["KILN_ROOT"] = root.string();
    return util::run({"bash", at(dcos::k_firstboot_script).string()}, o);
  }
  std::string record() const { return test::read_text(at(test::k_install_record)); }
};

TEST(DcosFirstboot, DefaultRoleWhenNothingElseSaysSo)
{
  FakeRoot f("slave_public");
  util::RunResult r = f.run();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string rec = f.record();
  EXPECT_NE(rec.find("args: --no-block-dcos-setup slave_public\n"), std::string::npos) << rec;
  EXPECT_NE(rec.find("pwd: " + f.at(slots::k_dcos_install_dir).string() + "\n"), std::string::npos) << rec;
  std::string stamp = test::read_text(f.at(slots::k_dcos_stamp));
  EXPECT_NE(stamp.find("role=slave_public\n"), std::string::npos) << stamp;
  EXPECT_NE(stamp.find("origin=image default"), std::string::npos) << stamp;
  EXPECT_FALSE(fs::exists(f.at(slots::k_dcos_failed)));
  std::string log = test::read_text(f.at(slots::k_dcos_log));
  EXPECT_NE(log.find("stand-in dcos_install.sh: --no-block-dcos-setup slave_public"), std::string::npos) << log;
  // Output goes to stdout too (the unit sends it to the journal).
  EXPECT_NE(r.out.find("installing DC/OS as slave_public"), std::string::npos) << r.out;
}

TEST(DcosFirstboot, RoleFileBeatsDefaultAndCommandLineBeatsBoth)
{
  FakeRoot f("master");
  test::write_text(f.at(slots::k_dcos_role_file), "slave\n");
  ASSERT_EQ(f.run().exit_code, 0);
  EXPECT_NE(f.record().find("args: --no-block-dcos-setup slave\n"), std::string::npos) << f.record();

  FakeRoot g("master");
  test::write_text(g.at(slots::k_dcos_role_file), "slave\n");
  test::write_text(g.at("/proc/cmdline"), "BOOT_IMAGE=/vmlinuz root=PARTUUID=x kiln.slot=A kiln.dcos_role=slave_public quiet\n");
  ASSERT_EQ(g.run().exit_code, 0);
  EXPECT_NE(g.record().find("args: --no-block-dcos-setup slave_public\n"), std::string::npos) << g.record();
  EXPECT_NE(test::read_text(g.at(slots::k_dcos_stamp)).find("origin=kernel command line"), std::string::npos);
}

TEST(DcosFirstboot, RunsOnceThenNever)
{
  FakeRoot f("slave");
  ASSERT_EQ(f.run().exit_code, 0);
  fs::remove(f.at(test::k_install_record));
  util::RunResult again = f.run();
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_FALSE(fs::exists(f.at(test::k_install_record))) << "the installer ran a second time";
}

TEST(DcosFirstboot, FailureLeavesTheMarkerWithStatusAndLogTail)
{
  FakeRoot f("slave", 3);
  util::RunResult r = f.run();
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(fs::exists(f.at(slots::k_dcos_stamp)));
  std::string marker = test::read_text(f.at(slots::k_dcos_failed));
  EXPECT_NE(marker.find("exit status: 3\n"), std::string::npos) << marker;
  EXPECT_NE(marker.find("role: slave (image default)"), std::string::npos) << marker;
  EXPECT_NE(marker.find("stand-in dcos_install.sh: --no-block-dcos-setup slave"), std::string::npos) << marker;
  // A later successful run clears the marker.
  test::write_text(f.at("/opt/dcos_install_tmp/dcos_install.sh"), "#!/bin/bash\nexit 0\n");
  EXPECT_EQ(f.run().exit_code, 0);
  EXPECT_FALSE(fs::exists(f.at(slots::k_dcos_failed)));
  EXPECT_TRUE(fs::exists(f.at(slots::k_dcos_stamp)));
}

TEST(DcosFirstboot, UnknownRoleIsAFailureNotAnInstall)
{
  FakeRoot f("slave");
  test::write_text(f.at("/proc/cmdline"), "kiln.dcos_role=worker\n");
  util::RunResult r = f.run();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(fs::exists(f.at(test::k_install_record)));
  std::string marker = test::read_text(f.at(slots::k_dcos_failed));
  EXPECT_NE(marker.find("unknown DC/OS role 'worker' (from kernel command line)"), std::string::npos) << marker;
}

TEST(DcosFirstboot, UnitOrderingAndGuard)
{
  std::string unit = dcos::firstboot_unit();
  for (const char* line : {"Type=oneshot\n", "RemainAfterExit=yes\n",
                           "After=docker.service network-online.target time-sync.target\n",
                           "Wants=docker.service network-online.target time-sync.target\n",
                           "ConditionPathExists=!/var/lib/kiln/dcos-installed\n", "WantedBy=multi-user.target\n",
                           "ExecStart=/bin/bash /usr/libexec/kiln/dcos-install\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
  util::RunResult bashn = util::run({"bash", "-n", "/dev/stdin"}, {dcos::firstboot_script("slave"), {}, "", true, true});
  EXPECT_EQ(bashn.exit_code, 0) << bashn.err;
}

} // namespace
} // namespace kiln
