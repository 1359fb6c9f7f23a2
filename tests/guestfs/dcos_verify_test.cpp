// `kiln verify` against real images. The passing image is THE A/B fixture
// (tests/boot/fixture/ab-fixture.yaml, built once by the ctest fixture fixture.ab_image):
// a Debian node kiln built with a stand-in docker-ce package, systemd-timesyncd, SELinux
// permissive and the synthetic bundle staged by the dcos stage, whose build already ran
// the checks (a failing check fails the build). It passes for every role, through its A/B
// layout (slot A's root). Broken variants are qcow2 overlays on it, all modified in ONE
// appliance launch and all verified in ONE more; each fails exactly the check it breaks.
// Nothing is built here: the suite's guestfs time goes to the fixture once.
#include "core/dcos/checks.hpp"
#include "core/slots/grubcfg.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/verify/guestfs_view.hpp"
#include "support/ab_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string>
failures(const std::vector<dcos::CheckResult>& results)
{
  std::vector<std::string> out;
  for (const auto& r : results) {
    if (!r.pass) {
      out.push_back(r.name);
    }
  }
  return out;
}

std::string
dump(const std::vector<dcos::CheckResult>& results)
{
  std::string s;
  for (const auto& r : results) {
    s += dcos::format_line(r) + "\n";
  }
  return s;
}

// Slot A's root file system on each drive, in drive order: partition kiln-a (abi.hpp's
// number 4) of every A/B disk. Named directly: inspecting the OS of every partition of
// eight A/B disks costs minutes of software emulation.
std::vector<std::string>
slot_a_roots(gfs::Handle& g)
{
  std::vector<std::string> roots;
  for (const auto& dev : g.list_devices()) {
    roots.push_back(dev + std::to_string(slots::k_partnum_a));
  }
  return roots;
}

struct Variant {
  std::string name;
  std::string role;
  std::function<void(gfs::Handle&)> breakit;
  std::vector<std::string> expected;
};

