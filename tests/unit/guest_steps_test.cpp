// Every recipe step, sysprep and the SELinux labelling decision, run against the
// in-memory guest (support/fake_editor.hpp) instead of an appliance: what each writes,
// links, runs and refuses. tests/guestfs keeps the end-to-end builds that prove the same
// code on a real appliance (build_test.cpp, rpm_path_test.cpp).
#include "core/recipe/model.hpp"
#include "core/util/error.hpp"
#include "image/steps/finalize.hpp"
#include "image/steps/steps.hpp"
#include "support/fake_editor.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln::steps {
namespace {

namespace fs = std::filesystem;
using test::FakeEditor;
using Kind = FakeEditor::Node::Kind;

const recipe::Location k_at{"/r/recipe.yaml", 7, 9};

// A small Debian-like or EL-like guest: users, groups, unit files.
struct Guest : ::testing::Test {
  FakeEditor g;
  GuestInfo info{"/dev/sda1", "debian", "deb", "apt", 12, {{"/", "/dev/sda1"}}};
  std::vector<std::string> logged;
  StepContext ctx{g, info, false, [this](const std::string& l) { logged.push_back(l); }, {}};

  Guest()
  {
    g.add_file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ncore:x:1500:1500::/home/core:/bin/bash\n");
    g.add_file("/etc/group", "root:x:0:\ndcos:x:4242:core\n");
    g.add_file("/usr/lib/systemd/system/chronyd.service",
               "[Unit]\nDescription=t\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
               "Alias=timesync.service\nAlso=chrony-wait.service\n");
    g.add_file("/usr/lib/systemd/system/chrony-wait.service", "[Install]\nWantedBy=time-sync.target\n");
    g.add_file("/usr/lib/systemd/system/getty@.service", "[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n");
    g.add_file("/usr/lib/systemd/system/static.service", "[Service]\nExecStart=/bin/true\n");
    g.add_dir("/etc/systemd/system");
  }

  void run(const recipe::StepSpec& spec, const std::string& kind) { run_step(ctx, {kind, spec, k_at}); }
  std::string error_of(const recipe::StepSpec& spec, const std::string& kind)
  {
    return test::error_of([&] { run(spec, kind); }).what();
  }
  std::string link(const std::string& path) { return g.readlink(path); }
};

TEST_F(Guest, FileStepWritesContentModeAndOwnersByNameReplacingASymlink)
{
  g.add_symlink("/etc/elsewhere", "/etc/kiln/owned");
  recipe::FileStep f;
  f.path = "/etc/kiln/owned";
  f.content = "secret\n";
  f.mode = 0640;
  f.owner = "core";
  f.group = "dcos";
  run(f, "file");
  const auto* n = g.node("/etc/kiln/owned");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->kind, Kind::file); // the symlink was replaced, not followed
  EXPECT_EQ(n->data, "secret\n");
  EXPECT_EQ(n->mode, 0640u);
  EXPECT_EQ(n->uid, 1500u);
  EXPECT_EQ(n->gid, 4242u);
  EXPECT_FALSE(g.exists("/etc/elsewhere"));

  f.owner = "nobody2";
  EXPECT_EQ(error_of(f, "file"), "file step at /r/recipe.yaml:7:9: user nobody2: not found in the image's /etc/passwd");
  f.owner = "1234"; // numbers pass through
  run(f, "file");
  EXPECT_EQ(g.node("/etc/kiln/owned")->uid, 1234u);
}

TEST_F(Guest, OverlayStepUnpacksTheTreeWithTheGivenOwners)
{
  test::ScratchDir dir;
  test::write_text(dir / "tree/etc/kiln/overlay.conf", "from=overlay\n");
  fs::permissions(dir / "tree/etc/kiln/overlay.conf", fs::perms(0600));
  recipe::OverlayStep o;
  o.source = (dir / "tree").string();
  o.dest = "/";
  o.owner = "core";
  o.group = "dcos";
  run(o, "overlay");
  const auto* n = g.node("/etc/kiln/overlay.conf");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->data, "from=overlay\n");
  EXPECT_EQ(n->mode, 0600u);
  EXPECT_EQ(n->uid, 1500u);
  EXPECT_EQ(n->gid, 4242u);
}

