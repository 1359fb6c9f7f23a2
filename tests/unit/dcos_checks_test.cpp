// The checks of `kiln verify` on plain directory trees: a tree made to pass passes for
// every role; each broken variant fails exactly the check it breaks.
#include "core/dcos/bundle.hpp"
#include "core/dcos/caching_view.hpp"
#include "core/dcos/checks.hpp"
#include "core/dcos/firstboot.hpp"
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

dcos::Role
role_of(const std::string& name)
{
  std::optional<dcos::Role> r = dcos::parse_role(name);
  if (!r) {
    ADD_FAILURE() << "not a role: " << name;
  }
  return r.value_or(dcos::Role::slave);
}

namespace fs = std::filesystem;

void
link(const fs::path& root, const std::string& target, const std::string& at)
{
  fs::create_directories((root / at.substr(1)).parent_path());
  fs::create_symlink(target, root / at.substr(1));
}

void
put(const fs::path& root, const std::string& path, const std::string& content)
{
  test::write_text(root / path.substr(1), content);
}

std::string
dpkg_entry(const std::string& name, const std::string& version)
{
  return "Package: " + name + "\nStatus: install ok installed\nVersion: " + version + "\nArchitecture: amd64\n\n";
}

// A root that passes every check for every role (usrmerge layout: /bin -> usr/bin).
void
make_passing_root(const fs::path& root, const fs::path& scratch)
{
  fs::create_directories(root / "usr/bin");
  fs::create_directories(root / "usr/sbin");
  link(root, "usr/bin", "/bin");
  link(root, "usr/sbin", "/sbin");
  for (const char* c : {"docker", "curl", "bash", "ping", "tar", "xz", "unzip", "systemd-notify", "sort"}) {
    put(root, std::string("/usr/bin/") + c, "#!/bin/sh\n");
  }
  put(root, "/usr/sbin/ipset", "#!/bin/sh\n");
  put(root, "/usr/sbin/ifconfig", "#!/bin/sh\n"); // DC/OS 1.12.0-1.12.5 check it
  put(root, "/var/lib/dpkg/status",
      dpkg_entry("coreutils", "9.1-1") + dpkg_entry("systemd", "252.22-1~deb12u1") +
        dpkg_entry("docker-ce", "5:19.03.15~3-0~debian-bookworm") + dpkg_entry("containerd.io", "1.4.13-1"));
  put(root, "/etc/group", "root:x:0:\nnogroup:x:65534:\ndocker:x:998:\n");
  put(root, "/etc/selinux/config", "SELINUX=permissive\nSELINUXTYPE=targeted\n");
  put(root, "/etc/docker/daemon.json", "{\"storage-driver\": \"overlay2\", \"live-restore\": false}\n");
  put(root, "/lib/systemd/system/docker.service", "[Service]\n");
  link(root, "/lib/systemd/system/docker.service", "/etc/systemd/system/multi-user.target.wants/docker.service");
  link(root, "/lib/systemd/system/chrony.service", "/etc/systemd/system/multi-user.target.wants/chrony.service");
  link(root, "/lib/systemd/system/chrony.service", "/etc/systemd/system/chronyd.service");
  link(root, "/dev/null", "/etc/systemd/system/firewalld.service");
  link(root, "/dev/null", "/etc/systemd/system/dnsmasq.service");
  put(root, "/etc/systemd/system/kiln-dcos-install.service", dcos::firstboot_unit());
  link(root, "/etc/systemd/system/kiln-dcos-install.service",
       "/etc/systemd/system/multi-user.target.wants/kiln-dcos-install.service");
  put(root, "/etc/kiln/dcos-role", "slave\n");
  fs::create_directories(root / "opt/mesosphere"); // empty is allowed
  test::ServeTree t = test::make_serve_tree(scratch / "serve");
  dcos::Bundle b = dcos::validate_bundle(t.dir, "serve");
  for (const auto& f : b.files) {
    fs::create_directories((root / "opt/dcos_install_tmp" / f.path).parent_path());
    fs::copy_file(t.dir / f.path, root / "opt/dcos_install_tmp" / f.path);
  }
}

