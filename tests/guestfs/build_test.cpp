// kiln build end to end: a Debian base made with mmdebstrap, every step kind, every
// output format, then the produced image opened with libguestfs and checked; cache
// hits and misses counted in appliance launches; failures leave nothing behind.
#include "core/crypto/sha256.hpp"
#include "core/manifest/manifest.hpp"
#include "image/guestfs/guestfs.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <sys/stat.h>
#include <thread>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A cache of their own: these tests look at the cache as a whole.
const fs::path k_cache = fs::path(KILN_TEST_CACHE) / "build-tests";

std::string
base_yaml()
{
  return "base:\n"
         "  bootstrap:\n"
         "    suite: bookworm\n"
         "    variant: minbase\n"
         "    packages: [systemd, systemd-sysv, passwd, policycoreutils, selinux-policy-default]\n"
         "size: 1G\n";
}

// The recipe exercises every offline step kind. `last` is the content of a file read by
// the last stage, so a test can change exactly that stage.
void
write_recipe(const fs::path& dir, const std::string& last = "v1\n")
{
  test::write_text(dir / "overlays/node/etc/kiln/overlay.conf", "from=overlay\n");
  test::write_text(dir / "overlays/node/usr/local/bin/hello", "#!/bin/sh\necho hello\n");
  fs::permissions(dir / "overlays/node/usr/local/bin/hello", fs::perms::owner_all | fs::perms::group_read |
                                                               fs::perms::group_exec | fs::perms::others_read |
                                                               fs::perms::others_exec);
  test::write_text(dir / "files/last.txt", last);
  test::write_text(
    dir / "recipe.yaml",
    "name: fixture\n" + base_yaml() +
      "outputs: {formats: [qcow2, raw, vmdk, vhd, pxe]}\n"
      "stages:\n"
      "  - name: prep\n"
      "    steps:\n"
      // Unique to this run, so the stages are cold even in a reused build tree.
      "      - file: {path: /etc/kiln/nonce, content: '" +
      dir.filename().string() +
      "'}\n"
      "      - group: {name: dcos, gid: 4242}\n"
      "      - user: {name: core, uid: 1500, groups: [dcos]}\n"
      "      - file: {path: /etc/kiln/owned, content: \"x\\n\", mode: '0640', owner: core, group: dcos}\n"
      "      - overlay: node\n"
      "      - edit: {path: /etc/kiln/overlay.conf, set: {added: yes}}\n"
      "      - edit: {path: /etc/kiln/overlay.conf, match: '^from=', line: 'from=edit'}\n"
      "      - file: {path: /etc/kiln/doomed, content: gone}\n"
      "      - delete: [/etc/kiln/doomed]\n"
      "      - unit: {name: kiln-demo.service, content: \"[Unit]\\nDescription=demo\\n[Service]\\n"
      "ExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n\"}\n"
      "      - systemd: {enable: [kiln-demo.service], mask: [firewalld.service]}\n"
      "      - selinux: {mode: permissive}\n"
      "      - run: 'echo ran > /etc/kiln/ran; mkdir -p /etc/ssh; echo key > /etc/ssh/ssh_host_rsa_key'\n"
      // No network unless the recipe asks: the appliance has no interface but lo.
      "      - run: 'ls /sys/class/net > /etc/kiln/interfaces'\n"
      "      - firstboot: {name: dcos-install, script: 'echo installing', after: [docker.service]}\n"
      "      - file: {path: /boot/vmlinuz-6.1.0-kiln, content: kernel}\n"
      "      - file: {path: /boot/initrd.img-6.1.0-kiln, content: initrd}\n"
      "  - name: last\n"
      "    steps:\n"
      "      - file: {path: /etc/kiln/last, src: files/last.txt}\n");
}

