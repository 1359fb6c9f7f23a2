// kiln-node, run as the real binary on A/B disk image files (and loop devices) made
// without libguestfs: status, reimage (file, HTTP with a dropped connection, rewrite),
// rollback, mark-good, wipe --dcos, install, key rotation and openssl interop.
#include "integration/node_fixture.hpp"

#include "core/bmap/bmap.hpp"
#include "core/dcos/checks.hpp"
#include "core/manifest/manifest.hpp"
#include "support/mesos_fake.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <chrono>
#include <set>
#include <thread>

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

  // The test disk as kiln build names a whole-disk image, in out/: node.raw, its bmap and
  // its manifest signed with the release key. Returns node.raw's path.
  fs::path whole_disk_image()
  {
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
    return out / "node.raw";
  }

  // `disk` holds `image` as `kiln-node install` leaves it on a larger disk: every
  // partition but kiln-boot byte for byte the image's, the table names the image's
  // partitions (kiln-data grown to the disk's last MiB) under GUIDs of the disk's own,
  // and kiln-boot's grub.cfg names the slots by those. Returns the disk's table.
  slots::Gpt expect_installed(const fs::path& disk, const fs::path& image)
  {
    slots::Gpt want = slots::read_gpt(image);
    slots::Gpt have = slots::read_gpt(disk);
    EXPECT_FALSE(have.from_backup);
    EXPECT_NE(have.disk_guid, want.disk_guid);
    EXPECT_EQ(have.partitions.size(), want.partitions.size());
    std::set<std::string> guids{have.disk_guid};
    for (std::size_t i = 0; i < std::min(want.partitions.size(), have.partitions.size()); ++i) {
      const auto& w = want.partitions[i];
      const auto& h = have.partitions[i];
      EXPECT_EQ(h.label, w.label);
      EXPECT_NE(h.partuuid, w.partuuid) << w.label;
      EXPECT_TRUE(guids.insert(h.partuuid).second) << h.partuuid;
      EXPECT_EQ(h.first_lba, w.first_lba);
      if (w.label != slots::k_part_data) {
        EXPECT_EQ(h.last_lba, w.last_lba);
      } else {
        EXPECT_EQ((h.last_lba + 1) * 512, have.disk_size / (1 << 20) * (1 << 20) - (1 << 20));
      }
      if (w.label != slots::k_part_boot) {
        const std::uint64_t size = (w.last_lba - w.first_lba + 1) * 512;
        EXPECT_EQ(fx::hash_range(disk, w.offset, size), fx::hash_range(image, w.offset, size)) << w.label;
      }
    }
    std::string cfg = boot_file(disk, have, "/grub/grub.cfg");
    EXPECT_NE(cfg.find("root=PARTUUID=" + have.by_label(slots::k_part_a).partuuid), std::string::npos) << cfg;
    EXPECT_NE(cfg.find("root=PARTUUID=" + have.by_label(slots::k_part_b).partuuid), std::string::npos) << cfg;
    for (const auto& w : want.partitions) {
      EXPECT_EQ(cfg.find(w.partuuid), std::string::npos) << "grub.cfg still names the image's " << w.label;
    }
    EXPECT_EQ(boot_file(disk, have, "/grub/grubenv"), boot_file(image, want, "/grub/grubenv"));
    return have;
  }

  // A file of kiln-boot, read with debugfs (nothing mounted).
  std::string boot_file(const fs::path& disk, const slots::Gpt& gpt, const std::string& path)
  {
    const auto& boot = gpt.by_label(slots::k_part_boot);
    fs::path fs_img = m_dir / "boot-read.fs";
    test::write_text(fs_img, fx::read_range(disk, boot.offset, boot.size));
    auto r = fx::must({"debugfs", "-R", "cat " + path, fs_img.string()});
    fs::remove(fs_img);
    return r.out;
  }

  // A 128 MiB install target whose first 96 MiB are random bytes.
  fs::path garbage_target()
  {
    fs::path target = m_dir / "target.img";
    fx::must({"truncate", "-s", "128M", target.string()});
    util::Fd fd = util::open_file(target, O_WRONLY);
    fx::write_random(fd.get(), 0, 96u << 20, 3);
    return target;
  }

  // A DC/OS node's root after a finished first boot, with `role`, and a systemctl
  // stand-in that says every unit is active.
  std::map<std::string, std::string> dcos_root(const fs::path& root, const std::string& role)
  {
    test::write_text(root / "etc/kiln/dcos-role", role + "\n");
    test::write_text(root / "var/lib/kiln/dcos-installed", "");
    fs::path systemctl = m_dir / "systemctl-active";
    test::write_text(systemctl, "#!/bin/sh\necho active\n");
    fs::permissions(systemctl, fs::perms::owner_all);
    return {{"KILN_NODE_SYSTEMCTL", systemctl.string()}};
  }

  // Slot B armed by a reimage, and the root of a DC/OS node with `role` whose Mesos (and
  // ZooKeeper) the stand-in answers for.
  struct DcosNode {
    fs::path root;
    std::map<std::string, std::string> env;
    std::unique_ptr<test::MesosFake> mesos;
  };
  DcosNode armed_dcos_node(const std::string& role)
  {
    auto r = node({"--booted", "A", "reimage", m_info.path.string(), "--trust", m_trust.string()});
    EXPECT_TRUE(r.ok()) << r.err;
    DcosNode n;
    n.root = m_dir / "root";
    n.env = dcos_root(n.root, role);
    n.mesos = std::make_unique<test::MesosFake>(m_dir.path(), role == "master" ? "master" : "agent");
    n.env.merge(n.mesos->env());
    return n;
  }

  // mark-good --when-healthy of slot B (armed by a reimage first) under `root`.
  util::RunResult mark_good_b(const fs::path& root, std::map<std::string, std::string> env,
                              std::vector<std::string> extra = {})
  {
    std::vector<std::string> args = {"--booted", "B", "mark-good", "--when-healthy", "--root", root.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return node(args, env);
  }
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
  EXPECT_EQ(j["write_mode"], "straight"); // another image than the slot held: not read first
  // The read-back bypasses the page cache where the disk file's file system allows it.
  EXPECT_EQ(j["read_back"], test::o_direct_allowed(m_dir.path()) ? "direct" : "uncached");
  EXPECT_EQ(j["skipped_bytes"], 0u);
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
  EXPECT_EQ(j["write_mode"], "compare");
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
  auto r =
    node({"--booted", "A", "--json", "reimage", server.url("/drop/300000/" + name), "--trust", m_trust.string()});
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
  // Installed, the agent unit active and the agent registered in Mesos: confirmed.
  test::write_text(root / "var/lib/kiln/dcos-installed", "");
  test::MesosFake agent(m_dir.path(), "agent");
  agent.set({{"slave/registered", 1.0}});
  env.merge(agent.env());
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

TEST_F(kiln_node, mark_good_when_healthy_asks_the_mesos_agent_whether_it_registered)
{
  auto [root, env, mesos] = armed_dcos_node("slave");
  test::MesosFake& agent = *mesos;
  const std::string snapshot = agent.url() + "/metrics/snapshot";
  // Not registered (yet): one line saying what is missing; the slot stays trial.
  agent.set({{"slave/registered", 0.0}});
  auto r = mark_good_b(root, env);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(r.err, "kiln-node: error: mark-good: not healthy: Mesos agent not registered (slave/registered = 0 in " +
                     snapshot + ")\n");
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "trial");
  // A snapshot without the metric is not registered either.
  agent.set({{"slave/registered", nullptr}});
  r = mark_good_b(root, env);
  EXPECT_NE(r.err.find("Mesos agent not registered (no slave/registered in " + snapshot + ")"), std::string::npos)
    << r.err;
  // Nothing listening: refused at once, and said so.
  auto unreachable = env;
  unreachable["KILN_NODE_MESOS"] = agent.refused();
  r = mark_good_b(root, unreachable);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not healthy: Mesos agent not answering (" + agent.refused() + "/metrics/snapshot: "),
            std::string::npos)
    << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "trial");
  // slave_public asks the same; registered: confirmed.
  test::write_text(root / "etc/kiln/dcos-role", "slave_public\n");
  agent.set({{"slave/registered", 1.0}});
  r = mark_good_b(root, env);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "good");
}