// A CountingView's counts without the file reads, which are not kept.
std::map<std::string, int>
counts_without_reads(const std::map<std::string, int>& counts)
{
  std::map<std::string, int> out;
  for (const auto& [question, n] : counts) {
    if (question.rfind("read_file ", 0) != 0) {
      out[question] = n;
    }
  }
  return out;
}

TEST(DcosChecks, PassingTreePassesForEveryRole)
{
  test::ScratchDir dir;
  make_passing_root(dir / "root", dir.path());
  dcos::DirView view(dir / "root");
  for (const auto& role : dcos::roles()) {
    for (std::optional<std::string> version :
         {std::optional<std::string>(), std::optional<std::string>("2.2.1"), std::optional<std::string>("1.12.2")}) {
      auto results = dcos::run_checks(view, {role_of(role), version});
      EXPECT_TRUE(dcos::all_pass(results)) << role << "\n" << test::check_lines(results);
    }
  }
  auto results = dcos::run_checks(view, {dcos::Role::master, std::nullopt});
  EXPECT_EQ(dcos::format_line(results.front()), "Checking if DC/OS is already installed: PASS (not installed)");
  auto j = dcos::to_json(results);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j[0]["result"], "PASS");
}

// Agent attributes and resources an operator writes before the install (on kiln-data,
// /var/lib/dcos) are no installed DC/OS.
TEST(DcosChecks, SeededAgentAttributesAreNoInstall)
{
  test::ScratchDir dir;
  make_passing_root(dir / "root", dir.path());
  put(dir / "root", "/var/lib/dcos/mesos-slave-common", "MESOS_ATTRIBUTES=rack:r1\n");
  put(dir / "root", "/var/lib/dcos/mesos-resources", "MESOS_RESOURCES=[]\n");
  dcos::DirView view(dir / "root");
  auto results = dcos::run_checks(view, {dcos::Role::slave, std::nullopt});
  EXPECT_EQ(dcos::format_line(results.front()), "Checking if DC/OS is already installed: PASS (not installed)");
}

struct Variant {
  const char* what;
  std::string role;
  std::optional<std::string> version;
  std::function<void(const fs::path&)> breakit;
  std::string check; // the one check that must fail
  std::string also = ""; // ... and a second one its breakage implies
};