TEST(DcosVerify, FixturePassesEveryRoleAndEachVariantFailsItsCheck)
{
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const test::AbFixture& fx = test::ab_fixture();
  ASSERT_TRUE(fx.error.empty()) << fx.error;
  test::ScratchDir dir;
  // The fixture's build staged the bundle through the dcos stage (whose checks passed).
  json built = json::parse(test::read_text(fx.out / "build.json"));
  std::vector<std::string> stages;
  for (const char* list : {"built", "reused"}) {
    for (const auto& st : built.value(list, json::array())) {
      stages.push_back(st.get<std::string>());
    }
  }
  EXPECT_NE(std::find(stages.begin(), stages.end(), "dcos"), stages.end()) << built.dump();
  const fs::path image = fx.out / "ab-fixture.qcow2";
  ASSERT_TRUE(fs::exists(image));
  auto t1 = clock::now();

  // The CLI, one launch: master, with --json.
  util::RunResult v = test::run_kiln({"verify", image.string(), "--role", "master", "--dcos-version", "2.2.1", "--json"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  json checks = json::parse(v.out);
  ASSERT_TRUE(checks.is_array());
  EXPECT_GT(checks.size(), 15u);
  bool docker_version = false;
  for (const auto& c : checks) {
    EXPECT_EQ(c["result"], "PASS") << c.dump();
    docker_version |= c["check"] == "docker version" && c["detail"] == "20.10.24 >= 18.09.1";
  }
  EXPECT_TRUE(docker_version) << v.out;
  auto t2 = clock::now();

  // The variants: overlays on the passing image, modified in one launch.
  std::vector<Variant> variants = {
    {"docker-missing", "slave", [](gfs::Handle& g) { g.rm_f("/usr/bin/docker"); }, {"docker is installed"}},
    {"firewalld-enabled", "slave",
     [](gfs::Handle& g) {
       g.rm_f("/etc/systemd/system/firewalld.service");
       g.ln_sf("/lib/systemd/system/firewalld.service", "/etc/systemd/system/multi-user.target.wants/firewalld.service");
     },
     {"firewalld is not enabled"}},
    {"selinux-enforcing-mls", "master",
     [](gfs::Handle& g) { g.write("/etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=mls\n"); }, {"SELinux mode"}},
    {"no-time-sync", "slave",
     [](gfs::Handle& g) {
       for (const auto& p : g.glob("/etc/systemd/system/*.wants/systemd-timesyncd*")) {
         g.rm_f(p);
       }
     },
     {"time synchronisation is enabled"}},
    {"preexisting-mesosphere", "slave_public", [](gfs::Handle& g) {
       g.mkdir_p("/opt/mesosphere");
       g.write("/opt/mesosphere/bootstrap", "");
     },
     {"if DC/OS is already installed"}},
    {"bundle-incomplete", "slave", [](gfs::Handle& g) { g.rm_rf("/opt/dcos_install_tmp/packages/kiln-test-mesos"); },
     {"DC/OS bundle in /opt/dcos_install_tmp"}},
    {"port-conflict", "slave",
     [](gfs::Handle& g) {
       g.ln_sf("/lib/systemd/system/named.service", "/etc/systemd/system/multi-user.target.wants/named.service");
     },
     {"ports for slave"}},
  };
  std::vector<fs::path> overlays;
  for (const auto& var : variants) {
    overlays.push_back(dir / (var.name + ".qcow2"));
    util::run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", image.string(), "-F", "qcow2",
                       overlays.back().string()});
  }
  {
    gfs::Handle g;
    for (const auto& o : overlays) {
      g.add_drive(o.string(), "qcow2");
    }
    g.launch();
    std::vector<std::string> roots = slot_a_roots(g);
    ASSERT_EQ(roots.size(), variants.size());
    for (size_t i = 0; i < variants.size(); ++i) {
      g.mount(roots[i], "/");
      variants[i].breakit(g);
      g.umount_all();
    }
    g.shutdown();
  }
  auto t3 = clock::now();

  // All of them (and the passing image for the agent roles) verified in one launch.
  {
    gfs::Handle g;
    g.add_drive(image.string(), "qcow2", true);
    for (const auto& o : overlays) {
      g.add_drive(o.string(), "qcow2", true);
    }
    g.launch();
    std::vector<std::string> roots = slot_a_roots(g);
    ASSERT_EQ(roots.size(), variants.size() + 1);
    auto check = [&](size_t i, const std::string& role) {
      g.mount(roots[i], "/");
      verify::GuestfsView view(g, roots[i], "deb", roots[i], {{"/", roots[i]}});
      auto results = dcos::run_checks(view, {role, std::string("2.2.1")});
      g.umount_all();
      return results;
    };
    for (const char* role : {"slave", "slave_public", "master"}) {
      auto results = check(0, role);
      EXPECT_TRUE(dcos::all_pass(results)) << role << "\n" << dump(results);
    }
    for (size_t i = 0; i < variants.size(); ++i) {
      SCOPED_TRACE(variants[i].name);
      auto results = check(i + 1, variants[i].role);
      EXPECT_EQ(failures(results), variants[i].expected) << dump(results);
    }
    g.shutdown();
  }
  auto t4 = clock::now();

  // The CLI on a broken variant: exit 1, the installer-style FAIL line.
  util::RunResult bad = test::run_kiln({"verify", overlays[0].string(), "--role", "slave"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("Checking docker is installed: FAIL (no docker binary in the image)"), std::string::npos)
    << bad.out;
  auto t5 = clock::now();
  auto s = [](auto a, auto z) { return std::chrono::duration_cast<std::chrono::seconds>(z - a).count(); };
  std::cout << "timing: fixture " << s(t0, t1) << " s, verify CLI " << s(t1, t2)
            << " s, modify " << variants.size() << " variants " << s(t2, t3) << " s, verify 3 roles + "
            << variants.size() << " variants " << s(t3, t4) << " s, verify CLI (fail) " << s(t4, t5) << " s\n";
}

} // namespace
} // namespace kiln