TEST_F(Guest, EditStepSetsKeysReplacesLinesAndCreatesTheFile)
{
  g.add_file("/etc/chrony.conf", "pool 2.debian.pool.ntp.org iburst\nx\nserver old iburst\n");
  recipe::EditStep e;
  e.path = "/etc/chrony.conf";
  e.match = "^(pool|server) ";
  e.lines = {"server a iburst", "server b iburst"};
  run(e, "edit");
  EXPECT_EQ(g.read_file("/etc/chrony.conf"), "server a iburst\nserver b iburst\nx\n");

  recipe::EditStep s;
  s.path = "/etc/new/dir/conf";
  s.set = {{"SELINUX", "permissive"}};
  s.line = "a.b";
  run(s, "edit");
  EXPECT_EQ(g.read_file("/etc/new/dir/conf"), "SELINUX=permissive\na.b\n");
  run(s, "edit"); // the line is matched literally ("a.b", not "a" any "b"): no second copy
  EXPECT_EQ(g.read_file("/etc/new/dir/conf"), "SELINUX=permissive\na.b\n");
}

TEST_F(Guest, DeleteStepRemovesWhatItsPatternsMatch)
{
  g.add_file("/etc/kiln/doomed", "x");
  g.add_file("/var/cache/d/a/b", "x");
  g.add_file("/var/cache/d/.hidden", "x");
  recipe::DeleteStep d;
  d.paths = {"/etc/kiln/doomed", "/var/cache/d/*", "/no/such/*"};
  run(d, "delete");
  EXPECT_FALSE(g.exists("/etc/kiln/doomed"));
  EXPECT_FALSE(g.exists("/var/cache/d/a"));
  EXPECT_TRUE(g.exists("/var/cache/d/.hidden")); // '*' skips dot files, as the shell's
}

TEST_F(Guest, SystemdStepEnablesAsSystemctlWouldDisablesAndMasks)
{
  recipe::SystemdStep s;
  s.enable = {"chronyd.service", "getty@.service", "getty@tty2.service"};
  s.mask = {"firewalld.service"};
  run(s, "systemd");
  EXPECT_EQ(link("/etc/systemd/system/multi-user.target.wants/chronyd.service"),
            "/usr/lib/systemd/system/chronyd.service");
  EXPECT_EQ(link("/etc/systemd/system/timesync.service"), "/usr/lib/systemd/system/chronyd.service");
  EXPECT_EQ(link("/etc/systemd/system/time-sync.target.wants/chrony-wait.service"), // Also=
            "/usr/lib/systemd/system/chrony-wait.service");
  EXPECT_EQ(link("/etc/systemd/system/getty.target.wants/getty@tty1.service"),
            "/usr/lib/systemd/system/getty@.service");
  EXPECT_EQ(link("/etc/systemd/system/getty.target.wants/getty@tty2.service"),
            "/usr/lib/systemd/system/getty@.service");
  EXPECT_EQ(link("/etc/systemd/system/firewalld.service"), "/dev/null"); // masking needs no unit file

  recipe::SystemdStep d;
  d.disable = {"chronyd.service"};
  run(d, "systemd");
  EXPECT_FALSE(g.is_symlink("/etc/systemd/system/multi-user.target.wants/chronyd.service"));
  EXPECT_FALSE(g.is_symlink("/etc/systemd/system/timesync.service"));

  recipe::SystemdStep missing;
  missing.enable = {"nosuch.service"};
  EXPECT_EQ(error_of(missing, "systemd"),
            "systemd step at /r/recipe.yaml:7:9: enable nosuch.service: no such unit in the image (looked in "
            "/etc/systemd/system, /usr/lib/systemd/system, /lib/systemd/system)");
  recipe::SystemdStep masked;
  masked.enable = {"firewalld.service"}; // masked and no unit file: nothing to enable
  EXPECT_NE(error_of(masked, "systemd").find("enable firewalld.service: no such unit"), std::string::npos);
  recipe::SystemdStep no_install;
  no_install.enable = {"static.service"};
  EXPECT_NE(error_of(no_install, "systemd").find("has no [Install] section"), std::string::npos);
}