TEST_F(kiln_node, mark_good_when_healthy_asks_a_master_for_its_log_and_zookeeper)
{
  auto [root, env, mesos] = armed_dcos_node("master");
  test::MesosFake& master = *mesos;
  // The replicated log not recovered: refused, whatever ZooKeeper says.
  master.set({{"registrar/log/recovered", 0.0}});
  auto r = mark_good_b(root, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not healthy: Mesos master has not recovered its replicated log (registrar/log/recovered = 0 "
                       "in " +
                       master.url() + "/metrics/snapshot)"),
            std::string::npos)
    << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "trial");
  // A ZooKeeper that accepts but never answers: refused after the request's deadline.
  fs::path silent_dir = m_dir / "silent";
  fs::create_directories(silent_dir);
  test::MesosFake silent(silent_dir, "master", "silent");
  silent.set({{"registrar/log/recovered", 1.0}});
  auto start = std::chrono::steady_clock::now();
  auto silent_env = env;
  silent_env["KILN_NODE_MESOS"] = silent.url();
  silent_env["KILN_NODE_ZOOKEEPER"] = silent.zookeeper();
  r = mark_good_b(root, silent_env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not healthy: ZooKeeper not answering ruok on " + silent.zookeeper() +
                       " (no answer to ruok within 5000 ms)"),
            std::string::npos)
    << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "trial");
  // Recovered and imok: confirmed.
  master.set({{"registrar/log/recovered", 1.0}});
  r = mark_good_b(root, env);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "good");
}

TEST_F(kiln_node, mark_good_keeps_asking_until_the_deadline)
{
  auto [root, env, mesos] = armed_dcos_node("slave");
  test::MesosFake& agent = *mesos;
  agent.set({{"slave/registered", 0.0}});
  // Never healthy: it asks every second, gives up at the deadline, the slot stays trial.
  auto start = std::chrono::steady_clock::now();
  auto r = mark_good_b(root, env, {"--deadline", "3", "--interval", "1"});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_GE(took, std::chrono::seconds(3));
  EXPECT_LT(took, std::chrono::seconds(20));
  auto err = test::lines(r.err);
  ASSERT_GE(err.size(), 3u) << r.err;
  EXPECT_EQ(err.front().rfind("kiln-node: mark-good: not healthy yet: Mesos agent not registered", 0), 0u) << r.err;
  EXPECT_EQ(err.back().rfind("kiln-node: error: mark-good: not healthy after 3 s: Mesos agent not registered", 0), 0u)
    << r.err;
  EXPECT_NE(err.back().find("slot B stays unconfirmed, GRUB's tries decide"), std::string::npos) << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "trial");
  // The agent registers while kiln-node waits: confirmed well before the deadline.
  std::thread registers([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    agent.set({{"slave/registered", 1.0}});
  });
  start = std::chrono::steady_clock::now();
  r = mark_good_b(root, env, {"--deadline", "60", "--interval", "1"});
  took = std::chrono::steady_clock::now() - start;
  registers.join();
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_LT(took, std::chrono::seconds(30));
  EXPECT_NE(r.err.find("not healthy yet"), std::string::npos) << r.err;
  EXPECT_EQ(status("B")["slots"]["B"]["state"], "good");
}

