// `kiln verify` against real images. ONE passing fixture is built by kiln from a Debian
// mmdebstrap base (the A/B fixture's own `base:` block, so the suite bootstraps it once;
// a stand-in docker-ce .deb installed through the packages step, systemd-timesyncd,
// the synthetic bundle staged by the dcos stage, which also runs verify inside the build).
// It passes for every role. Broken variants are qcow2 overlays on it, each broken and
// verified in ONE appliance launch; each fails exactly the check it breaks. The kiln
// verify CLI then runs once, on a broken variant.
#include "core/dcos/checks.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/verify/guestfs_view.hpp"
#include "support/ab_fixture.hpp"
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path k_cache = KILN_TEST_CACHE;

fs::path
make_docker_deb(const fs::path& dir)
{
  fs::path root = dir / "docker-deb";
  test::write_text(root / "DEBIAN/control", "Package: docker-ce\nVersion: 5:19.03.15~3-0~debian-bookworm\n"
                                            "Architecture: amd64\nMaintainer: kiln tests <kiln@localhost>\n"
                                            "Description: stand-in for Docker CE (prints a version)\n");
  test::write_text(root / "usr/bin/docker", "#!/bin/sh\necho 'Docker version 19.03.15, build 99e3ed8919'\n");
  fs::permissions(root / "usr/bin/docker", fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
  test::write_text(root / "lib/systemd/system/docker.service",
                   "[Unit]\nDescription=stand-in docker\n[Service]\nExecStart=/bin/sleep infinity\n"
                   "[Install]\nWantedBy=multi-user.target\n");
  fs::path deb = dir / "docker-ce_19.03.15_amd64.deb";
  util::run_checked(
    {test::require_program("dpkg-deb", "dpkg"), "--root-owner-group", "--build", root.string(), deb.string()});
  return deb;
}

void
write_fixture_recipe(const fs::path& dir)
{
  test::make_serve_tree(dir / "serve");
  make_docker_deb(dir);
  test::write_text(
    dir / "recipe.yaml",
    "name: dcos-fixture\n" + test::ab_fixture_base_and_size() +
      "stages:\n"
      "  - name: host\n"
      "    steps:\n"
      "      - file: {path: /etc/kiln/nonce, content: '" +
      dir.filename().string() +
      "'}\n"
      "      - packages: {files: [docker-ce_19.03.15_amd64.deb]}\n"
      "      - systemd: {enable: [docker.service, systemd-timesyncd.service], mask: [firewalld.service, "
      "dnsmasq.service]}\n"
      "      - file: {path: /etc/selinux/config, content: \"SELINUX=permissive\\nSELINUXTYPE=targeted\\n\"}\n"
      "dcos: {bundle: serve, role: slave, version: 2.2.1}\n");
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
  test::ScratchDir dir;
  write_fixture_recipe(dir.path());
  util::RunResult b = test::run_kiln(
    {"build", (dir / "recipe.yaml").string(), "-o", (dir / "out").string(), "--cache", k_cache.string(), "--json"},
    test::ab_fixture_env());
  ASSERT_EQ(b.exit_code, 0) << b.err;
  json built = json::parse(b.out);
  EXPECT_NE(b.err.find("Checking docker version: PASS (19.03.15 >= 18.09.1)"), std::string::npos) << b.err;
  EXPECT_EQ(built["built"].back(), "finalize");
  EXPECT_NE(std::find(built["built"].begin(), built["built"].end(), "dcos"), built["built"].end());
  fs::path image = dir / "out/dcos-fixture.qcow2";
  ASSERT_TRUE(fs::exists(image));
  auto t1 = clock::now();

  // The variants: qcow2 overlays on the passing image, each broken in one way.
  std::vector<Variant> variants = {
    {"docker-missing", "slave", [](gfs::Handle& g) { g.rm_f("/usr/bin/docker"); }, {"docker is installed"}},
    {"firewalld-enabled",
     "slave",
     [](gfs::Handle& g) {
       g.rm_f("/etc/systemd/system/firewalld.service");
       g.ln_sf("/lib/systemd/system/firewalld.service",
               "/etc/systemd/system/multi-user.target.wants/firewalld.service");
     },
     {"firewalld is not enabled"}},
    {"selinux-enforcing-mls",
     "master",
     [](gfs::Handle& g) { g.write("/etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=mls\n"); },
     {"SELinux mode"}},
    {"no-time-sync",
     "slave",
     [](gfs::Handle& g) {
       for (const auto& p : g.glob("/etc/systemd/system/*.wants/systemd-timesyncd*")) {
         g.rm_f(p);
       }
     },
     {"time synchronisation is enabled"}},
    {"preexisting-mesosphere",
     "slave_public",
     [](gfs::Handle& g) {
       g.mkdir_p("/opt/mesosphere");
       g.write("/opt/mesosphere/bootstrap", "");
     },
     {"if DC/OS is already installed"}},
    {"bundle-incomplete",
     "slave",
     [](gfs::Handle& g) { g.rm_rf("/opt/dcos_install_tmp/packages/mesos"); },
     {"DC/OS bundle in /opt/dcos_install_tmp"}},
    {"port-conflict",
     "slave",
     [](gfs::Handle& g) {
       g.ln_sf("/lib/systemd/system/named.service", "/etc/systemd/system/multi-user.target.wants/named.service");
     },
     {"ports for slave"}},
  };
  std::vector<fs::path> overlays;
  for (const auto& var : variants) {
    overlays.push_back(dir / (var.name + ".qcow2"));
    util::run_checked(
      {"qemu-img", "create", "-q", "-f", "qcow2", "-b", image.string(), "-F", "qcow2", overlays.back().string()});
  }

  // One launch: the passing image verified for every role, then each variant broken
  // through the appliance and verified on the same mount. Each appliance launch and each
  // inspection costs tens of seconds under TCG, so there is one of each.
  {
    gfs::Handle g;
    g.add_drive(image.string(), "qcow2", true);
    for (const auto& o : overlays) {
      g.add_drive(o.string(), "qcow2");
    }
    g.launch();
    std::vector<std::string> roots = g.inspect_os();
    ASSERT_EQ(roots.size(), variants.size() + 1);
    std::sort(roots.begin(), roots.end()); // /dev/sda1, /dev/sdb1, ... in drive order
    auto check = [&](size_t i, const std::string& role) {
      verify::GuestfsView view(g, g.inspect_mountpoints(roots[i]), "deb", roots[i]);
      return dcos::run_checks(view, {dcos::parse_role(role).value(), std::string("2.2.1")});
    };
    g.mount(roots[0], "/");
    for (const char* role : {"slave", "slave_public", "master"}) {
      auto results = check(0, role);
      EXPECT_TRUE(dcos::all_pass(results)) << role << "\n" << test::check_lines(results);
    }
    g.umount_all();
    for (size_t i = 0; i < variants.size(); ++i) {
      SCOPED_TRACE(variants[i].name);
      g.mount(roots[i + 1], "/");
      variants[i].breakit(g);
      auto results = check(i + 1, variants[i].role);
      EXPECT_EQ(test::failed_checks(results), variants[i].expected) << test::check_lines(results);
      g.umount_all();
    }
    g.shutdown();
  }
  auto t2 = clock::now();

  // The CLI on a broken variant, in both output modes' terms: exit 1, the installer-style
  // FAIL line, and --json with every other check passing.
  util::RunResult bad =
    test::run_kiln({"verify", overlays[0].string(), "--role", "slave", "--dcos-version", "2.2.1", "--json"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  json checks = json::parse(bad.out);
  ASSERT_TRUE(checks.is_array());
  EXPECT_GT(checks.size(), 15u);
  for (const auto& c : checks) {
    if (c["check"] == "docker is installed") {
      EXPECT_EQ(c["result"], "FAIL") << c.dump();
      EXPECT_EQ(c["detail"], "no docker binary in the image") << c.dump();
    } else {
      EXPECT_EQ(c["result"], "PASS") << c.dump();
    }
  }
  auto t3 = clock::now();
  auto s = [](auto a, auto z) { return std::chrono::duration_cast<std::chrono::seconds>(z - a).count(); };
  std::cout << "timing: build " << s(t0, t1) << " s (" << built["launches"]
            << " launches), verify 3 roles, break and verify " << variants.size() << " variants " << s(t1, t2)
            << " s, verify CLI (fail) " << s(t2, t3) << " s\n";
}

} // namespace
} // namespace kiln