TEST(DcosChecks, EachBrokenVariantFailsExactlyItsCheck)
{
  std::vector<Variant> variants = {
    {"docker missing", "slave", std::nullopt, [](const fs::path& r) { fs::remove(r / "usr/bin/docker"); },
     "docker is installed"},
    {"docker disabled", "master", std::nullopt,
     [](const fs::path& r) { fs::remove(r / "etc/systemd/system/multi-user.target.wants/docker.service"); },
     "docker is enabled"},
    {"docker too old", "master", "2.2.1",
     [](const fs::path& r) {
       put(r, "/var/lib/dpkg/status",
           dpkg_entry("coreutils", "9.1-1") + dpkg_entry("systemd", "252") + dpkg_entry("docker-ce", "17.05.0-1"));
     },
     "docker version"},
    {"live-restore on", "slave", std::nullopt,
     [](const fs::path& r) { put(r, "/etc/docker/daemon.json", "{\"live-restore\": true}"); }, "docker storage driver"},
    {"devicemapper loop", "slave", std::nullopt,
     [](const fs::path& r) { put(r, "/etc/docker/daemon.json", "{\"storage-driver\": \"devicemapper\"}"); },
     "docker storage driver"},
    {"firewalld enabled", "master", std::nullopt,
     [](const fs::path& r) {
       fs::remove(r / "etc/systemd/system/firewalld.service");
       link(r, "/usr/lib/systemd/system/firewalld.service",
            "/etc/systemd/system/multi-user.target.wants/firewalld.service");
     },
     "firewalld is not enabled"},
    {"dnsmasq enabled", "slave", std::nullopt,
     [](const fs::path& r) {
       fs::remove(r / "etc/systemd/system/dnsmasq.service");
       link(r, "/usr/lib/systemd/system/dnsmasq.service",
            "/etc/systemd/system/multi-user.target.wants/dnsmasq.service");
     },
     "dnsmasq is not enabled", "ports for slave"}, // dnsmasq holds port 53
    {"selinux enforcing, mls", "master", "2.2.1",
     [](const fs::path& r) { put(r, "/etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=mls\n"); }, "SELinux mode"},
    {"selinux enforcing on 1.11", "master", "1.11.4",
     [](const fs::path& r) { put(r, "/etc/selinux/config", "SELINUX=enforcing\nSELINUXTYPE=targeted\n"); },
     "SELinux mode"},
    {"no time sync", "slave", std::nullopt,
     [](const fs::path& r) { fs::remove(r / "etc/systemd/system/multi-user.target.wants/chrony.service"); },
     "time synchronisation is enabled"},
    {"time sync masked", "slave", std::nullopt,
     [](const fs::path& r) {
       fs::remove(r / "etc/systemd/system/chronyd.service");
       link(r, "/dev/null", "/etc/systemd/system/chrony.service");
     },
     "time synchronisation is enabled"},
    {"pre-existing /opt/mesosphere", "slave", std::nullopt,
     [](const fs::path& r) { put(r, "/opt/mesosphere/bootstrap", ""); }, "if DC/OS is already installed"},
    {"pre-existing /var/lib/dcos state", "slave", std::nullopt,
     [](const fs::path& r) {
       put(r, "/var/lib/dcos/mesos-slave-common", "MESOS_ATTRIBUTES=rack:r1\n");
       put(r, "/var/lib/dcos/cluster-id", "x\n");
     },
     "if DC/OS is already installed"},
    {"dcos.target", "master", std::nullopt,
     [](const fs::path& r) { put(r, "/etc/systemd/system/dcos.target", "[Unit]\n"); }, "if DC/OS is already installed"},
    {"no nogroup", "slave", std::nullopt, [](const fs::path& r) { put(r, "/etc/group", "root:x:0:\n"); },
     "group nogroup"},
    {"ipset missing", "slave", std::nullopt, [](const fs::path& r) { fs::remove(r / "usr/sbin/ipset"); },
     "ipset is installed"},
    {"old systemd", "master", std::nullopt,
     [](const fs::path& r) {
       put(r, "/var/lib/dpkg/status",
           dpkg_entry("coreutils", "9.1-1") + dpkg_entry("systemd", "187-1") + dpkg_entry("docker-ce", "19.03.15"));
     },
     "systemd version"},
    {"bundle incomplete", "slave", std::nullopt,
     [](const fs::path& r) {
       for (const auto& e : fs::directory_iterator(r / "opt/dcos_install_tmp/packages/mesos")) {
         fs::remove(e.path());
       }
     },
     "DC/OS bundle in /opt/dcos_install_tmp"},
    {"port-conflicting unit (zookeeper on a master)", "master", std::nullopt,
     [](const fs::path& r) {
       link(r, "/usr/lib/systemd/system/zookeeper.service",
            "/etc/systemd/system/multi-user.target.wants/zookeeper.service");
     },
     "ports for master"},
    {"port-conflicting unit (nginx... only masters need 80, so an agent needs 53: named)", "slave_public", std::nullopt,
     [](const fs::path& r) {
       link(r, "/usr/lib/systemd/system/named.service", "/etc/systemd/system/multi-user.target.wants/named.service");
     },
     "ports for slave_public"},
    {"first-boot unit not enabled", "slave", std::nullopt,
     [](const fs::path& r) { fs::remove(r / "etc/systemd/system/multi-user.target.wants/kiln-dcos-install.service"); },
     "first-boot install unit"},
  };
  for (const auto& v : variants) {
    SCOPED_TRACE(v.what);
    test::ScratchDir dir;
    make_passing_root(dir / "root", dir.path());
    v.breakit(dir / "root");
    dcos::DirView view(dir / "root");
    auto results = dcos::run_checks(view, {role_of(v.role), v.version});
    std::vector<std::string> expected{v.check};
    if (!v.also.empty()) {
      expected.push_back(v.also);
    }
    EXPECT_EQ(test::failed_checks(results), expected) << test::check_lines(results);
    if (v.check == "docker is installed") {
      // The installer's own line format, which `kiln verify` prints.
      auto it = std::find_if(results.begin(), results.end(), [](const auto& r) { return !r.pass; });
      ASSERT_NE(it, results.end());
      EXPECT_EQ(dcos::format_line(*it), "Checking docker is installed: FAIL (no docker binary in the image)");
    }
  }
}