util::RunResult
kiln_build(const fs::path& dir, const std::vector<std::string>& extra = {})
{
  std::vector<std::string> args{
    "build", (dir / "recipe.yaml").string(), "-o", (dir / "out").string(), "--cache", k_cache.string(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  return test::run_kiln(args);
}

class Build : public ::testing::Test {
protected:
  test::ScratchDir dir;
};

TEST_F(Build, EveryStepEveryFormatAndTheCache)
{
  write_recipe(dir.path());
  // A cold build of the stages (the bootstrap base may already be cached by another test).
  auto r = kiln_build(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json first = json::parse(r.out);
  EXPECT_EQ(first["built"], json({"prep", "last", "finalize"}));
  EXPECT_GE(first["launches"].get<int>(), 1);
  EXPECT_LE(first["launches"].get<int>(), 2); // base (when not cached) + one for every stage

  const fs::path out = dir / "out";
  // Manifest: every file with its digest, the packages from the guest's dpkg database.
  manifest::Manifest m = manifest::read_manifest(out / "fixture.manifest.json");
  std::map<std::string, std::string> files;
  for (const auto& f : m.files) {
    files[f.name] = f.format;
    EXPECT_EQ(crypto::sha256_file(out / f.name), f.sha256) << f.name;
  }
  EXPECT_EQ(files.size(), 8u);
  for (const char* name : {"fixture.qcow2", "fixture.raw", "fixture.raw.bmap", "fixture.vmdk", "fixture.vhd",
                           "fixture.vmlinuz", "fixture.initrd", "fixture.ipxe"}) {
    EXPECT_TRUE(files.count(name)) << name;
  }
  EXPECT_EQ(m.libguestfs_version, gfs::library_version());
  bool has_systemd = false;
  for (const auto& p : m.packages) {
    has_systemd |= p.name == "systemd";
  }
  EXPECT_TRUE(has_systemd);
  EXPECT_EQ(m.sbom["spdxVersion"], "SPDX-2.3");
  EXPECT_EQ(m.stages.size(), 3u);

  // Formats, as the real tools see them.
  auto info = [&](const std::string& name) {
    auto q = util::run({"qemu-img", "info", "--output=json", (out / name).string()});
    EXPECT_EQ(q.exit_code, 0) << q.err;
    return json::parse(q.out);
  };
  EXPECT_EQ(info("fixture.qcow2")["format"], "qcow2");
  EXPECT_FALSE(info("fixture.qcow2").contains("backing-filename"));
  EXPECT_EQ(info("fixture.vmdk")["format-specific"]["data"]["create-type"], "streamOptimized");
  auto vhd = util::run({"qemu-img", "info", "-f", "vpc", "--output=json", (out / "fixture.vhd").string()});
  ASSERT_EQ(vhd.exit_code, 0) << vhd.err;
  EXPECT_EQ(json::parse(vhd.out)["virtual-size"].get<std::uint64_t>() % (1 << 20), 0u);
  EXPECT_EQ(fs::file_size(out / "fixture.vhd") % 512, 0u);
  auto copy = util::run({"bmaptool", "copy", "--bmap", (out / "fixture.raw.bmap").string(),
                         (out / "fixture.raw").string(), (dir / "copied.raw").string()});
  ASSERT_EQ(copy.exit_code, 0) << copy.err;
  EXPECT_EQ(crypto::sha256_file(dir / "copied.raw"), crypto::sha256_file(out / "fixture.raw"));
  EXPECT_EQ(test::read_text(out / "fixture.vmlinuz"), "kernel");
  EXPECT_NE(test::read_text(out / "fixture.ipxe").find("kernel fixture.vmlinuz initrd=fixture.initrd"),
            std::string::npos);
  // Trimmed and sparse: the raw image allocates far less than its size.
  EXPECT_LT(fs::file_size(out / "fixture.qcow2"), (1ull << 30) / 2);

  // The image itself, opened with libguestfs.
  {
    gfs::Handle g;
    g.add_drive((out / "fixture.qcow2").string(), "qcow2", true);
    g.launch();
    auto roots = g.inspect_os();
    ASSERT_EQ(roots.size(), 1u);
    g.mount_os(roots[0], true);
    EXPECT_EQ(g.read_file("/etc/kiln/overlay.conf"), "from=edit\nadded=yes\n");
    EXPECT_EQ(g.read_file("/usr/local/bin/hello"), "#!/bin/sh\necho hello\n");
    EXPECT_EQ(g.lstat("/usr/local/bin/hello").mode & 0777, 0755u);
    EXPECT_EQ(g.lstat("/etc/kiln/overlay.conf").uid, 0u);
    gfs::Stat owned = g.lstat("/etc/kiln/owned");
    EXPECT_EQ(owned.mode & 0777, 0640u);
    EXPECT_EQ(owned.uid, 1500u);
    EXPECT_EQ(owned.gid, 4242u);
    EXPECT_FALSE(g.exists("/etc/kiln/doomed"));
    EXPECT_NE(g.read_file("/etc/group").find("dcos:x:4242:core"), std::string::npos);
    EXPECT_NE(g.read_file("/etc/passwd").find("core:x:1500:"), std::string::npos);
    EXPECT_EQ(g.readlink("/etc/systemd/system/multi-user.target.wants/kiln-demo.service"),
              "/etc/systemd/system/kiln-demo.service");
    EXPECT_EQ(g.readlink("/etc/systemd/system/firewalld.service"), "/dev/null");
    EXPECT_NE(g.read_file("/etc/selinux/config").find("SELINUX=permissive\n"), std::string::npos);
    // Relabelled offline with the image's own policy: files kiln wrote carry labels.
    EXPECT_NE(g.getxattr("/etc/kiln/owned", "security.selinux").find(":object_r:etc_t:"), std::string::npos);
    EXPECT_NE(g.getxattr("/usr/local/bin/hello", "security.selinux").find(":object_r:bin_t:"), std::string::npos);
    EXPECT_FALSE(g.exists("/.autorelabel"));
    EXPECT_EQ(g.read_file("/etc/kiln/ran"), "ran\n");
    EXPECT_EQ(g.read_file("/etc/kiln/interfaces"), "lo\n");
    EXPECT_EQ(g.read_file("/etc/kiln/last"), "v1\n");
    // First boot: a oneshot unit after network-online and time-sync, enabled, with a stamp.
    std::string unit = g.read_file("/etc/systemd/system/kiln-firstboot-dcos-install.service");
    EXPECT_NE(unit.find("After=network-online.target time-sync.target docker.service"), std::string::npos);
    EXPECT_NE(unit.find("Type=oneshot"), std::string::npos);
    EXPECT_NE(unit.find("ConditionPathExists=!/var/lib/kiln/firstboot/dcos-install.done"), std::string::npos);
    EXPECT_NE(unit.find("/var/log/kiln/dcos-install.log"), std::string::npos);
    EXPECT_TRUE(g.is_symlink("/etc/systemd/system/multi-user.target.wants/kiln-firstboot-dcos-install.service"));
    EXPECT_EQ(g.read_file("/usr/libexec/kiln/firstboot/dcos-install"), "#!/bin/sh\necho installing\n");
    // Sysprep.
    EXPECT_EQ(g.lstat("/etc/machine-id").size, 0u);
    EXPECT_TRUE(g.glob("/etc/ssh/ssh_host_*").empty());
    EXPECT_EQ(g.read_file("/etc/hostname"), "localhost\n");
    EXPECT_FALSE(g.exists("/var/lib/systemd/random-seed"));
    EXPECT_TRUE(g.glob("/var/cache/apt/archives/*.deb").empty());
    g.shutdown();
  }

  // Nothing changed: no appliance at all, and no output written again (the same inodes),
  // the result listing the outputs the directory holds.
  struct stat raw_before {};
  ASSERT_EQ(::stat((out / "fixture.raw").c_str(), &raw_before), 0);
  r = kiln_build(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json again = json::parse(r.out);
  EXPECT_EQ(again["launches"], 0);
  EXPECT_EQ(again["built"], json::array());
  EXPECT_EQ(again["reused"], json({"prep", "last", "finalize"}));
  EXPECT_EQ(again["outputs_up_to_date"], true);
  EXPECT_EQ(again["outputs"], first["outputs"]);
  struct stat raw_after {};
  ASSERT_EQ(::stat((out / "fixture.raw").c_str(), &raw_after), 0);
  EXPECT_EQ(raw_after.st_ino, raw_before.st_ino);
  EXPECT_EQ(raw_after.st_mtim.tv_nsec, raw_before.st_mtim.tv_nsec);
  // An output removed: everything is written again, the same bytes.
  fs::remove(out / "fixture.vhd");
  r = kiln_build(dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json rewritten = json::parse(r.out);
  EXPECT_EQ(rewritten["launches"], 0);
  EXPECT_EQ(rewritten["outputs_up_to_date"], false);
  EXPECT_EQ(rewritten["outputs"].size(), first["outputs"].size());
  EXPECT_TRUE(fs::is_regular_file(out / "fixture.vhd"));
  EXPECT_EQ(crypto::sha256_file(out / "fixture.raw"),
            m.files[0].name == "fixture.raw" ? m.files[0].sha256 : crypto::sha256_file(out / "fixture.raw"));

  // One file of the last stage changed: one launch, the first stage reused, and the guest
  // mounted by the first stage's record instead of inspected again (-v names the phase).
  write_recipe(dir.path(), "v2\n");
  r = kiln_build(dir.path(), {"--format", "qcow2", "-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json changed = json::parse(r.out);
  EXPECT_EQ(changed["launches"], 1);
  EXPECT_EQ(changed["reused"], json({"prep"}));
  EXPECT_EQ(changed["built"], json({"last", "finalize"}));
  EXPECT_NE(r.err.find("time: mount "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("time: inspect "), std::string::npos) << r.err;
  auto prep_stage = std::find_if(m.stages.begin(), m.stages.end(), [](const auto& s) { return s.name == "prep"; });
  ASSERT_NE(prep_stage, m.stages.end());
  json prep = json::parse(test::read_text(k_cache / "layers" / (prep_stage->key + ".json")));
  EXPECT_EQ(prep["guest"]["mounts"]["/"], prep["guest"]["root"]) << prep;
  // --no-cache: see UrlBasePackagesUnitsAndSelinuxFallback (a base that costs no
  // bootstrap and a finalize that relabels nothing, so it runs in a fraction of the time).
}

// A tiny .deb made here with dpkg-deb, for the offline package path.
fs::path
make_deb(const fs::path& dir, const std::string& name, const std::string& depends = "")
{
  fs::path root = dir / ("deb-" + name);
  test::write_text(root / "DEBIAN/control", "Package: " + name +
                                              "\nVersion: 1.0-1\nArchitecture: all\n"
                                              "Maintainer: kiln tests <kiln@example.invalid>\n" +
                                              (depends.empty() ? "" : "Depends: " + depends + "\n") +
                                              "Description: kiln test package\n");
  test::write_text(root / ("usr/share/" + name + "/installed"), "yes\n");
  fs::path deb = dir / (name + "_1.0-1_all.deb");
  auto r = util::run({"dpkg-deb", "--build", "--root-owner-group", root.string(), deb.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return deb;
}

TEST_F(Build, UrlBasePackagesUnitsAndSelinuxFallback)
{
  // A base image served over HTTP on loopback, pinned by its digest, as a cloud image would be.
  test::write_text(dir / "base/recipe.yaml",
                   "name: served\n" + base_yaml() + "outputs: {formats: [qcow2], compress: true}\n");
  auto r = kiln_build(dir / "base");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::create_directories(dir / "www");
  fs::rename(dir / "base/out/served.qcow2", dir / "www/served.qcow2");
  std::string digest = crypto::sha256_file(dir / "www/served.qcow2");
  test::HttpServer server(dir / "www");
  // compress: true gives a compressed qcow2, clearly smaller than a plain conversion.
  auto plain = util::run(
    {"qemu-img", "convert", "-O", "qcow2", (dir / "www/served.qcow2").string(), (dir / "plain.qcow2").string()});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_LT(fs::file_size(dir / "www/served.qcow2") * 10, fs::file_size(dir / "plain.qcow2") * 8);

  // A flat apt repository, laid into the image by an overlay and declared in the recipe.
  fs::path repo = dir / "repo-overlay/var/tmp/kiln-repo";
  fs::create_directories(repo);
  fs::rename(make_deb(dir.path(), "kiln-from-repo"), repo / "kiln-from-repo_1.0-1_all.deb");
  util::RunOptions in_repo;
  in_repo.cwd = repo.string();
  auto scan = util::run({test::require_program("dpkg-scanpackages", "dpkg-dev"), ".", "/dev/null"}, in_repo);
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  test::write_text(repo / "Packages", scan.out);

  make_deb(dir.path(), "kiln-hello");
  make_deb(dir.path(), "kiln-bye");
  make_deb(dir.path(), "kiln-broken", "kiln-no-such-dependency");
  test::write_text(dir / "recipe.yaml",
                   "name: fromurl\n"
                   "base: {url: '" +
                     server.url("/files/served.qcow2") + "', sha256: " + digest +
                     ", format: qcow2}\n"
                     "outputs: {formats: [qcow2]}\n"
                     "stages:\n"
                     "  - name: s\n"
                     "    steps:\n"
                     "      - packages: {files: [kiln-hello_1.0-1_all.deb]}\n"
                     "      - overlay: ./repo-overlay\n"
                     "      - packages: {install: [kiln-from-repo], repos: [{name: local, gpgcheck: false,"
                     " baseurl: 'file:/var/tmp/kiln-repo ./'}]}\n"
                     "      - packages: {files: [kiln-bye_1.0-1_all.deb]}\n"
                     "      - packages: {remove: [kiln-bye]}\n"
                     // 64 MiB that sysprep deletes again: trim must keep them out of the output.
                     "      - run: 'head -c 67108864 /dev/urandom > /var/tmp/big'\n"
                     "      - unit: {name: kiln-a.service, content: \"[Service]\\nExecStart=/bin/true\\n"
                     "[Install]\\nWantedBy=multi-user.target\\nAlias=kiln-alias.service\\n\"}\n"
                     "      - systemd: {enable: [kiln-a.service]}\n"
                     "      - systemd: {disable: [kiln-a.service]}\n"
                     // Without its file_contexts the policy cannot be applied offline.
                     "      - delete: [/etc/selinux/default/contexts/files/file_contexts]\n"
                     "      - selinux: {mode: enforcing}\n");
  // Signed at build time; the manifest and every file it lists verify against a trust dir.
  auto keygen = test::run_kiln({"keygen", "--out", (dir / "keys").string(), "--name", "release"});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  fs::create_directories(dir / "trust.d");
  fs::copy_file(dir / "keys/release.pub", dir / "trust.d/release.pem");
  r = kiln_build(dir.path(), {"--sign", (dir / "keys/release.key").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto verified = test::run_kiln(
    {"verify-signature", (dir / "out/fromurl.manifest.json").string(), "--trust", (dir / "trust.d").string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.err;
  EXPECT_NE(verified.out.find("good signature"), std::string::npos) << verified.out;
  // At most one download: the served image is reproducible, so a reused build tree may
  // already hold it in the download cache.
  EXPECT_LE(server.count("/files/served.qcow2"), 1);
  EXPECT_LT(fs::file_size(dir / "out/fromurl.qcow2"), fs::file_size(dir / "plain.qcow2") + (32u << 20));
  {
    gfs::Handle g;
    g.add_drive((dir / "out/fromurl.qcow2").string(), "qcow2", true);
    g.launch();
    auto roots = g.inspect_os();
    ASSERT_EQ(roots.size(), 1u);
    g.mount_os(roots[0], true);
    EXPECT_EQ(g.read_file("/usr/share/kiln-hello/installed"), "yes\n");
    EXPECT_EQ(g.read_file("/usr/share/kiln-from-repo/installed"), "yes\n");
    EXPECT_FALSE(g.exists("/usr/share/kiln-bye/installed")); // installed, then removed
    EXPECT_EQ(g.read_file("/etc/apt/sources.list.d/local.list"), "deb [trusted=yes] file:/var/tmp/kiln-repo ./\n");
    EXPECT_NE(g.read_file("/var/lib/dpkg/status").find("Package: kiln-hello"), std::string::npos);
    EXPECT_FALSE(g.exists("/var/tmp/kiln-packages"));
    EXPECT_FALSE(g.is_symlink("/etc/systemd/system/multi-user.target.wants/kiln-a.service"));
    EXPECT_FALSE(g.is_symlink("/etc/systemd/system/kiln-alias.service"));
    EXPECT_TRUE(g.is_file("/etc/systemd/system/kiln-a.service"));
    // An SELinux guest whose policy cannot be applied offline relabels at first boot.
    EXPECT_NE(g.read_file("/etc/selinux/config").find("SELINUX=enforcing\n"), std::string::npos);
    EXPECT_TRUE(g.exists("/.autorelabel"));
    g.shutdown();
  }
  auto packages = manifest::read_manifest(dir / "out/fromurl.manifest.json").packages;
  EXPECT_TRUE(std::any_of(packages.begin(), packages.end(), [](const auto& p) {
    return p.name == "kiln-hello" && p.version == "1.0-1" && p.arch == "all";
  }));
  EXPECT_EQ(manifest::read_manifest(dir / "out/fromurl.manifest.json").inputs.at(0).sha256, digest);

  // --no-cache builds every stage again and leaves the layer cache alone. A base that is a
  // file and no selinux step (so no relabel, the costly part of finalize): two short builds.
  test::write_text(dir / "small.yaml", "name: small\n"
                                       "base: {path: www/served.qcow2}\n"
                                       "outputs: {formats: [qcow2]}\n"
                                       "stages:\n"
                                       "  - name: one\n"
                                       "    steps:\n"
                                       "      - file: {path: /etc/kiln/nonce, content: '" +
                                         dir.path().filename().string() +
                                         "'}\n"
                                         "  - name: two\n"
                                         "    steps: [{file: {path: /etc/kiln/two, content: two}}]\n");
  auto small = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args{
      "build", (dir / "small.yaml").string(), "-o", (dir / "out-small").string(), "--cache", k_cache.string(),
      "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto built = test::run_kiln(args);
    EXPECT_EQ(built.exit_code, 0) << built.err;
    return json::parse(built.out);
  };
  EXPECT_EQ(small({})["built"], json({"one", "two", "finalize"}));
  std::map<fs::path, fs::file_time_type> before;
  for (const auto& e : fs::directory_iterator(k_cache / "layers")) {
    before[e.path()] = e.last_write_time();
  }
  json fresh = small({"--no-cache"});
  EXPECT_EQ(fresh["built"], json({"one", "two", "finalize"}));
  EXPECT_EQ(fresh["reused"], json::array());
  EXPECT_EQ(fresh["launches"], 1); // the base is a file: no launch of its own
  std::map<fs::path, fs::file_time_type> after;
  for (const auto& e : fs::directory_iterator(k_cache / "layers")) {
    after[e.path()] = e.last_write_time();
  }
  EXPECT_EQ(after, before);
  // Cached layers are sound qcow2 files.
  for (const auto& e : fs::directory_iterator(k_cache / "layers")) {
    if (e.path().extension() == ".qcow2") {
      auto check = util::run({"qemu-img", "check", "-q", e.path().string()});
      EXPECT_EQ(check.exit_code, 0) << e.path() << check.out << check.err;
    }
  }

  // A package whose dependency cannot be met: the error names the step and shows dpkg's words.
  // (This time the base is a local file.)
  test::write_text(dir / "broken.yaml",
                   "name: broken\n"
                   "base: {path: www/served.qcow2}\n"
                   "stages: [{name: s, steps: [{packages: {files: [kiln-broken_1.0-1_all.deb]}}]}]\n");
  r = test::run_kiln(
    {"build", (dir / "broken.yaml").string(), "-o", (dir / "out2").string(), "--cache", k_cache.string()});
  EXPECT_EQ(r.exit_code, 1);
  auto lines = test::lines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().rfind("kiln: error: packages step at " + (dir / "broken.yaml").string() + ":3:", 0), 0u)
    << lines.back();
  EXPECT_NE(lines.back().find("apt failed (the appliance has no network): exit status 1"), std::string::npos)
    << lines.back();
  EXPECT_NE(lines.back().find("kiln-no-such-dependency"), std::string::npos) << lines.back();
  EXPECT_FALSE(fs::exists(dir / "out2/broken.qcow2"));
}

TEST_F(Build, FailingCommandNamesItAndLeavesNothing)
{
  test::write_text(dir / "recipe.yaml", "name: failing\n" + base_yaml() +
                                          "stages:\n"
                                          "  - name: ok\n    steps: [{run: 'true'}]\n"
                                          "  - name: bad\n    steps:\n"
                                          "      - run: 'echo doing; echo something broke >&2; exit 3'\n");
  auto r = kiln_build(dir.path());
  EXPECT_EQ(r.exit_code, 1);
  auto lines = test::lines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "kiln: error: run step at " + (dir / "recipe.yaml").string() +
                            ":13:9: command 'echo doing; echo something broke >&2; exit 3': exit status 3: "
                            "something broke");
  // No outputs, no staging leftovers.
  EXPECT_TRUE(!fs::exists(dir / "out") || fs::is_empty(dir / "out"));
  EXPECT_EQ(r.out, "");
}

TEST_F(Build, InterruptedBuildLeavesNothingHalfWritten)
{
  test::write_text(dir / "recipe.yaml", "name: interrupted\n" + base_yaml() +
                                          "stages:\n"
                                          "  - name: one\n    steps: [{run: 'echo " +
                                          dir.path().filename().string() +
                                          "; sleep 3'}]\n"
                                          "  - name: two\n    steps: [{run: 'sleep 3'}]\n");
  // A scratch directory of a build that died by SIGKILL: the next build clears it.
  fs::create_directories(k_cache / "tmp/build.stale");
  test::write_text(k_cache / "tmp/build.stale/working.qcow2", "half");
  util::RunOptions o;
  util::Child child({KILN_BIN, "build", (dir / "recipe.yaml").string(), "-o", (dir / "out").string(), "--cache",
                     k_cache.string(), "--json"},
                    o);
  // Stop it once its working overlay exists, wherever the build is then.
  bool started = false;
  for (int i = 0; i < 1200 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (const auto& e : fs::directory_iterator(k_cache / "tmp")) {
      started |= e.path().filename() != "build.stale" && fs::exists(e.path() / "working.qcow2");
    }
  }
  ASSERT_TRUE(started);
  child.kill(SIGTERM);
  EXPECT_EQ(child.wait(), 143); // 128 + SIGTERM
  EXPECT_TRUE(!fs::exists(dir / "out") || fs::is_empty(dir / "out"));
  EXPECT_TRUE(fs::is_empty(k_cache / "tmp"));
  // Every layer in the cache is complete: an image never appears without its metadata.
  for (const auto& e : fs::directory_iterator(k_cache / "layers")) {
    if (e.path().extension() == ".qcow2" && e.path().filename().string()[0] != '.') {
      EXPECT_TRUE(fs::exists(fs::path(e.path()).replace_extension(".json"))) << e.path();
    }
    EXPECT_NE(e.path().filename().string()[0], '.') << "temporary file left: " << e.path();
  }
}

TEST_F(Build, BadRecipeTouchesNothing)
{
  test::write_text(dir / "recipe.yaml", "name: bad\n" + base_yaml() + "stages: [{name: s, steps: [{nope: 1}]}]\n");
  auto r = test::run_kiln(
    {"build", (dir / "recipe.yaml").string(), "-o", (dir / "out").string(), "--cache", (dir / "cache").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_FALSE(fs::exists(dir / "cache"));
}

} // namespace
} // namespace kiln