TEST_F(kiln_node, wipe_dcos_removes_dcos_state_and_keeps_the_installer)
{
  fs::path root = m_dir / "root";
  for (const char* f :
       {"etc/mesosphere/roles/slave", "opt/mesosphere/bin/x", "var/lib/mesos/slave/meta/slaves/latest",
        "var/lib/dcos/cluster-id", "etc/systemd/system/dcos-mesos-slave.service", "etc/systemd/system/dcos.target",
        "var/lib/kiln/dcos-installed", "var/lib/kiln/dcos-install-failed", "opt/dcos_install_tmp/dcos_install.sh",
        "var/lib/docker/containers/x", "var/log/mesos/agent.log", "var/log/kiln/dcos-install.log",
        "etc/systemd/system/docker.service"}) {
    test::write_text(root / f, "x");
  }
  fs::create_directories(root / "etc/systemd/system/dcos.target.wants");
  fs::create_symlink("/etc/systemd/system/dcos-mesos-slave.service",
                     root / "etc/systemd/system/dcos.target.wants/dcos-mesos-slave.service");
  fs::create_directories(root / "etc/systemd/system/multi-user.target.wants");
  fs::create_symlink("/etc/systemd/system/dcos.target",
                     root / "etc/systemd/system/multi-user.target.wants/dcos.target");
  fs::create_symlink("/etc/systemd/system/docker.service",
                     root / "etc/systemd/system/multi-user.target.wants/docker.service");
  // dcos-link-env.service's link (dangling once /opt/mesosphere is gone).
  fs::create_directories(root / "etc/profile.d");
  fs::create_symlink("/opt/mesosphere/bin/add_dcos_path.sh", root / "etc/profile.d/dcos.sh");
  test::write_text(root / "etc/profile.d/lang.sh", "x");

  auto r = test::run_kiln_node({"wipe", "--dcos", "--keep-data", "--root", root.string(), "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  for (const char* gone :
       {"etc/mesosphere", "opt/mesosphere", "var/lib/dcos/cluster-id", "var/lib/mesos/slave",
        "etc/systemd/system/dcos-mesos-slave.service", "etc/systemd/system/dcos.target",
        "etc/systemd/system/dcos.target.wants", "etc/systemd/system/multi-user.target.wants/dcos.target",
        "var/lib/kiln/dcos-installed", "var/lib/kiln/dcos-install-failed", "etc/profile.d/dcos.sh"}) {
    EXPECT_FALSE(fs::exists(fs::symlink_status(root / gone))) << gone;
  }
  EXPECT_TRUE(fs::exists(root / "etc/profile.d/lang.sh"));
  // kiln verify's check no longer finds DC/OS on the wiped tree.
  dcos::DirView view(root);
  bool checked = false;
  for (const auto& c : dcos::run_checks(view, {dcos::Role::slave, "2.2.1"})) {
    if (c.name == "if DC/OS is already installed") {
      checked = true;
      EXPECT_TRUE(c.pass) << c.detail;
    }
  }
  EXPECT_TRUE(checked);
  for (const char* kept :
       {"opt/dcos_install_tmp/dcos_install.sh", "var/lib/docker/containers/x", "var/log/mesos/agent.log",
        "etc/systemd/system/docker.service", "etc/systemd/system/multi-user.target.wants/docker.service",
        "var/lib/mesos", "var/lib/dcos"}) {
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

// A bind mount of `from` on `to`, undone when the object dies.
struct Bound {
  Bound(const fs::path& from, const fs::path& to) : path(to)
  {
    ok = ::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) == 0;
    EXPECT_TRUE(ok) << "bind " << from << " on " << to << ": " << errno_text(errno);
  }
  ~Bound()
  {
    if (ok) {
      ::umount2(path.c_str(), MNT_DETACH);
    }
  }
  fs::path path;
  bool ok = false;
};

// Unmounts what a test mounted, also when it fails halfway.
struct Mounted {
  explicit Mounted(const fs::path& where) : path(where)
  {
    fs::create_directories(where);
    ok = ::mount("kiln-test", where.c_str(), "tmpfs", 0, "size=1m") == 0;
    EXPECT_TRUE(ok) << "mount tmpfs on " << where << ": " << errno_text(errno);
  }
  ~Mounted()
  {
    if (ok) {
      ::umount2(path.c_str(), MNT_DETACH);
    }
  }
  fs::path path;
  bool ok = false;
};

TEST_F(kiln_node, wipe_dcos_keeps_the_mount_volumes_unless_asked)
{
  fs::path root = m_dir / "root";
  fs::path outside = m_dir / "outside";
  test::write_text(outside / "precious", "x");
  test::write_text(root / "var/lib/dcos/mesos-resources", "x");
  // volume0 a file system of its own (as DC/OS MOUNT volumes are) holding a nested mount,
  // volume1 a plain directory with a symlink out of it, volume9 a symlink (not a volume).
  Mounted volume0(root / "dcos/volume0");
  ASSERT_TRUE(volume0.ok);
  test::write_text(root / "dcos/volume0/task/data", "x");
  Mounted nested(root / "dcos/volume0/nested");
  ASSERT_TRUE(nested.ok);
  test::write_text(root / "dcos/volume0/nested/other", "x");
  test::write_text(root / "dcos/volume1/data", "x");
  fs::create_symlink(outside, root / "dcos/volume1/link");
  fs::create_symlink(outside, root / "dcos/volume9");
  fs::create_directories(root / "dcos/other");
  const std::string v0 = (root / "dcos/volume0").string();
  const std::string v1 = (root / "dcos/volume1").string();

  // Default: kept and reported.
  auto r = test::run_kiln_node({"wipe", "--dcos", "--keep-data", "--root", root.string(), "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["volumes_kept"], json::array({v0, v1})) << r.out;
  EXPECT_EQ(j["volumes_wiped"], json::array());
  EXPECT_TRUE(fs::exists(root / "dcos/volume0/task/data"));
  EXPECT_TRUE(fs::exists(root / "dcos/volume1/data"));
  r = test::run_kiln_node({"wipe", "--dcos", "--keep-data", "--root", root.string(), "--volumes", "keep"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.out.find("kept (DC/OS volume; --volumes wipe empties it) " + v0 + "\n"), std::string::npos) << r.out;

  // --volumes wipe: emptied, kept as directories (mount points); never into another
  // mount, never through a symlink.
  r = test::run_kiln_node({"wipe", "--dcos", "--keep-data", "--root", root.string(), "--volumes", "wipe", "--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["volumes_wiped"], json::array({v0, v1})) << r.out;
  EXPECT_EQ(j["volumes_kept"], json::array());
  EXPECT_EQ(j["mount_points_skipped"], json::array({(root / "dcos/volume0/nested").string()})) << r.out;
  EXPECT_TRUE(fs::is_directory(root / "dcos/volume0"));
  EXPECT_FALSE(fs::exists(root / "dcos/volume0/task"));
  EXPECT_TRUE(fs::exists(root / "dcos/volume0/nested/other"));
  EXPECT_TRUE(fs::is_directory(root / "dcos/volume1"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root / "dcos/volume1/link")));
  EXPECT_FALSE(fs::exists(root / "dcos/volume1/data"));
  EXPECT_TRUE(fs::exists(outside / "precious"));
  EXPECT_TRUE(fs::is_symlink(root / "dcos/volume9"));
  EXPECT_TRUE(fs::exists(root / "dcos/other"));

  // Anything but keep or wipe is a usage error.
  r = test::run_kiln_node({"wipe", "--dcos", "--root", root.string(), "--volumes", "drop"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// A disk whose slot A holds a root file system with DC/OS `a_version` (none: no
// dcos-version.json); slot B is booted and good, A good, B first in the order.
fx::AbDisk
disk_with_dcos_in_a(const fs::path& dir, const std::optional<std::string>& a_version)
{
  fs::create_directories(dir);
  std::map<std::string, std::string> files = {{"etc/kiln-release", "a\n"}};
  if (a_version) {
    files["opt/mesosphere/etc/dcos-version.json"] =
      R"({"version": ")" + *a_version + R"(", "dcos-image-commit": "0123abcd", "bootstrap-id": "feed"})";
  }
  fs::path a = fx::make_rootfs(dir, "a", 8, files);
  return fx::make_ab_disk(
    dir, {"kiln_order=B A", "kiln_A_state=good", "kiln_A_tries=0", "kiln_B_state=good", "kiln_B_tries=0"}, a);
}

TEST_F(kiln_node, rollback_to_an_older_dcos_is_refused_unless_forced)
{
  // The booted slot B runs DC/OS 2.2.1 (its running root); slot A has 2.1.0.
  fs::path root = m_dir / "root-b";
  test::write_text(root / "opt/mesosphere/etc/dcos-version.json", R"({"version": "2.2.1"})");
  m_disk = disk_with_dcos_in_a(m_dir / "older", "2.1.0");
  auto r = node({"--booted", "B", "rollback", "--root", root.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln-node: error: rollback: slot B runs DC/OS 2.2.1, slot A has 2.1.0: DC/OS does not support "
                   "downgrades (--force overrides)\n");
  EXPECT_EQ(status("B")["order"], "B A");
  EXPECT_NE(fx::grubenv_list(m_disk, m_dir.path()).find("kiln_order=B A\n"), std::string::npos);

  // --force: rolled back, with a warning line.
  r = node({"--booted", "B", "--json", "rollback", "--root", root.string(), "--force"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.err, "kiln-node: warning: rollback: slot B runs DC/OS 2.2.1, slot A has 2.1.0: DC/OS does not support "
                   "downgrades; rolled back anyway (--force)\n");
  EXPECT_EQ(json::parse(r.out)["next_boot"]["slot"], "A");
  EXPECT_EQ(status("B")["order"], "A B");
}

TEST_F(kiln_node, rollback_to_the_same_or_a_newer_dcos_or_an_unknown_one_is_allowed)
{
  auto rolls_back = [&](const std::string& name, const std::optional<std::string>& running,
                        const std::optional<std::string>& in_a) {
    fs::path root = m_dir / (name + "-root");
    fs::create_directories(root);
    if (running) {
      test::write_text(root / "opt/mesosphere/etc/dcos-version.json", R"({"version": ")" + *running + R"("})");
    }
    m_disk = disk_with_dcos_in_a(m_dir / name, in_a);
    auto r = node({"--booted", "B", "rollback", "--root", root.string()});
    EXPECT_TRUE(r.ok()) << name << ": " << r.err;
    EXPECT_EQ(r.err, "") << name;
    EXPECT_EQ(status("B")["order"], "A B") << name;
  };
  rolls_back("equal", "2.2.1", "2.2.1");
  rolls_back("newer", "2.9.3", "2.10.0"); // numerically, not as text
  rolls_back("pre-release", "2.2.0-beta2", "2.2.0"); // the numeric prefix counts
  // Slot A has no dcos-version.json: no DC/OS was installed there, so booting it
  // downgrades nothing of DC/OS (its first boot installs its staged bundle).
  rolls_back("a-without-dcos", "2.2.1", std::nullopt);
  // The running system has no DC/OS: nothing to protect, slot A is not even read.
  rolls_back("b-without-dcos", std::nullopt, "2.1.0");
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
  fs::path image = whole_disk_image();
  fs::path out = image.parent_path();
  fs::path mpath = manifest::manifest_path(out, "node");
  fs::path target = garbage_target();
  auto r =
    test::run_kiln_node({"--json", "install", image.string(), "--disk", target.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  slots::Gpt first = expect_installed(target, image);
  EXPECT_EQ(json::parse(r.out)["identity"]["partitions"][std::string(slots::k_part_a)],
            first.by_label(slots::k_part_a).partuuid);

  // Over HTTP with a dropped connection, onto garbage again.
  {
    util::Fd fd = util::open_file(target, O_WRONLY);
    fx::write_random(fd.get(), 0, 96u << 20, 4);
  }
  test::HttpServer server(out);
  r = test::run_kiln_node(
    {"--json", "install", server.url("/files/node.raw"), "--disk", target.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  slots::Gpt second = expect_installed(target, image);
  // Every install draws its own: two disks written from one image never share a GUID.
  EXPECT_NE(second.disk_guid, first.disk_guid);
  for (const auto& p : second.partitions) {
    EXPECT_NE(p.partuuid, first.by_label(p.label).partuuid) << p.label;
  }

  // Unsigned (signature removed): refused before the disk is touched.
  std::string before = fx::hash_range(target, 0, 1 << 20);
  fs::remove(manifest::signature_path(mpath));
  r = test::run_kiln_node({"install", image.string(), "--disk", target.string(), "--trust", m_trust.string()});
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("not signed"), std::string::npos) << r.err;
}

TEST_F(kiln_node, install_onto_a_loop_device)
{
  fs::path image = whole_disk_image();
  fs::path target = garbage_target();
  auto size = fs::file_size(image);
  {
    fx::LoopDevice loop(target, true);
    auto r =
      test::run_kiln_node({"--json", "install", image.string(), "--disk", loop.path(), "--trust", m_trust.string()});
    ASSERT_TRUE(r.ok()) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["disk"], loop.path());
    EXPECT_EQ(j["image_size"], size);
    EXPECT_GT(j["zeroed_bytes"].get<std::uint64_t>(), 0u) << j.dump(); // the gaps held random bytes
    slots::Gpt have = expect_installed(loop.path(), image);
    // The installed disk is an A/B disk kiln-node reads through the same device, and
    // booted from it, the command line GRUB makes (the disk's own PARTUUID) names slot A.
    test::write_text(m_dir / "cmdline",
                     "root=PARTUUID=" + have.by_label(slots::k_part_a).partuuid + " ro kiln.slot=A\n");
    auto s = test::run_kiln_node({"--disk", loop.path(), "--json", "status"},
                                 {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}});
    ASSERT_TRUE(s.ok()) << s.err;
    EXPECT_EQ(json::parse(s.out)["slots"]["A"]["state"], "good");
    EXPECT_EQ(json::parse(s.out)["booted"], "A");
    // The image's own PARTUUID names no slot of this disk any more.
    test::write_text(m_dir / "cmdline",
                     "root=PARTUUID=" + slots::read_gpt(image).by_label(slots::k_part_a).partuuid + " ro\n");
    s = test::run_kiln_node({"--disk", loop.path(), "--json", "status"},
                            {{"KILN_NODE_CMDLINE", (m_dir / "cmdline").string()}});
    ASSERT_TRUE(s.ok()) << s.err;
    EXPECT_TRUE(json::parse(s.out)["booted"].is_null()) << s.out;
  }
  expect_installed(target, image);
}

// /var/lib/dcos and /var/lib/mesos live on kiln-data, bind-mounted into place: a reimage
// never touches kiln-data, wipe --dcos empties both (through the bind mounts, or on
// kiln-data itself when they are not in place) and keeps the mount points.
TEST_F(kiln_node, reimage_keeps_dcos_state_on_kiln_data)
{
  fs::path tree = m_dir / "data.tree";
  test::write_text(tree / "dcos/mesos-slave-common", "MESOS_ATTRIBUTES=rack:r1;zone:z1\n");
  test::write_text(tree / "dcos/cluster-id", "0a1b2c\n");
  test::write_text(tree / "mesos/slave/meta/slaves/latest", "S0\n");
  const auto& data = m_disk.gpt.by_label(slots::k_part_data);
  fs::path data_fs = m_dir / "data.fs";
  fx::must({"mkfs.ext4", "-q", "-F", "-O", "^metadata_csum", "-L", "kiln-data", "-d", tree.string(), data_fs.string(),
            std::to_string(data.size >> 20) + "M"});
  fx::copy_into(data_fs, m_disk.path, data.offset);
  const std::string before = fx::slot_hash(m_disk, slots::k_part_data);

  auto r = node({"--booted", "A", "reimage", m_info.path.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, fs::file_size(m_new)), crypto::sha256_file(m_new));
  EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_data), before);
  // The node's attributes are still there for the new slot.
  fs::path out = m_dir / "data-out.fs";
  test::write_text(out, util::read_file(m_disk.path).substr(data.offset, data.size));
  auto cat = fx::must({"debugfs", "-R", "cat /dcos/mesos-slave-common", out.string()});
  EXPECT_NE(cat.out.find("MESOS_ATTRIBUTES=rack:r1;zone:z1"), std::string::npos) << cat.out;
}

TEST_F(kiln_node, wipe_dcos_removes_dcos_state_on_kiln_data)
{
  for (bool bound : {true, false}) {
    SCOPED_TRACE(bound ? "bind mounts in place" : "kiln-data only");
    fs::path root = m_dir / (bound ? "root-bound" : "root-plain");
    fs::path data = root / "var/lib/kiln-data";
    test::write_text(data / "dcos/mesos-slave-common", "MESOS_ATTRIBUTES=rack:r1\n");
    test::write_text(data / "dcos/exhibitor/zookeeper/version-2/log.1", "zk");
    test::write_text(data / "mesos/master/replicated_log/LOCK", "x");
    test::write_text(data / "docker/containers/c1", "x");
    test::write_text(data / "log/mesos/agent.log", "x");
    fs::create_directories(root / "var/lib/dcos");
    fs::create_directories(root / "var/lib/mesos");
    std::vector<std::unique_ptr<Bound>> binds;
    if (bound) {
      binds.push_back(std::make_unique<Bound>(data / "dcos", root / "var/lib/dcos"));
      binds.push_back(std::make_unique<Bound>(data / "mesos", root / "var/lib/mesos"));
      ASSERT_TRUE(fs::exists(root / "var/lib/dcos/mesos-slave-common"));
    }
    // A reimage's view: `wipe` without --dcos is refused and touches nothing.
    auto r = test::run_kiln_node({"wipe", "--root", root.string()});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_TRUE(fs::exists(data / "dcos/mesos-slave-common"));

    r = test::run_kiln_node({"wipe", "--dcos", "--keep-data", "--root", root.string(), "--json"});
    ASSERT_TRUE(r.ok()) << r.err;
    json j = json::parse(r.out);
    for (const char* gone : {"dcos/mesos-slave-common", "dcos/exhibitor", "mesos/master"}) {
      EXPECT_FALSE(fs::exists(data / gone)) << gone;
    }
    for (const char* kept : {"var/lib/dcos", "var/lib/mesos", "var/lib/kiln-data/dcos", "var/lib/kiln-data/mesos",
                             "var/lib/kiln-data/docker/containers/c1", "var/lib/kiln-data/log/mesos/agent.log"}) {
      EXPECT_TRUE(fs::is_directory(root / kept) || fs::is_regular_file(root / kept)) << kept;
    }
    // Through a bind mount the state is removed once, by its usual name.
    int named = 0;
    for (const auto& p : j["removed"]) {
      named += p.get<std::string>() == (data / "dcos").string() ? 1 : 0;
    }
    EXPECT_EQ(named, bound ? 0 : 1) << j.dump();
  }
}

TEST_F(kiln_node, install_onto_a_larger_disk_moves_the_backup_gpt_and_grows_kiln_data)
{
  fs::path image = whole_disk_image();
  fs::path target = m_dir / "big.img";
  fx::must({"truncate", "-s", "161M", target.string()});
  {
    fx::LoopDevice loop(target, false);
    auto r =
      test::run_kiln_node({"--json", "install", image.string(), "--disk", loop.path(), "--trust", m_trust.string()});
    ASSERT_TRUE(r.ok()) << r.err;
    json j = json::parse(r.out);
    EXPECT_TRUE(j["data_partition"]["changed"].get<bool>()) << j.dump();
    auto v = fx::must({"sgdisk", "-v", loop.path()});
    EXPECT_NE(v.out.find("No problems found"), std::string::npos) << v.out;
    fx::must({"sfdisk", "--verify", loop.path()});
    slots::Gpt gpt = slots::read_gpt(loop.path());
    EXPECT_FALSE(gpt.from_backup);
    const auto& data = gpt.by_label(slots::k_part_data);
    const std::uint64_t sectors = (161ull << 20) / 512;
    EXPECT_EQ(data.last_lba + 1, sectors / 2048 * 2048 - (sectors % 2048 < 34 ? 2048 : 0)) << "to the last MiB";
    EXPECT_EQ(data.first_lba, m_disk.gpt.by_label(slots::k_part_data).first_lba);
    EXPECT_EQ(j["data_partition"]["new_end_lba"], data.last_lba);
    // Every partition is the image's (kiln-boot but its grub.cfg: expect_installed).
    expect_installed(loop.path(), image);
    auto s = test::run_kiln_node({"--disk", loop.path(), "--booted", "A", "--json", "status"});
    ASSERT_TRUE(s.ok()) << s.err;
  }
  // The same image onto a disk of its own size: nothing to grow.
  fs::path same = m_dir / "same.img";
  fx::must({"truncate", "-s", std::to_string(fs::file_size(image)), same.string()});
  auto r =
    test::run_kiln_node({"--json", "install", image.string(), "--disk", same.string(), "--trust", m_trust.string()});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_FALSE(json::parse(r.out)["data_partition"]["changed"].get<bool>()) << r.out;
  // The image's bytes, but for the disk's own GUIDs and the grub.cfg naming them.
  slots::Gpt own = slots::read_gpt(same);
  slots::Gpt img = slots::read_gpt(image);
  EXPECT_NE(own.disk_guid, img.disk_guid);
  for (const auto& p : img.partitions) {
    const std::uint64_t size = (p.last_lba - p.first_lba + 1) * 512;
    if (p.label != slots::k_part_boot) {
      EXPECT_EQ(fx::hash_range(same, p.offset, size), fx::hash_range(image, p.offset, size)) << p.label;
    }
    EXPECT_EQ(own.by_label(p.label).last_lba, p.last_lba) << p.label;
  }
}

// A node disk smaller than its loop device (an image written to a larger disk), with
// kiln-data holding `fs_type` and mounted, as at first boot. Partition nodes come from
// partx (BLKPG), as the kernel's own scan does not happen in every container.
struct GrowNode {
  GrowNode(const fs::path& dir, const std::string& fs_type)
  {
    test::require_program("partx", "util-linux");
    file = dir / ("grow-" + fs_type + ".img");
    test::partitioned_disk(file, "512M", test::ab_sfdisk_script(24));
    gpt = slots::read_gpt(file);
    fx::must({"truncate", "-s", "1G", file.string()});
    loop = std::make_unique<fx::LoopDevice>(file, true);
    if (!fs::exists(loop->path() + "p6")) {
      fx::must({"partx", "-a", loop->path()});
    }
    device = loop->path() + "p6";
    if (fs_type == "xfs") {
      fx::must({"mkfs.xfs", "-q", "-f", "-L", "kiln-data", device});
    } else {
      fx::must({"mkfs.ext4", "-q", "-F", "-O", "^metadata_csum,^64bit", "-L", "kiln-data", device});
    }
    mount = dir / ("mnt-" + fs_type);
    fs::create_directories(mount);
    mounted = util::run({"mount", device, mount.string()}).ok();
    EXPECT_TRUE(mounted);
    test::write_text(mount / "dcos/mesos-slave-common", "MESOS_ATTRIBUTES=rack:r1\n");
    cmdline = dir / ("cmdline-" + fs_type);
    test::write_text(cmdline, "BOOT_IMAGE=/vmlinuz root=PARTUUID=" + gpt.by_label(slots::k_part_a).partuuid +
                                " ro kiln.slot=A\n");
  }
  ~GrowNode()
  {
    if (mounted) {
      util::run({"umount", mount.string()});
    }
  }
  std::uint64_t fs_size() const
  {
    struct statfs s {};
    EXPECT_EQ(::statfs(mount.c_str(), &s), 0);
    return static_cast<std::uint64_t>(s.f_blocks) * static_cast<std::uint64_t>(s.f_bsize);
  }
  util::RunResult grow(std::vector<std::string> extra = {}) const
  {
    std::vector<std::string> args = {"--disk", loop->path(), "grow-data", "--mount", mount.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return test::run_kiln_node(args, {{"KILN_NODE_CMDLINE", cmdline.string()}});
  }
  fs::path file, mount, cmdline;
  std::string device;
  slots::Gpt gpt;
  std::unique_ptr<fx::LoopDevice> loop;
  bool mounted = false;
};

void
grows_mounted(const fs::path& dir, const std::string& fs_type)
{
  GrowNode n(dir, fs_type);
  ASSERT_TRUE(n.mounted);
  const std::uint64_t before = n.fs_size();
  auto r = n.grow({"--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  json j = json::parse(r.out);
  EXPECT_TRUE(j["changed"].get<bool>()) << j.dump();
  EXPECT_TRUE(j["partition"]["changed"].get<bool>()) << j.dump();
  EXPECT_EQ(j["filesystem"]["type"], fs_type);
  EXPECT_EQ(j["device"], n.device);
  const std::uint64_t after = n.fs_size();
  EXPECT_GT(after, before + (400ull << 20)) << before << " -> " << after;
  EXPECT_EQ(j["filesystem"]["size"], after);
  // The kernel sees the grown partition; the table is clean; the data is still there.
  slots::Gpt gpt = slots::read_gpt(n.loop->path());
  const auto& data = gpt.by_label(slots::k_part_data);
  util::Fd fd = util::open_file(n.device, O_RDONLY);
  EXPECT_EQ(slots::device_size(fd.get(), n.device), data.size);
  EXPECT_EQ((data.last_lba + 1) % 2048, 0u);
  EXPECT_GT(data.size, 900ull << 20);
  auto v = fx::must({"sgdisk", "-v", n.loop->path()});
  EXPECT_NE(v.out.find("No problems found"), std::string::npos) << v.out;
  EXPECT_EQ(util::read_file(n.mount / "dcos/mesos-slave-common"), "MESOS_ATTRIBUTES=rack:r1\n");

  // Again: nothing to do, and it says so.
  std::string table = fx::hash_range(n.loop->path(), 0, 1 << 20);
  r = n.grow();
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << r.out;
  r = n.grow({"--json"});
  ASSERT_TRUE(r.ok()) << r.err;
  j = json::parse(r.out);
  EXPECT_FALSE(j["changed"].get<bool>()) << j.dump();
  EXPECT_EQ(n.fs_size(), after);
  EXPECT_EQ(fx::hash_range(n.loop->path(), 0, 1 << 20), table);
}

TEST_F(kiln_node, grow_data_grows_a_mounted_xfs_kiln_data)
{
  test::require_program("xfs_growfs", "xfsprogs");
  grows_mounted(m_dir.path(), "xfs");
}

// Linux grows a mounted ext4 only for a caller with CAP_SYS_RESOURCE (ext4_ioctl
// EXT4_IOC_RESIZE_FS). Where the test runs without it (some containers), kiln-node must
// still grow the partition and the kernel's view, and report resize2fs's refusal in one
// line; the growth itself is then shown by the same run with the capability.
bool
has_cap_sys_resource()
{
  std::string status = util::read_file("/proc/self/status");
  auto at = status.find("CapEff:");
  if (at == std::string::npos) {
    return false;
  }
  unsigned long long caps = std::stoull(status.substr(at + 7, status.find('\n', at) - at - 7), nullptr, 16);
  return (caps >> 24 & 1) != 0; // CAP_SYS_RESOURCE
}

TEST_F(kiln_node, grow_data_grows_a_mounted_ext4_kiln_data)
{
  test::require_program("resize2fs", "e2fsprogs");
  if (has_cap_sys_resource()) {
    RecordProperty("ext4_online_resize", "yes");
    grows_mounted(m_dir.path(), "ext4");
    return;
  }
  RecordProperty("ext4_online_resize", "no CAP_SYS_RESOURCE: partition and kernel only");
  GrowNode n(m_dir.path(), "ext4");
  ASSERT_TRUE(n.mounted);
  auto r = n.grow({"--json"});
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("kiln-node: error: resize2fs: growing kiln-data (" + n.device + ")"), std::string::npos)
    << r.err;
  slots::Gpt gpt = slots::read_gpt(n.loop->path());
  const auto& data = gpt.by_label(slots::k_part_data);
  EXPECT_GT(data.size, 900ull << 20);
  util::Fd fd = util::open_file(n.device, O_RDONLY);
  EXPECT_EQ(slots::device_size(fd.get(), n.device), data.size);
  // The file system itself grows offline to the same partition (what resize2fs does
  // online with the capability).
  ASSERT_TRUE(util::run({"umount", n.mount.string()}).ok());
  n.mounted = false;
  fx::must({"e2fsck", "-f", "-y", n.device});
  fx::must({"resize2fs", n.device});
  ASSERT_TRUE(util::run({"mount", n.device, n.mount.string()}).ok());
  n.mounted = true;
  EXPECT_GT(n.fs_size(), 850ull << 20);
  EXPECT_EQ(util::read_file(n.mount / "dcos/mesos-slave-common"), "MESOS_ATTRIBUTES=rack:r1\n");
}

TEST_F(kiln_node, grow_data_refuses_a_disk_it_cannot_prove)
{
  GrowNode n(m_dir.path(), "ext4");
  ASSERT_TRUE(n.mounted);
  std::string table = fx::hash_range(n.loop->path(), 0, 1 << 20);
  // The command line names another disk's slot.
  test::write_text(n.cmdline, "root=PARTUUID=" + m_disk.gpt.by_label(slots::k_part_a).partuuid + " kiln.slot=A\n");
  auto r = n.grow();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  ASSERT_EQ(test::lines(r.err).size(), 1u) << r.err;
  EXPECT_NE(r.err.find("holds no booted slot"), std::string::npos) << r.err;
  // --booted is no proof.
  r = test::run_kiln_node({"--disk", n.loop->path(), "--booted", "A", "grow-data", "--mount", n.mount.string()},
                          {{"KILN_NODE_CMDLINE", n.cmdline.string()}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // The right disk, but the mount point is not kiln-data's.
  test::write_text(n.cmdline, "root=PARTUUID=" + n.gpt.by_label(slots::k_part_a).partuuid + " kiln.slot=A\n");
  r = test::run_kiln_node({"--disk", n.loop->path(), "grow-data", "--mount", m_dir.path().string()},
                          {{"KILN_NODE_CMDLINE", n.cmdline.string()}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is not where kiln-data"), std::string::npos) << r.err;
  EXPECT_EQ(fx::hash_range(n.loop->path(), 0, 1 << 20), table);
}

TEST_F(kiln_node, loop_devices_with_and_without_partition_nodes)
{
  bool partscan_nodes = false;
  for (bool partscan : {true, false}) {
    SCOPED_TRACE(partscan ? "partscan" : "no partscan");
    util::RunResult r, s;
    std::string loop;
    {
      fx::LoopDevice device(m_disk.path, partscan);
      loop = device.path();
      r = test::run_kiln_node(
        {"--disk", loop, "--booted", "A", "--json", "reimage", m_info.path.string(), "--trust", m_trust.string()});
      EXPECT_TRUE(r.ok()) << r.err;
      s = test::run_kiln_node({"--disk", loop, "--booted", "A", "--json", "status"});
      EXPECT_TRUE(s.ok()) << s.err;
      partscan_nodes = partscan_nodes || fs::exists(loop + "p5");
      // Partition nodes appear only where the kernel scanned the table (not in every
      // container); when they exist, kiln-node must write through slot B's own node.
      if (r.ok()) {
        json j = json::parse(r.out);
        EXPECT_EQ(j["slot"], "B");
        EXPECT_EQ(j["partition"], partscan && fs::exists(loop + "p5") ? loop + "p5" : loop + " (kiln-b)") << j.dump();
      }
    }
    ASSERT_TRUE(r.ok() && s.ok());
    EXPECT_EQ(json::parse(s.out)["slots"]["B"]["state"], "trial");
    EXPECT_EQ(fx::slot_hash(m_disk, slots::k_part_b, fs::file_size(m_new)), crypto::sha256_file(m_new));
  }
  RecordProperty("partition_nodes", partscan_nodes ? "yes" : "no");
}

} // namespace
} // namespace kiln
