// kiln-node, run as the real binary on A/B disk image files (and loop devices) made
// without libguestfs: status, reimage (file, HTTP with a dropped connection, rewrite),
// rollback, mark-good, wipe --dcos, install, key rotation and openssl interop.
#include "integration/node_fixture.hpp"

#include "core/bmap/bmap.hpp"
#include "core/manifest/manifest.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace kiln {
namespace {

using nlohmann::json;
using test::ScratchDir;
namespace fs = std::filesystem;
namespace fx = test::node;

class kiln_node : public fx::NodeScene {
protected:
  void SetUp() override { make_scene(); }

  util::RunResult node(std::vector<std::string> args, const std::map<std::string, std::string>& env = {})
  {
    args.insert(args.begin(), {"--disk", m_disk.path.string()});
    return test::run_kiln_node(args, env);
  }

  json status(const std::string& booted = "A")
  {
    auto r = node({"--booted", booted, "--json", "status"});
    EXPECT_TRUE(r.ok()) << r.err;
    return json::parse(r.out);
  }

  std::string a_hash() { return fx::slot_hash(m_disk, slots::k_part_a); }

};

TEST_F(kiln_node, status_of_a_fresh_disk)
{
  json s = status();
  EXPECT_EQ(s["booted"], "A");
  EXPECT_EQ(s["slots"]["A"]["state"], "good");
  EXPECT_EQ(s["slots"]["B"]["state"], "empty");
  EXPECT_EQ(s["next_boot"]["slot"], "A");
  EXPECT_EQ(s["next_boot"]["reason"], "good");
  EXPECT_EQ(s["slots"]["A"]["partuuid"], m_disk.gpt.by_label(slots::k_part_a).partuuid);
  // Without --booted and with a command line naming another disk, nothing is booted.
  test::write_text(m_dir / "cmdline", "root=PARTUUID=00000000-0000-0000-0000-000000000000 kiln.slot=A\n");
  auto r = node({"--json", "status"}, {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_TRUE(json::parse(r.out)["booted"].is_null());
  // A command line naming this disk's slot B partition makes B the booted slot.
  test::write_text(m_dir / "cmdline",
                   "ro root=PARTUUID=" + m_disk.gpt.by_label(slots::k_part_b).partuuid + " kiln.slot=B\n");
  r = node({"--json", "status", "--root", (m_dir / "noroot").string()},
           {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["booted"], "B");
  // Text output names both slots.
  r = node({"--booted", "A", "status"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.out.find("slot A:    good"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("next boot: A (good)"), std::string::npos) << r.out;
}

TEST_F(kiln_node, reimage_from_a_file_writes_the_inactive_slot_and_arms_it)
{
  std::string a_before = a_hash();
  auto r = node({"--booted", "A", "--json", "reimage", m_info.path.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["slot"], "B");
  EXPECT_EQ(j["digest"], m_info.manifest_sha256);
  EXPECT_EQ(j["key_id"], m_key.id);
  EXPECT_EQ(j["next_boot"]["slot"], "B");
  EXPECT_GT(j["zeroed_bytes"].get<std::uint64_t>(), 0u); // slot B held random bytes
  EXPECT_EQ(a_hash(), a_before);
  // The slot holds exactly the image (mapped ranges and zeroed gaps alike).
  auto image_size = fs::file_size(m_new);
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, image_size), crypto::sha256_file(m_new));
  // The real grub-editenv reads the block kiln-node wrote.
  std::string env = fx::grubenv_list(m_disk, m_dir.path());
  EXPECT_NE(env.find("kiln_order=B A\n"), std::string::npos) << env;
  EXPECT_NE(env.find("kiln_B_state=trial\n"), std::string::npos) << env;
  EXPECT_NE(env.find("kiln_B_tries=3\n"), std::string::npos) << env;
  EXPECT_NE(env.find("kiln_B_digest=" + m_info.manifest_sha256 + "\n"), std::string::npos) << env;
  EXPECT_NE(env.find("kiln_B_name=node-v2\n"), std::string::npos) << env;
  EXPECT_NE(env.find("kiln_A_state=good\n"), std::string::npos) << env;

  // Writing the same bundle again writes nothing but still verifies and re-arms.
  r = node({"--booted", "A", "--json", "reimage", m_info.path.string(), "--trust", m_trust.string(), "--tries", "5"});
  ASSERT_TRUE(r.ok()) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["written_bytes"], 0u);
  EXPECT_EQ(j["skipped_bytes"], j["mapped_bytes"]);
  EXPECT_EQ(j["zeroed_bytes"], 0u);
  EXPECT_EQ(status()["slots"]["B"]["tries"], "5");
}

TEST_F(kiln_node, tries_default_to_the_recipe_setting_on_kiln_boot)
{
  fs::path where = m_dir / "conf";
  fs::create_directories(where);
  m_disk = fx::make_ab_disk(where, {"kiln_order=A B", "kiln_A_state=good"}, m_old,
                            {{"grub/kiln-ab.conf", "tries=7\npanic=10\n"}});
  auto r = node({"--booted", "A", "--json", "reimage", m_info.path.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["tries"], 7);
  EXPECT_EQ(status()["slots"]["B"]["tries"], "7");
  EXPECT_EQ(status()["next_boot"]["tries_after"], "6");
}

TEST_F(kiln_node, reimage_over_http_resumes_a_dropped_connection)
{
  test::HttpServer server(m_dir / "bundles");
  std::string name = m_info.path.filename().string();
  auto r = node({"--booted", "A", "--json", "reimage", server.url("/drop/300000/" + name), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  json j = json::parse(r.out);
  EXPECT_GE(j["resumes"].get<int>(), 1);
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, fs::file_size(m_new)), crypto::sha256_file(m_new));
  bool ranged = false;
  for (const auto& req : server.requests()) {
    ranged = ranged || (req["range"].is_string() && req["range"].get<std::string>().rfind("bytes=300000-", 0) == 0);
  }
  EXPECT_TRUE(ranged) << server.requests().dump();
  // A missing bundle is one error line.
  r = node({"--booted", "A", "reimage", server.url("/files/nothing.kbundle"), "--trust", m_trust.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(test::lines(r.err).size(), 1u) << r.err;
}

TEST_F(kiln_node, booted_b_confirms_rolls_back_and_never_writes_itself)
{
  ASSERT_TRUE(node({"--booted", "A", "reimage", m_info.path.string(), "--trust", m_trust.string()}).ok());
  // Booted B: mark-good confirms it, the order stays.
  auto r = node({"--booted", "B", "--json", "mark-good"});
  ASSERT_TRUE(r.ok()) << r.err;
  json s = status("B");
  EXPECT_EQ(s["slots"]["B"]["state"], "good");
  EXPECT_EQ(s["slots"]["B"]["tries"], "0");
  EXPECT_EQ(s["next_boot"]["slot"], "B");
  // A reimage from B targets A, never B.
  std::string b_before = fx::slot_hash(m_disk, slots::k_part_b);
  r = node({"--booted", "B", "--json", "reimage", m_info.path.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["slot"], "A");
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b), b_before);
  // A is trial now: rollback from B to A is refused (A is not good) and changes nothing.
  r = node({"--booted", "B", "rollback"});
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("slot A is trial, not good"), std::string::npos) << r.err;
  EXPECT_EQ(status("B")["next_boot"]["slot"], "A");
  // Booted A confirms itself; rollback from A makes B (good) boot next.
  ASSERT_TRUE(node({"--booted", "A", "mark-good"}).ok());
  r = node({"--booted", "A", "--json", "rollback"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(json::parse(r.out)["next_boot"]["slot"], "B");
  std::string env = fx::grubenv_list(m_disk, m_dir.path());
  EXPECT_NE(env.find("kiln_order=B A\n"), std::string::npos) << env;
}

TEST_F(kiln_node, rollback_without_a_good_other_slot_is_refused)
{
  auto r = node({"--booted", "A", "rollback"});
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("kiln-node: error: rollback: slot B is empty", 0), 0u) << r.err;
  EXPECT_EQ(status()["order"], "A B");
}

TEST_F(kiln_node, mark_good_when_healthy_checks_dcos_and_systemd)
{
  ASSERT_TRUE(node({"--booted", "A", "reimage", m_info.path.string(), "--trust", m_trust.string()}).ok());
  fs::path root = m_dir / "root";
  test::write_text(root / "etc/kiln/dcos-role", "slave\n");
  fs::path systemctl = m_dir / "systemctl";
  test::write_text(systemctl, "#!/bin/sh\necho \"$@\" >> " + (m_dir / "calls").string() +
                                "\n[ \"$1 $2\" = \"is-active dcos-mesos-slave.service\" ] && { echo active; exit 0; }\n"
                                "echo inactive; exit 3\n");
  fs::permissions(systemctl, fs::perms::owner_all);
  std::map<std::string, std::string> env = {{"KILN_NODE_SYSTEMCTL", systemctl.string()}};
  // Install not finished: refused, nothing changes.
  auto r = node({"--booted", "B", "mark-good", "--when-healthy", "--root", root.string()}, env);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("has not finished"), std::string::npos) << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "trial");
  // Failed install: refused.
  test::write_text(root / "var/lib/kiln/dcos-install-failed", "exit 1\n");
  r = node({"--booted", "B", "mark-good", "--when-healthy", "--root", root.string()}, env);
  EXPECT_NE(r.err.find("install failed"), std::string::npos) << r.err;
  fs::remove(root / "var/lib/kiln/dcos-install-failed");
  // Installed and the agent unit active: confirmed.
  test::write_text(root / "var/lib/kiln/dcos-installed", "");
  r = node({"--booted", "B", "mark-good", "--when-healthy", "--root", root.string()}, env);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "good");
  // Master role: its unit is not active in the fake systemctl.
  test::write_text(root / "etc/kiln/dcos-role", "master\n");
  r = node({"--booted", "B", "mark-good", "--when-healthy", "--root", root.string()}, env);
  EXPECT_NE(r.err.find("dcos-mesos-master.service is not active"), std::string::npos) << r.err;
  // No DC/OS in the image: the system state decides.
  fs::path plain = m_dir / "plain";
  fs::create_directories(plain);
  test::write_text(systemctl, "#!/bin/sh\necho degraded\nexit 1\n");
  r = node({"--booted", "A", "mark-good", "--when-healthy", "--root", plain.string()}, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the system is degraded"), std::string::npos) << r.err;
  test::write_text(systemctl, "#!/bin/sh\necho running\n");
  EXPECT_TRUE(node({"--booted", "A", "mark-good", "--when-healthy", "--root", plain.string()}, env).ok());
}

TEST_F(kiln_node, wipe_dcos_removes_dcos_state_and_keeps_the_installer)
{
  fs::path root = m_dir / "root";
  for (const char* f : {"etc/mesosphere/roles/slave", "opt/mesosphere/bin/x", "var/lib/mesos/slave/meta/slaves/latest",
                        "var/lib/dcos/cluster-id", "etc/systemd/system/dcos-mesos-slave.service",
                        "etc/systemd/system/dcos.target", "var/lib/kiln/dcos-installed",
                        "var/lib/kiln/dcos-install-failed", "opt/dcos_install_tmp/dcos_install.sh",
                        "var/lib/docker/containers/x", "var/log/mesos/agent.log", "var/log/kiln/dcos-install.log",
                        "etc/systemd/system/docker.service"}) {
    test::write_text(root / f, "x");
  }
  fs::create_directories(root / "etc/systemd/system/dcos.target.wants");
  fs::create_symlink("/etc/systemd/system/dcos-mesos-slave.service",
                     root / "etc/systemd/system/dcos.target.wants/dcos-mesos-slave.service");
  fs::create_directories(root / "etc/systemd/system/multi-user.target.wants");
  fs::create_symlink("/etc/systemd/system/dcos.target", root / "etc/systemd/system/multi-user.target.wants/dcos.target");
  fs::create_symlink("/etc/systemd/system/docker.service",
                     root / "etc/systemd/system/multi-user.target.wants/docker.service");

  auto r = test::run_kiln_node({"wipe", "--dcos", "--keep-data", "--root", root.string(), "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  for (const char* gone : {"etc/mesosphere", "opt/mesosphere", "var/lib/dcos", "var/lib/mesos/slave",
                           "etc/systemd/system/dcos-mesos-slave.service", "etc/systemd/system/dcos.target",
                           "etc/systemd/system/dcos.target.wants", "etc/systemd/system/multi-user.target.wants/dcos.target",
                           "var/lib/kiln/dcos-installed", "var/lib/kiln/dcos-install-failed"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(root / gone))) << gone;
  }
  for (const char* kept : {"opt/dcos_install_tmp/dcos_install.sh", "var/lib/docker/containers/x",
                           "var/log/mesos/agent.log", "etc/systemd/system/docker.service",
                           "etc/systemd/system/multi-user.target.wants/docker.service", "var/lib/mesos"}) {
    EXPECT_TRUE(fs::exists(fs::symlink_status(root / kept))) << kept;
  }
  // Without --keep-data the old agent's containers and logs go too; kiln's log stays.
  r = test::run_kiln_node({"wipe", "--dcos", "--root", root.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_FALSE(fs::exists(root / "var/lib/docker/containers"));
  EXPECT_TRUE(fs::exists(root / "var/lib/docker"));
  EXPECT_FALSE(fs::exists(root / "var/log/mesos"));
  EXPECT_TRUE(fs::exists(root / "var/log/kiln/dcos-install.log"));
}

TEST_F(kiln_node, key_rotation_and_openssl_verify_the_bundle_manifest)
{
  fx::Keys next = fx::make_key(m_dir / "keys", "release-2027");
  auto next_key = crypto::load_private_key(next.key);
  fs::create_directories(m_dir / "b2");
  auto by_next = bundle::write_bundle(m_new, m_dir / "b2", fx::base_manifest("node-v2"), &next_key);
  fs::path both = fx::trust_dir(m_dir / "trust-both", {m_key, next});
  fs::path only_next = fx::trust_dir(m_dir / "trust-next", {next});
  EXPECT_TRUE(node({"--booted", "A", "reimage", by_next.path.string(), "--trust", both.string()}).ok());
  EXPECT_TRUE(node({"--booted", "A", "reimage", by_next.path.string(), "--trust", only_next.string()}).ok());
  auto r = node({"--booted", "A", "reimage", m_info.path.string(), "--trust", only_next.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown key"), std::string::npos) << r.err;

  // openssl checks the bundle's manifest with the raw signature bytes.
  fs::path x = m_dir / "x";
  fs::create_directories(x);
  fx::must({"tar", "-xf", m_info.path.string(), "-C", x.string(), "manifest.json", "manifest.json.sig"});
  json sig = json::parse(test::read_text(x / "manifest.json.sig"));
  test::write_text(x / "sig.bin", *crypto::base64_decode(sig["signature"].get<std::string>()));
  auto v = util::run({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", m_key.pub.string(), "-rawin", "-in",
                      (x / "manifest.json").string(), "-sigfile", (x / "sig.bin").string()});
  EXPECT_TRUE(v.ok()) << v.err << v.out;
}

TEST_F(kiln_node, install_writes_a_whole_disk_image_from_file_and_http)
{
  // The source: a whole-disk image as kiln build names it, with bmap and signed manifest.
  fs::path out = m_dir / "out";
  fs::create_directories(out);
  fs::copy_file(m_disk.path, out / "node.raw");
  bmap::write_bmap_file(out / "node.raw", out / "node.raw.bmap");
  manifest::Manifest m = fx::base_manifest("node");
  m.kiln_version = KILN_VERSION;
  m.files = {manifest::describe_file(out / "node.raw", "image", "raw"),
             manifest::describe_file(out / "node.raw.bmap", "bmap", "bmap")};
  fs::path mpath = manifest::manifest_path(out, "node");
  manifest::write_manifest(mpath, m);
  manifest::sign_manifest(mpath, crypto::load_private_key(m_key.key));

  fs::path target = m_dir / "target.img";
  fx::must({"truncate", "-s", "128M", target.string()});
  {
    util::Fd fd = util::open_file(target, O_WRONLY);
    fx::write_random(fd.get(), 0, 96u << 20, 3);
  }
  auto r = test::run_kiln_node({"--json", "install", (out / "node.raw").string(), "--disk", target.string(), "--trust",
                                m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  auto size = fs::file_size(out / "node.raw");
  EXPECT_EQ(fx::hash_range(target, 0, size), crypto::sha256_file(out / "node.raw"));

  // Over HTTP with a dropped connection, onto garbage again.
  {
    util::Fd fd = util::open_file(target, O_WRONLY);
    fx::write_random(fd.get(), 0, 96u << 20, 4);
  }
  test::HttpServer server(out);
  r = test::run_kiln_node({"--json", "install", server.url("/files/node.raw"), "--disk", target.string(), "--trust",
                           m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(fx::hash_range(target, 0, size), crypto::sha256_file(out / "node.raw"));

  // Unsigned (signature removed): refused before the disk is touched.
  std::string before = fx::hash_range(target, 0, 1 << 20);
  fs::remove(manifest::signature_path(mpath));
  r = test::run_kiln_node({"install", (out / "node.raw").string(), "--disk", target.string(), "--trust",
                           m_trust.string()});
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("not signed"), std::string::npos) << r.err;
}

TEST_F(kiln_node, loop_devices_with_and_without_partition_nodes)
{
  bool partscan_nodes = false;
  for (bool partscan : {true, false}) {
    std::vector<std::string> argv = {"losetup", "--show", "-f"};
    if (partscan) {
      argv.push_back("-P");
    }
    argv.push_back(m_disk.path.string());
    auto l = fx::must(argv);
    std::string loop = l.out.substr(0, l.out.find('\n'));
    auto r = test::run_kiln_node({"--disk", loop, "--booted", "A", "--json", "reimage", m_info.path.string(), "--trust",
                                  m_trust.string()});
    EXPECT_TRUE(r.ok()) << r.err;
    auto s = test::run_kiln_node({"--disk", loop, "--booted", "A", "--json", "status"});
    EXPECT_TRUE(s.ok()) << s.err;
    partscan_nodes = partscan_nodes || fs::exists(loop + "p5");
    util::run({"losetup", "-d", loop});
    ASSERT_TRUE(r.ok());
    json j = json::parse(r.out);
    EXPECT_EQ(j["slot"], "B");
    // Partition nodes appear only where the kernel scanned the table (not in every
    // container); when they exist, kiln-node must write through slot B's own node.
    if (partscan && fs::exists(loop + "p5")) {
      EXPECT_EQ(j["partition"], loop + "p5") << j.dump();
    } else {
      EXPECT_EQ(j["partition"], loop + " (kiln-b)") << j.dump();
    }
    EXPECT_EQ(json::parse(s.out)["slots"]["B"]["state"], "trial");
    EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, fs::file_size(m_new)), crypto::sha256_file(m_new));
  }
  RecordProperty("partition_nodes", partscan_nodes ? "yes" : "no");
}

} // namespace
} // namespace kiln