TEST_F(Guest, UnitAndFirstbootStepsWriteEnabledUnits)
{
  recipe::UnitStep u;
  u.name = "kiln-demo.service";
  u.content = "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n";
  run(u, "unit");
  EXPECT_EQ(g.node("/etc/systemd/system/kiln-demo.service")->mode, 0644u);

  recipe::FirstbootStep f;
  f.name = "dcos-install";
  f.script = "echo installing";
  f.after = {"docker.service"};
  run(f, "firstboot");
  EXPECT_EQ(g.read_file("/usr/libexec/kiln/firstboot/dcos-install"), "#!/bin/sh\necho installing\n");
  EXPECT_EQ(g.node("/usr/libexec/kiln/firstboot/dcos-install")->mode, 0755u);
  std::string unit = g.read_file("/etc/systemd/system/kiln-firstboot-dcos-install.service");
  EXPECT_NE(unit.find("After=network-online.target time-sync.target docker.service\n"), std::string::npos);
  EXPECT_NE(unit.find("ConditionPathExists=!/var/lib/kiln/firstboot/dcos-install.done\n"), std::string::npos);
  EXPECT_NE(unit.find("Type=oneshot\n"), std::string::npos);
  EXPECT_EQ(link("/etc/systemd/system/multi-user.target.wants/kiln-firstboot-dcos-install.service"),
            "/etc/systemd/system/kiln-firstboot-dcos-install.service");
}

TEST_F(Guest, GroupAndUserStepsRunQuotedCommandsAndCheckTheGid)
{
  g.on_sh = [](const std::string& script, FakeEditor& guest) {
    if (script.find("groupadd") != std::string::npos) {
      guest.write("/etc/group", guest.read_file("/etc/group") + "web:x:999:\n");
    }
    return edit::CommandResult{};
  };
  recipe::GroupStep grp;
  grp.name = "web";
  grp.gid = 999;
  grp.system = true;
  run(grp, "group");
  ASSERT_EQ(g.scripts.size(), 1u);
  EXPECT_EQ(g.scripts[0], "getent group 'web' >/dev/null || groupadd -g 999 -r 'web'");

  recipe::GroupStep taken;
  taken.name = "dcos";
  taken.gid = 100;
  EXPECT_EQ(error_of(taken, "group"),
            "group step at /r/recipe.yaml:7:9: group dcos: already exists in the image with gid 4242, not 100");

  recipe::UserStep user;
  user.name = "o'brien";
  user.uid = 1600;
  user.groups = {"dcos", "wheel"};
  user.home = "/home/ob";
  run(user, "user");
  EXPECT_EQ(g.scripts.back(), "getent passwd 'o'\\''brien' >/dev/null || useradd -m -s '/bin/bash' -u 1600 "
                              "-G 'dcos,wheel' -d '/home/ob' 'o'\\''brien'");

  // With SOURCE_DATE_EPOCH the new user's last password change is the build's day, not the
  // guest clock's (two builds either side of midnight would differ in /etc/shadow); a user
  // that exists already is left alone.
  ctx.source_date_epoch = 1700000000; // day 19675
  recipe::UserStep core;
  core.name = "core";
  run(core, "user");
  EXPECT_EQ(g.scripts.back(), "getent passwd 'core' >/dev/null || "
                              "{ useradd -m -s '/bin/bash' 'core' && chage -d 19675 'core'; }");
}

TEST_F(Guest, RunStepFailureNamesTheCommandStatusAndTheLastLines)
{
  g.on_sh = [](const std::string&, FakeEditor&) { return edit::CommandResult{3, "doing\n", "1\n2\n\n3\n4\n5\n6\n"}; };
  recipe::RunStep r{"make it so"};
  EXPECT_EQ(error_of(r, "run"),
            "run step at /r/recipe.yaml:7:9: command 'make it so': exit status 3: 2 | 3 | 4 | 5 | 6");
  g.on_sh = [](const std::string&, FakeEditor&) { return edit::CommandResult{1, "only stdout\n", ""}; };
  EXPECT_EQ(error_of(r, "run"), "run step at /r/recipe.yaml:7:9: command 'make it so': exit status 1: only stdout");
}