// Counts what reaches the view under test, per question and path.
class CountingView : public dcos::FsView {
public:
  explicit CountingView(dcos::FsView& inner) : m_inner(inner) {}
  bool exists(const std::string& p) override
  {
    return ask("exists", p, [&] { return m_inner.exists(p); });
  }
  bool is_file(const std::string& p) override
  {
    return ask("is_file", p, [&] { return m_inner.is_file(p); });
  }
  bool is_dir(const std::string& p) override
  {
    return ask("is_dir", p, [&] { return m_inner.is_dir(p); });
  }
  bool is_symlink(const std::string& p) override
  {
    return ask("is_symlink", p, [&] { return m_inner.is_symlink(p); });
  }
  std::string readlink(const std::string& p) override
  {
    return ask("readlink", p, [&] { return m_inner.readlink(p); });
  }
  std::string read_file(const std::string& p) override
  {
    return ask("read_file", p, [&] { return m_inner.read_file(p); });
  }
  std::vector<std::string> list(const std::string& p) override
  {
    return ask("list", p, [&] { return m_inner.list(p); });
  }
  std::optional<std::string> package_version(const std::string& n) override
  {
    return ask("package_version", n, [&] { return m_inner.package_version(n); });
  }
  std::optional<dcos::Filesystem> filesystem_of(const std::string& p) override
  {
    return ask("filesystem_of", p, [&] { return m_inner.filesystem_of(p); });
  }
  std::string describe() const override { return m_inner.describe(); }

  std::map<std::string, int> counts;
  int total = 0;

private:
  template <typename F>
  auto ask(const std::string& what, const std::string& p, F f) -> decltype(f())
  {
    ++counts[what + " " + p];
    ++total;
    return f();
  }
  dcos::FsView& m_inner;
};

// Through libguestfs every question is a round trip to the appliance: run_checks asks
// each one once (read_file aside, which it does not keep), and gets the same answers.
TEST(DcosChecks, EachQuestionReachesTheViewOnce)
{
  test::ScratchDir dir;
  make_passing_root(dir / "root", dir.path());
  dcos::DirView plain(dir / "root");
  for (const char* role : {"master", "slave"}) {
    CountingView counting(plain);
    auto results = dcos::run_checks(counting, {role_of(role), std::string("2.2.1")});
    EXPECT_TRUE(dcos::all_pass(results)) << test::check_lines(results);
    for (const auto& [question, n] : counts_without_reads(counting.counts)) {
      EXPECT_EQ(n, 1) << question;
    }
    // unit_enabled() alone asks for /etc/systemd/system dozens of times.
    EXPECT_LT(counting.total, 200) << role;
  }
  // A memo answers as the view does, including a failure, which is asked again.
  CountingView counting(plain);
  dcos::CachingView cached(counting);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(cached.is_symlink("/bin"));
    EXPECT_EQ(cached.readlink("/bin"), "usr/bin");
    EXPECT_TRUE(cached.is_dir("/bin"));
    EXPECT_FALSE(cached.is_symlink("/usr/bin/docker"));
    EXPECT_TRUE(cached.is_file("/bin/docker"));
    EXPECT_FALSE(cached.exists("/opt/mesosphere/bootstrap"));
    EXPECT_EQ(cached.list("/opt/mesosphere"), std::vector<std::string>{});
    EXPECT_EQ(cached.package_version("docker-ce"), plain.package_version("docker-ce"));
    EXPECT_THROW(cached.readlink("/usr/bin/docker"), Error);
  }
  for (const auto& [question, n] : counting.counts) {
    EXPECT_EQ(n, question == "readlink /usr/bin/docker" ? 2 : 1) << question;
  }
}

