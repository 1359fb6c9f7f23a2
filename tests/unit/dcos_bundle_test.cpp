// Bundle validation on synthetic genconf/serve trees with the real layout: a good tree
// passes and has a stable digest; every kind of damage is refused naming the file.
#include "core/dcos/bundle.hpp"
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <thread>

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string
subject_of(const Error& e)
{
  return e.subject();
}

TEST(DcosBundle, GoodTreeValidates)
{
  test::ScratchDir dir;
  test::ServeTree t = test::make_serve_tree(dir / "serve");
  dcos::Bundle b = dcos::validate_bundle(t.dir, "serve");
  EXPECT_EQ(b.bootstrap_id, t.bootstrap_id);
  EXPECT_EQ(b.package_list_id, t.package_list_id);
  EXPECT_EQ(b.packages, t.packages);
  // dcos_install.sh, bootstrap, list and the four packages; never the index files.
  ASSERT_EQ(b.files.size(), 7u);
  for (const auto& f : b.files) {
    EXPECT_EQ(f.path.find(".latest"), std::string::npos) << f.path;
    EXPECT_EQ(f.path.find("active.json"), std::string::npos) << f.path;
    EXPECT_EQ(f.sha256.size(), 64u);
  }
  EXPECT_EQ(dcos::describe_bundle(t.dir, "x").digest, b.digest);
  // The digest changes with any staged file.
  test::write_text(t.dir / "dcos_install.sh", test::read_text(t.dir / "dcos_install.sh") + "# changed\n");
  EXPECT_NE(dcos::validate_bundle(t.dir, "serve").digest, b.digest);
}

// The synthetic tree is a test fixture: made twice, in two places at two moments, it has
// the same bytes (the same bundle digest over every staged file).
TEST(DcosBundle, SyntheticTreeIsTheSameBytesEveryTime)
{
  test::ScratchDir dir;
  test::ServeTree one = test::make_serve_tree(dir / "one");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // another second for tar's clock
  test::ServeTree two = test::make_serve_tree(dir / "two");
  EXPECT_EQ(dcos::validate_bundle(one.dir, "one").digest, dcos::validate_bundle(two.dir, "two").digest);
}

TEST(DcosBundle, PackagePaths)
{
  EXPECT_EQ(dcos::package_path("mesos--1.11.0-2b7c1e9", "s"), "packages/mesos/mesos--1.11.0-2b7c1e9.tar.xz");
  EXPECT_EQ(dcos::package_path("dcos-config--setup_ab", "s"), "packages/dcos-config/dcos-config--setup_ab.tar.xz");
  EXPECT_EQ(subject_of(test::error_of([] { dcos::package_path("nodashes", "LIST"); })), "LIST");
  EXPECT_EQ(subject_of(test::error_of([] { dcos::package_path("../x--1", "LIST"); })), "LIST");
}

TEST(DcosBundle, InstallScriptParsing)
{
  // heredoc form
  auto s = dcos::parse_install_script("cat <<'EOF' > \"/etc/mesosphere/setup-flags/repository-url\"\n"
                                      "http://10.1.1.8:8080\nEOF\n"
                                      "echo -n 'abc123' > /etc/mesosphere/setup-flags/cluster-package-list\n"
                                      "curl http://10.1.1.8:8080/bootstrap/ff00.bootstrap.tar.xz\n");
  EXPECT_EQ(s.bootstrap_url, "http://10.1.1.8:8080");
  EXPECT_EQ(s.package_list_id, "abc123");
  EXPECT_EQ(s.bootstrap_id, "ff00");
  // without the flag, the tarball URL gives the bootstrap_url
  s = dcos::parse_install_script("x file:///opt/dcos_install_tmp/bootstrap/ee.bootstrap.tar.xz y\n");
  EXPECT_EQ(s.bootstrap_url, "file:///opt/dcos_install_tmp");
  EXPECT_EQ(s.bootstrap_id, "ee");
}

struct Damage {
  const char* what;
  std::function<void(const test::ServeTree&)> apply;
  std::function<std::string(const test::ServeTree&)> file; // expected subject, relative
  const char* reason; // a fragment of the reason
};