TEST_F(Guest, PackagesOfflineOnAnRpmGuestUseOnlyLocalRepositoriesAndStagedFiles)
{
  info = {"/dev/sda1", "centos", "rpm", "yum", 7, {{"/", "/dev/sda1"}}};
  test::ScratchDir dir;
  test::write_text(dir / "kiln-loose-2.1-1.noarch.rpm", "rpm bytes");
  recipe::PackagesStep p;
  p.repos = {{"local", "file:///srv/repo", false, std::nullopt},
             {"remote", "https://mirror.example/el7", true, std::string("file:///etc/pki/key")}};
  p.install = {"docker-ce", "ipset"};
  p.remove = {"firewalld"};
  p.files = {(dir / "kiln-loose-2.1-1.noarch.rpm").string()};
  std::string staged_content;
  g.on_sh = [&](const std::string&, FakeEditor& guest) {
    staged_content = guest.read_file("/var/tmp/kiln-packages/kiln-loose-2.1-1.noarch.rpm");
    return edit::CommandResult{};
  };
  run(p, "packages");
  EXPECT_EQ(staged_content, "rpm bytes"); // uploaded before the script ran
  EXPECT_EQ(g.read_file("/etc/yum.repos.d/local.repo"),
            "[local]\nname=local\nbaseurl=file:///srv/repo\nenabled=1\ngpgcheck=0\n");
  EXPECT_EQ(g.read_file("/etc/yum.repos.d/remote.repo"),
            "[remote]\nname=remote\nbaseurl=https://mirror.example/el7\nenabled=1\ngpgcheck=1\n"
            "gpgkey=file:///etc/pki/key\n");
  ASSERT_EQ(g.scripts.size(), 1u);
  EXPECT_EQ(g.scripts[0], "set -e\n"
                          "yum -y --disablerepo='*' --enablerepo='local' install /var/tmp/kiln-packages/"
                          "'kiln-loose-2.1-1.noarch.rpm' 'docker-ce' 'ipset'\n"
                          "yum -y --disablerepo='*' --enablerepo='local' remove 'firewalld'\n"
                          "yum clean all >/dev/null 2>&1 || true\n"
                          "rm -rf /var/tmp/kiln-packages\n");

  g.on_sh = [](const std::string&, FakeEditor&) {
    return edit::CommandResult{1, "", "Error: Nothing to do\nNo package docker-ce available.\n"};
  };
  EXPECT_EQ(error_of(p, "packages"), "packages step at /r/recipe.yaml:7:9: yum failed (the appliance has no network): "
                                     "exit status 1: Error: Nothing to do | No package docker-ce available.");
}

TEST_F(Guest, PackagesOnADebGuestAndOnAnUnknownOne)
{
  recipe::PackagesStep p;
  p.repos = {{"local", "file:/var/tmp/repo ./", false, std::nullopt}};
  p.install = {"kiln-hello"};
  run(p, "packages");
  EXPECT_EQ(g.read_file("/etc/apt/sources.list.d/local.list"), "deb [trusted=yes] file:/var/tmp/repo ./\n");
  ASSERT_EQ(g.scripts.size(), 1u);
  // Offline: only the declared repository is read, the image's own sources are not.
  EXPECT_NE(g.scripts[0].find("update\n"), std::string::npos);
  EXPECT_NE(g.scripts[0].find("-o Dir::Etc::sourcelist=sources.list.d/local.list -o Dir::Etc::sourceparts=-"),
            std::string::npos);
  EXPECT_NE(g.scripts[0].find("apt-get -y -o Dpkg::Options::=--force-confnew install 'kiln-hello'\n"),
            std::string::npos);

  info.package_manager = "zypper";
  EXPECT_EQ(error_of(p, "packages"),
            "packages step at /r/recipe.yaml:7:9: zypper: not supported (kiln knows yum, dnf and apt)");
}

TEST_F(Guest, SelinuxStepSetsTheModeAndKeepsTheType)
{
  g.add_file("/etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=targeted\n");
  recipe::SelinuxStep s{"permissive", true};
  run(s, "selinux");
  EXPECT_EQ(g.read_file("/etc/selinux/config"), "SELINUX=permissive\nSELINUXTYPE=targeted\n");
  EXPECT_TRUE(g.scripts.empty()); // the relabel is finalize's
}

struct Selinux : Guest {
  Selinux()
  {
    g.add_file("/etc/selinux/config", "SELINUX=permissive\nSELINUXTYPE=targeted\n");
    g.add_file("/usr/sbin/load_policy", "");
    g.add_file("/etc/selinux/targeted/contexts/files/file_contexts", "/.* system_u:object_r:default_t:s0\n");
  }
};