TEST(DcosChecks, NginxIsFineOnAnAgentButNotOnAMaster)
{
  test::ScratchDir dir;
  make_passing_root(dir / "root", dir.path());
  link(dir / "root", "/usr/lib/systemd/system/nginx.service",
       "/etc/systemd/system/multi-user.target.wants/nginx.service");
  dcos::DirView view(dir / "root");
  EXPECT_TRUE(dcos::all_pass(dcos::run_checks(view, {dcos::Role::slave, std::nullopt})));
  auto results = dcos::run_checks(view, {dcos::Role::master, std::nullopt});
  EXPECT_EQ(test::failed_checks(results), std::vector<std::string>{"ports for master"});
}

TEST(DcosChecks, XfsFtypeOnAgentsFromARealSuperblock)
{
  std::string mkfs = test::require_program("mkfs.xfs", "xfsprogs");
  test::ScratchDir dir;
  make_passing_root(dir / "root", dir.path());
  auto superblock = [&](const std::string& name, const std::vector<std::string>& opts) {
    fs::path img = dir / name;
    util::run_checked({"truncate", "-s", "320M", img.string()});
    std::vector<std::string> argv{mkfs, "-q", "-f"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back(img.string());
    util::run_checked(argv);
    std::string sb = test::read_text(img).substr(0, 512);
    return dcos::xfs_superblock_ftype(sb);
  };
  auto good = superblock("good.img", {});
  auto bad = superblock("bad.img", {"-m", "crc=0", "-n", "ftype=0"});
  auto v4good = superblock("v4.img", {"-m", "crc=0", "-n", "ftype=1"});
  ASSERT_TRUE(good && bad && v4good);
  EXPECT_TRUE(*good);
  EXPECT_FALSE(*bad);
  EXPECT_TRUE(*v4good);
  EXPECT_FALSE(dcos::xfs_superblock_ftype(std::string(512, '\0')).has_value());

  dcos::DirView view(dir / "root", {{"/", {"/", "/dev/sda1", "ext4", std::nullopt}},
                                    {"/var/lib/mesos", {"", "/dev/sdb1", "xfs", false}},
                                    {"/var/lib/docker", {"", "/dev/sdc1", "xfs", true}}});
  auto results = dcos::run_checks(view, {dcos::Role::slave, std::nullopt});
  EXPECT_EQ(test::failed_checks(results),
            std::vector<std::string>{"XFS ftype for the agent work dir /var/lib/mesos/slave"});
  // Masters do not check it (the installer checks agents only).
  EXPECT_TRUE(dcos::all_pass(dcos::run_checks(view, {dcos::Role::master, std::nullopt})));
}

TEST(DcosChecks, VersionsAndPorts)
{
  EXPECT_LT(dcos::compare_versions("1.9", "1.10"), 0);
  EXPECT_GT(dcos::compare_versions("19.03.15", "18.09.1"), 0);
  EXPECT_EQ(dcos::compare_versions("1.6", "1.6"), 0);
  EXPECT_LT(dcos::compare_versions("1.6", "1.6.1"), 0);
  auto p22 = dcos::role_ports(dcos::Role::master, "2.2.1");
  EXPECT_NE(std::find(p22.begin(), p22.end(), 2379), p22.end());
  EXPECT_EQ(std::find(p22.begin(), p22.end(), 15055), p22.end());
  auto p111 = dcos::role_ports(dcos::Role::slave, "1.11.2");
  EXPECT_NE(std::find(p111.begin(), p111.end(), 61420), p111.end());
  EXPECT_EQ(std::find(p111.begin(), p111.end(), 179), p111.end());
  test::ScratchDir dir;
  dcos::DirView view(dir.path());
  // Roles are the installer's three names and nothing else.
  EXPECT_FALSE(dcos::parse_role("worker").has_value());
  EXPECT_FALSE(dcos::parse_role("Master").has_value());
  for (const auto& name : dcos::roles()) {
    EXPECT_EQ(dcos::role_name(role_of(name)), name);
  }
  EXPECT_EQ(std::string(dcos::mesos_unit(dcos::Role::slave_public)), "dcos-mesos-slave-public.service");
  EXPECT_EQ(test::error_of([&] {
              dcos::run_checks(view, {dcos::Role::master, "two"});
            }).subject(),
            "--dcos-version two");
}

} // namespace
} // namespace kiln