TEST(DcosBundle, DamageIsRefusedNamingTheFile)
{
  std::vector<Damage> cases = {
    {"bootstrap.latest names a missing tarball",
     [](const test::ServeTree& t) { test::write_text(t.dir / "bootstrap.latest", "0123abcd\n"); },
     [](const test::ServeTree&) { return std::string("bootstrap/0123abcd.bootstrap.tar.xz"); }, "missing"},
    {"empty cluster-package-list.latest",
     [](const test::ServeTree& t) { test::write_text(t.dir / "cluster-package-list.latest", "\n"); },
     [](const test::ServeTree&) { return std::string("cluster-package-list.latest"); }, "empty"},
    {"package list is not JSON",
     [](const test::ServeTree& t) {
       test::write_text(t.dir / ("package_lists/" + t.package_list_id + ".package_list.json"), "[\"a--1\",");
     },
     [](const test::ServeTree& t) { return "package_lists/" + t.package_list_id + ".package_list.json"; },
     "not valid JSON"},
    {"listed package missing",
     [](const test::ServeTree& t) { fs::remove(t.dir / ("packages/mesos/" + t.packages[2] + ".tar.xz")); },
     [](const test::ServeTree& t) { return "packages/mesos/" + t.packages[2] + ".tar.xz"; }, "missing"},
    {"package truncated",
     [](const test::ServeTree& t) {
       fs::path p = t.dir / ("packages/marathon/" + t.packages[3] + ".tar.xz");
       fs::resize_file(p, fs::file_size(p) / 2);
     },
     [](const test::ServeTree& t) { return "packages/marathon/" + t.packages[3] + ".tar.xz"; }, "readable tar.xz"},
    {"package not xz",
     [](const test::ServeTree& t) {
       fs::path p = t.dir / ("packages/marathon/" + t.packages[3] + ".tar.xz");
       util::run_checked({"tar", "-C", t.dir.string(), "-cf", p.string(), "bootstrap.latest"});
     },
     [](const test::ServeTree& t) { return "packages/marathon/" + t.packages[3] + ".tar.xz"; }, "xz"},
    {"bootstrap tarball corrupt",
     [](const test::ServeTree& t) {
       test::write_text(t.dir / ("bootstrap/" + t.bootstrap_id + ".bootstrap.tar.xz"), "garbage");
     },
     [](const test::ServeTree& t) { return "bootstrap/" + t.bootstrap_id + ".bootstrap.tar.xz"; }, "readable"},
    {"dcos_install.sh missing", [](const test::ServeTree& t) { fs::remove(t.dir / "dcos_install.sh"); },
     [](const test::ServeTree&) { return std::string("dcos_install.sh"); }, "missing"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    test::ScratchDir dir;
    test::ServeTree t = test::make_serve_tree(dir / "serve");
    c.apply(t);
    Error e = test::error_of([&] { dcos::validate_bundle(t.dir, "LABEL"); });
    EXPECT_EQ(e.subject(), "LABEL/" + c.file(t));
    EXPECT_NE(std::string(e.reason()).find(c.reason), std::string::npos) << e.reason();
  }
}

TEST(DcosBundle, OnlineBootstrapUrlIsRefusedWithTheFix)
{
  test::ScratchDir dir;
  test::ServeTreeOptions o;
  o.bootstrap_url = "http://10.1.1.8:8080";
  test::ServeTree t = test::make_serve_tree(dir / "serve", o);
  Error e = test::error_of([&] { dcos::validate_bundle(t.dir, "S"); });
  EXPECT_EQ(e.subject(), "S/dcos_install.sh");
  std::string reason = e.reason();
  EXPECT_NE(reason.find("http://10.1.1.8:8080"), std::string::npos) << reason;
  EXPECT_NE(reason.find("bootstrap_url: file:///opt/dcos_install_tmp"), std::string::npos) << reason;
  EXPECT_NE(reason.find("dcos_generate_config.sh --genconf"), std::string::npos) << reason;
}

TEST(DcosBundle, ScriptFromAnotherGenconfRunIsRefused)
{
  test::ScratchDir dir;
  test::ServeTree a = test::make_serve_tree(dir / "a");
  test::ServeTreeOptions o;
  o.salt = "-other";
  test::make_serve_tree(dir / "b", o);
  fs::copy_file(dir / "b/dcos_install.sh", a.dir / "dcos_install.sh", fs::copy_options::overwrite_existing);
  Error e = test::error_of([&] { dcos::validate_bundle(a.dir, "A"); });
  EXPECT_EQ(e.subject(), "A/dcos_install.sh");
  EXPECT_NE(std::string(e.reason()).find("different genconf runs"), std::string::npos) << e.reason();
}

} // namespace
} // namespace kiln