TEST_F(Selinux, TheGuestsOwnSetfilesLabelsEverything)
{
  g.add_file("/usr/sbin/setfiles", "");
  g.add_file("/.autorelabel", "");
  selinux_relabel(ctx);
  ASSERT_EQ(g.scripts.size(), 1u);
  EXPECT_EQ(g.scripts[0], "setfiles -F -m -e /proc -e /sys -e /dev -e /run "
                          "'/etc/selinux/targeted/contexts/files/file_contexts' '/'");
  EXPECT_TRUE(g.relabels.empty());
  EXPECT_FALSE(g.exists("/.autorelabel"));
}

TEST_F(Selinux, TheAppliancesSetfilesWhenTheGuestsFails)
{
  g.add_file("/usr/sbin/setfiles", "");
  g.on_sh = [](const std::string&, FakeEditor&) { return edit::CommandResult{255, "", "policy version mismatch"}; };
  selinux_relabel(ctx);
  ASSERT_EQ(g.relabels.size(), 1u);
  EXPECT_EQ(g.relabels[0],
            std::make_pair(std::string("/etc/selinux/targeted/contexts/files/file_contexts"), std::string("/")));
  EXPECT_FALSE(g.exists("/.autorelabel"));
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0], "selinux: the image's setfiles failed (exit 255): policy version mismatch");
}

TEST_F(Selinux, NeitherCanLabelSoTheFirstBootRelabels)
{
  g.appliance_can_label = false;
  selinux_relabel(ctx);
  EXPECT_TRUE(g.is_file("/.autorelabel"));
  EXPECT_EQ(logged, std::vector<std::string>{
                      "selinux: cannot relabel offline; the image will relabel at first boot (/.autorelabel)"});
}

TEST_F(Selinux, NothingForADisabledOrANonSelinuxGuest)
{
  g.write("/etc/selinux/config", "SELINUX=disabled\n");
  selinux_relabel(ctx);
  g.rm_f("/etc/selinux/config");
  selinux_relabel(ctx);
  g.write("/etc/selinux/config", "SELINUX=enforcing\n");
  g.rm_f("/usr/sbin/load_policy"); // tools without a policy loader: not an SELinux guest
  selinux_relabel(ctx);
  EXPECT_TRUE(g.scripts.empty());
  EXPECT_TRUE(g.relabels.empty());
  EXPECT_FALSE(g.exists("/.autorelabel"));
}

TEST_F(Guest, SysprepResetsIdentityLogsAndCaches)
{
  g.add_file("/etc/machine-id", "0123456789abcdef\n");
  g.add_symlink("/etc/machine-id", "/var/lib/dbus/machine-id");
  g.add_file("/etc/ssh/ssh_host_rsa_key", "k");
  g.add_file("/etc/ssh/ssh_host_rsa_key.pub", "k");
  g.add_file("/etc/ssh/sshd_config", "Port 22\n");
  g.add_file("/var/lib/systemd/random-seed", "r");
  g.add_file("/tmp/a/b", "x");
  g.add_file("/tmp/.X0-lock", "x");
  g.add_file("/var/cache/apt/archives/x.deb", "x");
  g.add_file("/var/cache/apt/archives/lock", "x");
  g.add_file("/root/.bash_history", "ls\n");
  sysprep(ctx);
  EXPECT_EQ(g.read_file("/etc/machine-id"), "");
  EXPECT_TRUE(g.is_symlink("/var/lib/dbus/machine-id")); // a link is left as it is
  EXPECT_TRUE(g.glob("/etc/ssh/ssh_host_*").empty());
  EXPECT_TRUE(g.exists("/etc/ssh/sshd_config"));
  EXPECT_FALSE(g.exists("/var/lib/systemd/random-seed"));
  EXPECT_TRUE(g.glob("/tmp/*").empty());
  EXPECT_FALSE(g.exists("/tmp/.X0-lock"));
  EXPECT_TRUE(g.is_dir("/tmp"));
  EXPECT_FALSE(g.exists("/var/cache/apt/archives/x.deb"));
  EXPECT_TRUE(g.exists("/var/cache/apt/archives/lock"));
  EXPECT_FALSE(g.exists("/root/.bash_history"));
  EXPECT_EQ(g.read_file("/etc/hostname"), "localhost\n");
  EXPECT_EQ(g.scripts, std::vector<std::string>{"find /var/log -type f -delete 2>/dev/null; true"});

  info.package_format = "rpm";
  sysprep(ctx);
  EXPECT_EQ(g.read_file("/etc/hostname"), "localhost.localdomain\n");
}

} // namespace
} // namespace kiln::steps
