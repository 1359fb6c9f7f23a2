// The first-boot installer script run for real with bash under a fake root ($KILN_ROOT),
// against a fake systemd (tests/support/fake-systemd: systemctl and journalctl on PATH)
// and the stand-in dcos_install.sh, which, like the real one with --no-block-dcos-setup,
// restarts journald, starts dcos-setup.service without waiting and returns 0. The
// script's stdout goes to a fake journald that the journald restart kills, as systemd 219
// cuts a service's stdout stream. Covered: the stamp only once dcos-setup succeeded, the
// failed marker when dcos-setup (or dcos-download before it) fails or never finishes,
// the log complete across the journald restart, role selection, idempotence.
#include "core/dcos/firstboot.hpp"
#include "core/slots/abi.hpp"
#include "support/dcos_fixture.hpp"
#include "support/fake_systemd.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace kiln {
namespace {

namespace fs = std::filesystem;

bool
has(const std::string& text, const std::string& part)
{
  return text.find(part) != std::string::npos;
}

struct Node {
  test::ScratchDir dir;
  fs::path root = dir / "root";
  test::FakeSystemd systemd{dir / "systemd"};

  explicit Node(const std::string& default_role, int installer_status = 0)
  {
    install_installer(installer_status);
    test::write_text(root / std::string(dcos::k_firstboot_script).substr(1),
                     dcos::firstboot_script(dcos::parse_role(default_role).value()));
    systemd.set_exec("dcos-setup.service", "echo 'pkgpanda: activating packages'\nsleep 1\necho 'pkgpanda: done'\n");
  }
  void install_installer(int status)
  {
    test::ServeTreeOptions o;
    o.exit_status = status;
    test::ServeTree t = test::make_serve_tree(dir / ("serve" + std::to_string(status)), o);
    fs::create_directories(root / "opt/dcos_install_tmp");
    fs::copy_file(t.dir / "dcos_install.sh", root / "opt/dcos_install_tmp/dcos_install.sh",
                  fs::copy_options::overwrite_existing);
  }
  fs::path at(std::string_view p) const { return root / std::string(p).substr(1); }
  // Runs the script as the unit does, its stdout into the fake journald.
  util::RunResult run(int setup_timeout = 60) const
  {
    util::RunOptions o;
    o.env = systemd.env();
    o.env["KILN_ROOT"] = root.string();
    o.env["KILN_DCOS_SETUP_TIMEOUT"] = std::to_string(setup_timeout);
    o.env["KILN_DCOS_POLL_INTERVAL"] = "0.2";
    o.timeout = std::chrono::seconds(120);
    return util::run({"bash", "-c", "bash \"$1\" | \"$2\"; exit \"${PIPESTATUS[0]}\"", "firstboot",
                      at(dcos::k_firstboot_script).string(), systemd.journald().string()},
                     o);
  }
  // Runs the script expecting it to fail with `status`: no stamp; returns the marker.
  std::string run_failing(int status, int setup_timeout = 60) const
  {
    util::RunResult r = run(setup_timeout);
    EXPECT_EQ(r.exit_code, status) << log();
    EXPECT_FALSE(fs::exists(at(slots::k_dcos_stamp)));
    return marker();
  }
  std::string record() const { return test::read_text(at(test::k_install_record)); }
  std::string log() const { return test::read_text(at(slots::k_dcos_log)); }
  std::string marker() const { return test::read_text(at(slots::k_dcos_failed)); }
  std::string journal() const
  {
    fs::path p = systemd.dir() / "journald.stream";
    return fs::exists(p) ? test::read_text(p) : std::string();
  }
};

TEST(DcosFirstbootRun, StampOnlyOnceDcosSetupSucceededAndTheLogIsComplete)
{
  Node n("slave_public");
  util::RunResult r = n.run();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << n.log();
  EXPECT_TRUE(has(n.record(), "args: --no-block-dcos-setup slave_public\n")) << n.record();
  EXPECT_TRUE(has(n.record(), "pwd: " + n.at(slots::k_dcos_install_dir).string() + "\n")) << n.record();
  std::string stamp = test::read_text(n.at(slots::k_dcos_stamp));
  EXPECT_TRUE(has(stamp, "role=slave_public\n")) << stamp;
  EXPECT_TRUE(has(stamp, "origin=image default")) << stamp;
  EXPECT_TRUE(has(stamp, "setup=dcos-setup.service Result=success\n")) << stamp;
  EXPECT_FALSE(fs::exists(n.at(slots::k_dcos_failed)));
  std::string calls = n.systemd.calls();
  EXPECT_TRUE(has(calls, "systemctl restart systemd-journald\n")) << calls;
  EXPECT_TRUE(has(calls, "systemctl start dcos-setup --no-block\n")) << calls;
  // The log holds everything, in order: the installer's lines after the journald restart
  // too, then dcos-setup's result, then the install.
  std::string log = n.log();
  size_t before = log.find("stand-in dcos_install.sh: --no-block-dcos-setup slave_public\n");
  size_t after = log.find("stand-in dcos_install.sh: after the journald restart\n");
  size_t done = log.find("stand-in dcos_install.sh: done\n");
  size_t setup = log.find("kiln: dcos-setup.service finished (ActiveState=inactive SubState=dead Result=success "
                          "ExecMainStatus=0)\n");
  size_t installed = log.find("kiln: DC/OS installed as slave_public (dcos-setup.service succeeded)\n");
  ASSERT_NE(installed, std::string::npos) << log;
  EXPECT_LT(before, after) << log;
  EXPECT_LT(after, done) << log;
  EXPECT_LT(done, setup) << log;
  EXPECT_LT(setup, installed) << log;
  // The journal got the status lines until its restart cut the stream, and none after:
  // the restart really happened, and the log did not depend on it.
  std::string journal = n.journal();
  EXPECT_TRUE(has(journal, "kiln: installing DC/OS as slave_public (role from image default)\n")) << journal;
  EXPECT_FALSE(has(journal, "DC/OS installed as")) << journal;
}

TEST(DcosFirstbootRun, DcosSetupFailingAfterTheInstallerReturnedLeavesTheMarker)
{
  Node n("slave");
  n.systemd.set_exec("dcos-setup.service", "echo 'pkgpanda: Exception: cannot activate mesos--1.11.0'\nexit 3\n");
  std::string marker = n.run_failing(3);
  EXPECT_TRUE(has(marker, "exit status: 3\n")) << marker;
  EXPECT_TRUE(has(marker, "role: slave (image default)\n")) << marker;
  EXPECT_TRUE(has(marker, "reason: dcos-setup.service failed (ActiveState=failed SubState=failed Result=exit-code "
                          "ExecMainStatus=3)\n"))
    << marker;
  // dcos-setup's journal, read after the fact, is in the log and the marker's tail.
  EXPECT_TRUE(has(marker, "dcos-setup[1]: pkgpanda: Exception: cannot activate mesos--1.11.0\n")) << marker;
  EXPECT_TRUE(has(n.log(), "dcos-setup[1]: pkgpanda: Exception: cannot activate mesos--1.11.0\n")) << n.log();
  EXPECT_TRUE(has(n.log(), "stand-in dcos_install.sh: after the journald restart\n")) << n.log();
  EXPECT_TRUE(
    has(n.systemd.calls(), "journalctl --no-pager -b -n 300 -u dcos-download.service -u dcos-setup.service\n"));
}

TEST(DcosFirstbootRun, DcosDownloadFailingMeansDcosSetupNeverRanAndIsAFailure)
{
  Node n("master");
  n.systemd.set_exec("dcos-download.service",
                     "echo 'curl: (37) Couldn'\\''t open file /opt/dcos_install_tmp/x'\nexit 37\n");
  std::string marker = n.run_failing(1);
  EXPECT_TRUE(has(marker, "reason: dcos-setup.service did not run (ActiveState=inactive SubState=dead Result=success "
                          "ExecMainStatus=0; dcos-download.service: ActiveState=failed SubState=failed "
                          "Result=exit-code ExecMainStatus=37)\n"))
    << marker;
  EXPECT_TRUE(has(marker, "dcos-download[1]: curl: (37) Couldn't open file")) << marker;
}

TEST(DcosFirstbootRun, DcosSetupNeverFinishingHitsTheDeadline)
{
  Node n("slave");
  n.systemd.set_exec("dcos-setup.service", "echo 'pkgpanda: fetching'\nsleep 60\n");
  auto start = std::chrono::steady_clock::now();
  std::string marker = n.run_failing(124, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_TRUE(
    has(marker, "reason: dcos-setup.service did not finish within 2 s (ActiveState=activating SubState=start"))
    << marker;
  EXPECT_TRUE(has(marker, "dcos-setup[1]: pkgpanda: fetching\n")) << marker;
}

TEST(DcosFirstbootRun, InstallerFailureLeavesTheMarkerAndALaterSuccessClearsIt)
{
  Node n("slave", 3);
  std::string marker = n.run_failing(3);
  EXPECT_TRUE(has(marker, "exit status: 3\n")) << marker;
  EXPECT_TRUE(has(marker, "reason: dcos_install.sh exited with status 3\n")) << marker;
  EXPECT_TRUE(has(marker, "stand-in dcos_install.sh: --no-block-dcos-setup slave")) << marker;
  EXPECT_FALSE(has(n.systemd.calls(), "start dcos-setup")) << n.systemd.calls();
  n.install_installer(0);
  EXPECT_EQ(n.run().exit_code, 0) << n.log();
  EXPECT_FALSE(fs::exists(n.at(slots::k_dcos_failed)));
  EXPECT_TRUE(fs::exists(n.at(slots::k_dcos_stamp)));
}

TEST(DcosFirstbootRun, RoleFileBeatsDefaultAndCommandLineBeatsBoth)
{
  Node f("master");
  test::write_text(f.at(slots::k_dcos_role_file), "slave\n");
  ASSERT_EQ(f.run().exit_code, 0) << f.log();
  EXPECT_TRUE(has(f.record(), "args: --no-block-dcos-setup slave\n")) << f.record();

  Node g("master");
  test::write_text(g.at(slots::k_dcos_role_file), "slave\n");
  test::write_text(g.at("/proc/cmdline"),
                   "BOOT_IMAGE=/vmlinuz root=PARTUUID=x kiln.slot=A kiln.dcos_role=slave_public quiet\n");
  ASSERT_EQ(g.run().exit_code, 0) << g.log();
  EXPECT_TRUE(has(g.record(), "args: --no-block-dcos-setup slave_public\n")) << g.record();
  EXPECT_TRUE(has(test::read_text(g.at(slots::k_dcos_stamp)), "origin=kernel command line"));
}

TEST(DcosFirstbootRun, RunsOnceThenNever)
{
  Node n("slave");
  ASSERT_EQ(n.run().exit_code, 0) << n.log();
  fs::remove(n.at(test::k_install_record));
  util::RunResult again = n.run();
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_FALSE(fs::exists(n.at(test::k_install_record))) << "the installer ran a second time";
}

TEST(DcosFirstbootRun, UnknownRoleIsAFailureNotAnInstall)
{
  Node n("slave");
  test::write_text(n.at("/proc/cmdline"), "kiln.dcos_role=worker\n");
  util::RunResult r = n.run();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(fs::exists(n.at(test::k_install_record)));
  EXPECT_TRUE(has(n.marker(), "unknown DC/OS role 'worker' (from kernel command line)")) << n.marker();
}

} // namespace
} // namespace kiln
