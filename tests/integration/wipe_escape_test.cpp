// kiln-node wipe --dcos never leaves its root (issue 14): symlinks anywhere on a path
// beneath --root are never followed, mount points (bind mounts of the same file system
// included, made in a private mount namespace with unshare -m) are never entered, and
// --root must be an absolute, existing directory. Each test builds the attack first and
// shows the victim intact afterwards.
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace kiln {
namespace {

using nlohmann::json;
using test::ScratchDir;
namespace fs = std::filesystem;

bool
present(const fs::path& p)
{
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

bool
lists(const json& j, const std::string& key, const fs::path& path)
{
  for (const auto& v : j.at(key)) {
    if (v.get<std::string>() == path.string()) {
      return true;
    }
  }
  return false;
}

// A DC/OS node root with the state wipe removes.
void
make_root(const fs::path& root)
{
  for (const char* f : {"etc/mesosphere/roles/slave", "opt/mesosphere/bin/x", "var/lib/mesos/slave/meta/slaves/latest",
                        "var/lib/dcos/cluster-id", "etc/systemd/system/dcos-mesos-slave.service",
                        "var/lib/kiln/dcos-installed", "opt/dcos_install_tmp/dcos_install.sh",
                        "var/lib/docker/containers/x", "var/log/mesos/agent.log", "var/log/kiln/dcos-install.log"}) {
    test::write_text(root / f, "x");
  }
}

// A directory outside the root that an attacker points into, full of files.
fs::path
make_victim(const fs::path& dir, const std::vector<std::string>& files)
{
  for (const auto& f : files) {
    test::write_text(dir / f, "precious");
  }
  return dir;
}

void
expect_all_present(const fs::path& dir, const std::vector<std::string>& files)
{
  for (const auto& f : files) {
    EXPECT_TRUE(present(dir / f)) << (dir / f) << " was deleted through the wipe";
  }
}

json
wipe(const fs::path& root, bool keep_data)
{
  std::vector<std::string> args{"wipe", "--dcos", "--root", root.string(), "--json"};
  if (keep_data) {
    args.push_back("--keep-data");
  }
  auto r = test::run_kiln_node(args);
  EXPECT_TRUE(r.ok()) << r.err;
  return r.ok() ? json::parse(r.out) : json::object();
}

TEST(wipe_escape, root_must_be_an_absolute_existing_directory)
{
  ScratchDir dir;
  test::write_text(dir / "cwd/etc/mesosphere/roles/slave", "x");
  test::write_text(dir / "a-file", "x");
  for (const std::string& bad :
       {std::string(""), std::string("relative/root"), (dir / "missing").string(), (dir / "a-file").string()}) {
    util::RunOptions options;
    options.cwd = (dir / "cwd").string();
    std::vector<std::string> argv{KILN_NODE_BIN, "wipe", "--dcos", "--root", bad};
    auto r = util::run(argv, options);
    EXPECT_EQ(r.exit_code, 2) << "--root '" << bad << "': " << r.err;
    EXPECT_NE(r.err.find("kiln-node: error: "), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // The relative and empty roots did not wipe the working directory.
  EXPECT_TRUE(present(dir / "cwd/etc/mesosphere/roles/slave"));
}

TEST(wipe_escape, symlinks_beneath_the_root_are_never_followed)
{
  ScratchDir dir;
  const std::vector<std::string> files{"mesos/slave/x",     "dcos/y",  "docker/z", "kiln/dcos-installed",
                                       "dcos-evil.service", "etc.conf"};
  // var/log -> victim: /victim/* would go with the logs.
  fs::path log_root = dir / "r-log";
  make_root(log_root);
  fs::path v1 = make_victim(dir / "victim-log", files);
  fs::remove_all(log_root / "var/log");
  fs::create_symlink(v1, log_root / "var/log");
  json j = wipe(log_root, false);
  expect_all_present(v1, files);
  EXPECT_TRUE(lists(j, "symlinks_not_followed", log_root / "var/log")) << j.dump();
  EXPECT_FALSE(present(log_root / "var/lib/dcos/cluster-id")); // the rest of the wipe still happened

  // var/lib -> elsewhere: mesos/*, dcos and docker (also with --keep-data) under it.
  for (bool keep : {true, false}) {
    fs::path root = dir / (keep ? "r-lib-keep" : "r-lib");
    make_root(root);
    fs::path v = make_victim(dir / (keep ? "victim-lib-keep" : "victim-lib"), files);
    fs::remove_all(root / "var/lib");
    fs::create_symlink(v, root / "var/lib");
    j = wipe(root, keep);
    expect_all_present(v, files);
    EXPECT_TRUE(lists(j, "symlinks_not_followed", root / "var/lib")) << j.dump();
  }

  // var/lib/kiln -> victim (the stamp) and etc/systemd/system -> victim (units).
  fs::path unit_root = dir / "r-units";
  make_root(unit_root);
  fs::path v3 = make_victim(dir / "victim-kiln", files);
  fs::path v4 = make_victim(dir / "victim-units", files);
  fs::remove_all(unit_root / "var/lib/kiln");
  fs::create_symlink(v3, unit_root / "var/lib/kiln");
  fs::remove_all(unit_root / "etc/systemd/system");
  fs::create_symlink(v4, unit_root / "etc/systemd/system");
  j = wipe(unit_root, false);
  expect_all_present(v3, files);
  expect_all_present(v4, files);
  EXPECT_TRUE(lists(j, "symlinks_not_followed", unit_root / "etc/systemd/system")) << j.dump();

  // A symlink that is itself a wipe target, or inside one, is removed, not followed.
  fs::path inner_root = dir / "r-inner";
  make_root(inner_root);
  fs::path v5 = make_victim(dir / "victim-inner", files);
  fs::path v6 = make_victim(dir / "victim-top", files);
  fs::create_symlink(v5, inner_root / "var/lib/mesos/slave/link");
  fs::remove_all(inner_root / "opt/mesosphere");
  fs::create_symlink(v6, inner_root / "opt/mesosphere");
  wipe(inner_root, false);
  expect_all_present(v5, files);
  expect_all_present(v6, files);
  EXPECT_FALSE(present(inner_root / "var/lib/mesos/slave"));
  EXPECT_FALSE(present(inner_root / "opt/mesosphere"));
}

// Runs the wipe in a private mount namespace after the given bind mounts (source, target).
json
wipe_with_binds(const fs::path& root, bool keep_data, const std::vector<std::pair<fs::path, fs::path>>& binds)
{
  std::string script = "set -e; mount --make-rprivate /; ";
  for (const auto& [source, target] : binds) {
    script += "mount --bind '" + source.string() + "' '" + target.string() + "'; ";
  }
  script += "exec '" + std::string(KILN_NODE_BIN) + "' wipe --dcos --root '" + root.string() + "' --json";
  if (keep_data) {
    script += " --keep-data";
  }
  auto r = util::run({test::require_program("unshare", "util-linux"), "-m", "sh", "-c", script});
  EXPECT_TRUE(r.ok()) << r.err;
  return r.ok() ? json::parse(r.out) : json::object();
}

TEST(wipe_escape, bind_mounts_of_the_same_file_system_are_never_entered)
{
  ScratchDir dir;
  const std::vector<std::string> files{"data/a", "data/deep/b", "c"};
  // A Mesos volume: a same-file-system bind mount inside /var/lib/mesos.
  fs::path root = dir / "root";
  make_root(root);
  fs::path volume = make_victim(dir / "volume-src", files);
  fs::path volume_target = root / "var/lib/mesos/slave/volumes/roles/vol1";
  fs::create_directories(volume_target);
  // A bind-mounted single file too.
  test::write_text(dir / "file-src", "precious");
  test::write_text(root / "var/lib/mesos/slave/secret", "");
  json j =
    wipe_with_binds(root, false, {{volume, volume_target}, {dir / "file-src", root / "var/lib/mesos/slave/secret"}});
  expect_all_present(volume, files);
  EXPECT_EQ(test::read_text(dir / "file-src"), "precious");
  EXPECT_TRUE(lists(j, "mount_points_skipped", volume_target)) << j.dump();
  EXPECT_TRUE(lists(j, "mount_points_skipped", root / "var/lib/mesos/slave/secret")) << j.dump();
  EXPECT_FALSE(present(root / "var/lib/mesos/slave/meta")); // the agent id still went
  EXPECT_TRUE(present(root / "var/lib/mesos"));

  // --keep-data: Docker's data bind-mounted inside a wiped tree keeps its content.
  fs::path keep_root = dir / "keep";
  make_root(keep_root);
  fs::path docker = make_victim(dir / "docker-src", files);
  fs::path docker_target = keep_root / "var/lib/dcos/docker";
  fs::create_directories(docker_target);
  j = wipe_with_binds(keep_root, true, {{docker, docker_target}});
  expect_all_present(docker, files);
  EXPECT_TRUE(lists(j, "mount_points_skipped", docker_target)) << j.dump();
  EXPECT_FALSE(present(keep_root / "var/lib/dcos/cluster-id"));
}

} // namespace
} // namespace kiln
