// The kiln-node artifact (builder/node_artifact.cmake) is what ships to nodes: these
// tests prove it needs nothing of the host.
//   - every ELF in it resolves its NEEDED entries and its symbol versions inside it;
//   - run on this host, the loader loads exactly the allowlisted libraries, all from it;
//   - the processes it starts see no library path of its own;
//   - in an empty root (the artifact, a static busybox, /dev nodes, a disk image, a signed
//     bundle and an EL7-style /etc) it runs status, reimage (file and http by host name),
//     mark-good, rollback and wipe --dcos --root.
// The old-kernel run of the integration suite (tests/support/old_kernel) covers Linux 3.10.
#include "integration/node_fixture.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <regex>
#include <set>
#include <sstream>

namespace kiln {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
namespace fx = test::node;

const fs::path k_artifact = KILN_NODE_ARTIFACT;
const fs::path k_libexec = k_artifact / "usr/lib/kiln/node";
const fs::path k_libdir = k_libexec / "lib";

// What kiln-node may load: its loader, the C library, libcurl and OpenSSL with what
// Debian 12's libcurl4 needs, and what the static libarchive's tar/xz members call.
// A library that appears here by surprise (libstdc++, libyaml-cpp, libguestfs, libxml2,
// ICU) fails the test.
const std::set<std::string> k_allowed = {
  "ld-linux-x86-64.so.2", "libc.so.6",           "libcurl.so.4",      "libcrypto.so.3",       "libssl.so.3",
  "liblzma.so.5",         "libz.so.1",           "libnettle.so.8",    "libnghttp2.so.14",     "libidn2.so.0",
  "librtmp.so.1",         "libssh2.so.1",        "libpsl.so.5",       "libgssapi_krb5.so.2",  "libldap-2.5.so.0",
  "liblber-2.5.so.0",     "libzstd.so.1",        "libbrotlidec.so.1", "libbrotlicommon.so.1", "libunistring.so.2",
  "libgnutls.so.30",      "libhogweed.so.6",     "libgmp.so.10",      "libkrb5.so.3",         "libk5crypto.so.3",
  "libcom_err.so.2",      "libkrb5support.so.0", "libsasl2.so.2",     "libp11-kit.so.0",      "libtasn1.so.6",
  "libkeyutils.so.1",     "libresolv.so.2",      "libffi.so.8"};

// The sanitizer build (ci/sanitize, never shipped) adds the ASan and UBSan runtimes and
// what they need; the release build, which ci/test checks, holds none of them.
#ifdef KILN_SANITIZE
const std::set<std::string> k_sanitizer_runtime = {"libasan.so.8", "libubsan.so.1", "libstdc++.so.6", "libm.so.6",
                                                   "libgcc_s.so.1"};
#else
const std::set<std::string> k_sanitizer_runtime;
#endif

bool
allowed(const std::string& lib)
{
  return k_allowed.count(lib) != 0 || k_sanitizer_runtime.count(lib) != 0;
}

std::string
readelf(const std::vector<std::string>& args, const fs::path& file)
{
  std::vector<std::string> argv{"readelf", "--wide"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(file.string());
  util::RunResult r = util::run(argv);
  EXPECT_TRUE(r.ok()) << "readelf " << file << ": " << r.err;
  return r.out;
}

std::vector<std::string>
needed(const fs::path& elf)
{
  std::vector<std::string> out;
  static const std::regex re(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  for (const auto& line : test::lines(readelf({"-d"}, elf))) {
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      out.push_back(m[1]);
    }
  }
  return out;
}

// Every ELF of the artifact's library folder plus the real kiln-node.
std::vector<fs::path>
artifact_elves()
{
  std::vector<fs::path> out{k_libexec / "kiln-node"};
  for (const auto& e : fs::directory_iterator(k_libdir)) {
    out.push_back(e.path());
  }
  return out;
}

TEST(node_artifact, has_the_shape_kiln_installs)
{
  for (const char* p : {"usr/bin/kiln-node", "usr/lib/kiln/node/kiln-node", "usr/lib/kiln/node/VERSION",
                        "usr/lib/kiln/node/lib/ld-linux-x86-64.so.2", "usr/lib/kiln/node/lib/libc.so.6"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(k_artifact / p))) << p;
  }
  // The launcher is static: no loader of the host, no dynamic section.
  EXPECT_EQ(readelf({"-l"}, k_artifact / "usr/bin/kiln-node").find("INTERP"), std::string::npos);
  EXPECT_NE(readelf({"-d"}, k_artifact / "usr/bin/kiln-node").find("no dynamic section"), std::string::npos);
  // VERSION and --version agree, and name the kiln commit.
  std::string version = test::read_text(k_libexec / "VERSION");
  EXPECT_TRUE(std::regex_match(version, std::regex("kiln-node [0-9.]+ \\(kiln [0-9a-f]{7,}(-dirty)?\\)\n"))) << version;
  util::RunResult r = util::run({(k_artifact / "usr/bin/kiln-node").string(), "--version"});
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out, version);
}

// The shipped kiln-node reads none of the test hooks (KILN_NODE_SYSTEMCTL would run any
// program as root): their names are not in its bytes at all, while the test build's
// artifact, made the same way, holds each (the control: the search finds them).
TEST(node_artifact, the_shipped_kiln_node_holds_no_test_hook)
{
  const std::string shipped = test::read_text(k_libexec / "kiln-node");
  const std::string test_build = test::read_text(fs::path(KILN_NODE_TEST_ARTIFACT) / "usr/lib/kiln/node/kiln-node");
  ASSERT_GT(shipped.size(), 1000000u);
  for (const char* hook :
       {"KILN_NODE_SYSTEMCTL", "KILN_NODE_CMDLINE", "KILN_NODE_FAULT", "KILN_NODE_MESOS", "KILN_NODE_ZOOKEEPER"}) {
    EXPECT_EQ(shipped.find(hook), std::string::npos) << hook << " is in the shipped kiln-node";
    EXPECT_NE(test_build.find(hook), std::string::npos) << hook << " is not in the test build";
  }
}

TEST(node_artifact, needed_entries_resolve_inside_the_artifact)
{
  std::size_t checked = 0;
  for (const auto& elf : artifact_elves()) {
    for (const auto& lib : needed(elf)) {
      EXPECT_TRUE(fs::is_regular_file(k_libdir / lib)) << elf.filename() << " needs " << lib << ", not in the artifact";
      EXPECT_TRUE(allowed(lib)) << elf.filename() << " needs " << lib << ", not on the allowlist";
      ++checked;
    }
    EXPECT_EQ(readelf({"-d"}, elf).find("RUNPATH"), std::string::npos) << elf;
  }
  EXPECT_GT(checked, 30u);
  // kiln-node itself needs neither libstdc++ (linked in) nor the builder's libraries.
  for (const auto& lib : needed(k_libexec / "kiln-node")) {
    for (const char* banned : {"libstdc++", "yaml-cpp", "guestfs", "libxml2", "libicu", "libarchive"}) {
      EXPECT_EQ(lib.find(banned), std::string::npos) << "kiln-node needs " << lib;
    }
  }
}

// Symbol versions: `readelf -V` lists what each file defines (.gnu.version_d) and what it
// needs from each library (.gnu.version_r). Every need must be defined by the library of
// that name inside the artifact, so the node's glibc 2.17 never matters.
TEST(node_artifact, symbol_versions_are_satisfied_inside_the_artifact)
{
  static const std::regex def_re(R"(Rev: \d+\s+Flags: \S+\s+Index: (\d+)\s+Cnt: \d+\s+Name: (\S+))");
  static const std::regex file_re(R"(Version: \d+\s+File: (\S+)\s+Cnt: \d+)");
  static const std::regex need_re(R"(Name: (\S+)\s+Flags: \S+\s+Version: \d+)");
  std::map<std::string, std::set<std::string>> defined;
  std::map<fs::path, std::vector<std::pair<std::string, std::string>>> needs;
  for (const auto& elf : artifact_elves()) {
    std::string current;
    for (const auto& line : test::lines(readelf({"-V"}, elf))) {
      std::smatch m;
      if (std::regex_search(line, m, def_re)) {
        if (m[1] != "1") { // index 1 is the file's own soname
          defined[elf.filename().string()].insert(m[2]);
        }
      } else if (std::regex_search(line, m, file_re)) {
        current = m[1];
      } else if (std::regex_search(line, m, need_re) && !current.empty()) {
        needs[elf].emplace_back(current, m[1]);
      }
    }
  }
  std::size_t checked = 0;
  bool needs_new_glibc = false;
  for (const auto& [elf, list] : needs) {
    for (const auto& [lib, version] : list) {
      EXPECT_TRUE(defined[lib].count(version))
        << elf.filename() << " needs " << lib << " " << version << ", which the artifact's " << lib << " lacks";
      ++checked;
      if (elf.filename() == "kiln-node" && lib == "libc.so.6" && version > "GLIBC_2.17" && version.size() >= 10) {
        needs_new_glibc = true;
      }
    }
  }
  EXPECT_GT(checked, 100u);
  // Control: kiln-node does need symbols a CentOS 7 glibc (2.17) lacks, so this matters.
  EXPECT_TRUE(needs_new_glibc);
  EXPECT_TRUE(defined["libc.so.6"].count("GLIBC_2.34"));
}

// The loader's own account (LD_DEBUG=files) of every object it maps: all of them inside
// the artifact, all of them on the allowlist, for a command that reads a disk.
TEST(node_artifact, loads_only_allowlisted_libraries_from_the_artifact)
{
  test::ScratchDir dir;
  fx::AbDisk disk = fx::make_ab_disk(dir.path(), {"kiln_order=A B", "kiln_A_state=good", "kiln_B_state=empty"});
  util::RunOptions options;
  options.env["LD_DEBUG"] = "files";
  util::RunResult r = util::run(
    {(k_artifact / "usr/bin/kiln-node").string(), "--disk", disk.path.string(), "--booted", "A", "--json", "status"},
    options);
  ASSERT_TRUE(r.ok()) << r.err;
  static const std::regex init_re(R"(calling init: (\S+))");
  static const std::regex map_re(R"(file=(\S+) \[0\];\s+generating link map)");
  std::set<std::string> loaded;
  std::size_t inits = 0;
  for (const auto& line : test::lines(r.err)) {
    std::smatch m;
    if (std::regex_search(line, m, init_re)) {
      fs::path p = m[1].str();
      EXPECT_EQ(p.lexically_relative(k_artifact).string().rfind("..", 0), std::string::npos)
        << p << " was loaded from outside the artifact";
      ++inits;
    } else if (std::regex_search(line, m, map_re) && m[1].str().find('/') == std::string::npos) {
      loaded.insert(m[1]); // the program itself is named by its path
    }
  }
  EXPECT_GT(inits, 10u) << r.err;
  for (const auto& lib : loaded) {
    EXPECT_TRUE(allowed(lib)) << lib << " was loaded, not on the allowlist";
  }
  EXPECT_TRUE(loaded.count("libcurl.so.4"));
}

// The library path is the loader's argument, not the environment: a program kiln-node
// starts (here the test build's systemctl stand-in) runs with the host's libraries.
TEST(node_artifact, started_programs_see_no_library_path_of_the_artifact)
{
  test::ScratchDir dir;
  fs::path seen = dir / "env.txt";
  fs::path fake = dir / "systemctl";
  test::write_text(fake, "#!/bin/sh\nenv > '" + seen.string() + "'\necho running\n");
  fs::permissions(fake, fs::perms(0755));
  fx::AbDisk disk = fx::make_ab_disk(dir.path(), {"kiln_order=A B", "kiln_A_state=good", "kiln_B_state=empty"});
  util::RunResult r = test::run_kiln_node(
    {"--disk", disk.path.string(), "--booted", "A", "mark-good", "--when-healthy", "--root", dir.path().string()},
    {{"KILN_NODE_SYSTEMCTL", fake.string()}});
  ASSERT_TRUE(fs::exists(seen)) << r.err;
  std::string env = test::read_text(seen);
  EXPECT_EQ(env.find("LD_LIBRARY_PATH"), std::string::npos) << env;
  EXPECT_EQ(env.find("kiln/node"), std::string::npos) << env;
}

// --------------------------------------------------------------------------------------
// The empty root: nothing of the host is reachable, so whatever runs is the artifact's.

class node_empty_root : public ::testing::Test {
protected:
  void SetUp() override
  {
    ASSERT_EQ(::geteuid(), 0u) << "the empty-root test needs root (chroot, mknod, mount namespace)";
    m_root = m_dir / "root";
    fs::create_directories(m_root);
    fs::copy(k_artifact, m_root, fs::copy_options::recursive);
    fs::create_directories(m_root / "bin");
    fs::copy_file(test::require_program("busybox", "busybox-static"), m_root / "bin/busybox");
    ASSERT_EQ(needed(m_root / "bin/busybox").size(), 0u) << "busybox must be the static one (busybox-static)";
    // What the node must have for the commands that mount kiln-boot (README: mount, umount).
    for (const char* applet : {"sh", "mount", "umount"}) {
      fs::create_symlink("busybox", m_root / "bin" / applet);
    }
    fs::create_directories(m_root / "tmp");
    fs::create_directories(m_root / "dev");
    fs::create_directories(m_root / "proc");
    for (auto [name, minor] : std::vector<std::pair<const char*, unsigned>>{{"null", 3}, {"zero", 5}, {"urandom", 9}}) {
      ASSERT_EQ(::mknod((m_root / "dev" / name).c_str(), S_IFCHR | 0666, makedev(1, minor)), 0) << name;
    }
    // CentOS 7's /etc as far as kiln-node reads it: hosts, nsswitch.conf naming a module
    // (myhostname) that is not there, the EL CA bundle path.
    test::write_text(m_root / "etc/hosts", "127.0.0.1 localhost\n127.0.0.1 bundles.kiln.test\n");
    test::write_text(m_root / "etc/nsswitch.conf", "hosts: files dns myhostname\n");

    fs::path work = m_dir / "work";
    fs::create_directories(work);
    fs::path old_fs = fx::make_rootfs(work, "old", 16, fx::sample_files("1"));
    fs::path new_fs = fx::make_rootfs(work, "new", 16, fx::sample_files("2"));
    m_disk = fx::make_ab_disk(
      work, {"kiln_order=A B", "kiln_A_state=good", "kiln_A_tries=0", "kiln_B_state=empty", "kiln_B_tries=0"}, old_fs);
    fs::rename(m_disk.path, m_root / "disk.img");
    m_disk.path = m_root / "disk.img";
    fx::Keys key = fx::make_key(work / "keys", "release");
    fx::trust_dir(m_root / "etc/kiln/trust.d", {key}); // slots::k_trust_dir, the default
    fs::create_directories(m_root / "srv/files");
    auto signer = crypto::load_private_key(key.key);
    m_bundle = bundle::write_bundle(new_fs, m_root / "srv/files", fx::base_manifest("node-v2"), &signer);
  }

  // kiln-node ARGS in the root, /proc mounted in a mount namespace of its own (a node has
  // /proc); nothing else of the host is visible.
  util::RunResult node(const std::vector<std::string>& args, bool with_proc = true)
  {
    std::string script = with_proc ? "mount -t proc proc \"$0/proc\" && exec chroot \"$0\" /usr/bin/kiln-node \"$@\""
                                   : "exec chroot \"$0\" /usr/bin/kiln-node \"$@\"";
    std::vector<std::string> argv{"unshare", "--mount", "--propagation", "private",
                                  "sh",      "-c",      script,          m_root.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    util::RunOptions options;
    options.env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
    options.env["TMPDIR"] = "/tmp";
    return util::run(argv, options);
  }

  json node_json(std::vector<std::string> args)
  {
    args.insert(args.begin(), {"--disk", "/disk.img", "--json"});
    util::RunResult r = node(args);
    EXPECT_TRUE(r.ok()) << r.err;
    return r.ok() ? json::parse(r.out) : json();
  }

  test::ScratchDir m_dir;
  fs::path m_root;
  fx::AbDisk m_disk;
  bundle::BundleInfo m_bundle;
};

TEST_F(node_empty_root, the_root_holds_no_library_but_the_artifacts)
{
  for (const auto& e : fs::recursive_directory_iterator(m_root)) {
    const std::string name = e.path().filename().string();
    if (name.find(".so") != std::string::npos) {
      EXPECT_EQ(e.path().parent_path(), m_root / "usr/lib/kiln/node/lib") << e.path();
    }
  }
  // Without /proc the launcher finds itself through argv[0]. (AddressSanitizer's runtime
  // reads /proc/self/maps before main, so the sanitizer build mounts /proc here; the release
  // build that ci/test checks runs without it.)
#ifdef KILN_SANITIZE
  util::RunResult r = node({"--version"}, true);
#else
  util::RunResult r = node({"--version"}, false);
#endif
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out, test::read_text(k_libexec / "VERSION"));
}

TEST_F(node_empty_root, status_reimage_mark_good_rollback_and_wipe)
{
  json s = node_json({"--booted", "A", "status"});
  EXPECT_EQ(s["slots"]["A"]["state"], "good");
  EXPECT_EQ(s["slots"]["B"]["state"], "empty");

  json r = node_json({"--booted", "A", "reimage", "/srv/files/" + m_bundle.path.filename().string()});
  EXPECT_EQ(r["slot"], "B");
  s = node_json({"--booted", "A", "status"});
  EXPECT_EQ(s["slots"]["B"]["state"], "trial");
  EXPECT_EQ(s["slots"]["B"]["name"], "node-v2");
  EXPECT_EQ(s["next_boot"]["slot"], "B");

  json g = node_json({"--booted", "B", "mark-good"});
  EXPECT_EQ(g["slot"], "B");
  EXPECT_EQ(node_json({"--booted", "B", "status"})["slots"]["B"]["state"], "good");

  json back = node_json({"--booted", "B", "rollback"});
  EXPECT_EQ(back["next_boot"]["slot"], "A");

  for (const char* f : {"node/etc/mesosphere/roles/slave", "node/opt/mesosphere/bin/x", "node/var/lib/dcos/cluster-id",
                        "node/var/lib/kiln/dcos-installed", "node/opt/dcos_install_tmp/dcos_install.sh"}) {
    test::write_text(m_root / f, "x");
  }
  util::RunResult w = node({"wipe", "--dcos", "--root", "/node"});
  ASSERT_TRUE(w.ok()) << w.err;
  EXPECT_FALSE(fs::exists(m_root / "node/opt/mesosphere"));
  EXPECT_FALSE(fs::exists(m_root / "node/var/lib/dcos/cluster-id"));
  EXPECT_TRUE(fs::is_directory(m_root / "node/var/lib/dcos")); // a mount point: emptied, kept
  EXPECT_FALSE(fs::exists(m_root / "node/var/lib/kiln/dcos-installed"));
  EXPECT_TRUE(fs::exists(m_root / "node/opt/dcos_install_tmp/dcos_install.sh"));
}

// http by host name: /etc/hosts through glibc's built-in files service, with nsswitch.conf
// naming a module that is not there. https with no --ca-file: the EL CA bundle, said by -v.
TEST_F(node_empty_root, reimage_over_http_and_https_by_host_name)
{
  test::HttpServer server(m_root / "srv/files");
  const std::string name = m_bundle.path.filename().string();
  json r = node_json(
    {"--booted", "A", "reimage", "http://bundles.kiln.test:" + std::to_string(server.port()) + "/files/" + name});
  EXPECT_EQ(r["slot"], "B");

  fs::path tls = m_dir / "tls";
  fs::create_directories(tls);
  util::RunResult gen =
    util::run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
               (tls / "key.pem").string(), "-out", (tls / "cert.pem").string(), "-days", "1", "-subj",
               "/CN=bundles.kiln.test", "-addext", "subjectAltName=DNS:bundles.kiln.test"});
  ASSERT_TRUE(gen.ok()) << gen.err;
  test::HttpServer tls_server(m_root / "srv/files",
                              {"--tls-cert", (tls / "cert.pem").string(), "--tls-key", (tls / "key.pem").string()});
  const std::string url = "https://bundles.kiln.test:" + std::to_string(tls_server.port()) + "/files/" + name;
  // No CA bundle in the root: refused with the places it looked in.
  util::RunResult none = node({"--disk", "/disk.img", "--booted", "A", "reimage", url});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no CA bundle in the well-known places (/etc/pki/tls/certs/ca-bundle.crt"), std::string::npos)
    << none.err;
  // CentOS 7's bundle path holding the test CA: used and said.
  fs::create_directories(m_root / "etc/pki/tls/certs");
  fs::copy_file(tls / "cert.pem", m_root / "etc/pki/tls/certs/ca-bundle.crt");
  util::RunResult ok = node({"--disk", "/disk.img", "--booted", "A", "-v", "reimage", url});
  ASSERT_TRUE(ok.ok()) << ok.err;
  EXPECT_NE(ok.err.find("kiln-node: CA bundle /etc/pki/tls/certs/ca-bundle.crt (the node's trust store)"),
            std::string::npos)
    << ok.err;
}

// DNS proper: a network namespace of the test's own with a DNS responder on 127.0.0.1:53
// (tests/support/dns_http.py) that knows only dns.kiln.test, and an HTTP server beside it.
// The root's resolv.conf names it; no NSS module exists in the root, so glibc's built-in
// dns service is what resolves the name.
TEST_F(node_empty_root, reimage_over_http_resolves_the_name_by_dns)
{
  test::write_text(m_root / "etc/resolv.conf", "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n");
  const std::string name = m_bundle.path.filename().string();
  const fs::path log = m_dir / "dns_http.log";
  const std::string script =
    "ip link set lo up || exit 90\n"
    "python3 \"$1\" --name dns.kiln.test=127.0.0.1 --root \"$0/srv/files\" --port 8080 > \"$2\" 2>&1 &\n"
    "svc=$!\n"
    "for i in $(seq 300); do grep -q READY \"$2\" && break; sleep 0.1; done\n"
    "grep -q READY \"$2\" || { kill $svc; exit 91; }\n"
    "mount -t proc proc \"$0/proc\" || { kill $svc; exit 92; }\n"
    "shift 2\n"
    "chroot \"$0\" /usr/bin/kiln-node \"$@\"; rc=$?\n"
    "kill $svc; wait $svc 2>/dev/null; exit $rc\n";
  util::RunOptions options;
  options.env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin";
  options.env["TMPDIR"] = "/tmp";
  util::RunResult r =
    util::run({"unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script, m_root.string(),
               (fs::path(KILN_TEST_SUPPORT_DIR) / "dns_http.py").string(), log.string(), "--disk", "/disk.img",
               "--booted", "A", "--json", "reimage", "http://dns.kiln.test:8080/" + name},
              options);
  ASSERT_EQ(r.exit_code, 0) << r.err << (fs::exists(log) ? test::read_text(log) : "");
  EXPECT_EQ(json::parse(r.out)["slot"], "B");
  // The control: a name the responder does not know fails as a resolution error.
  r = util::run({"unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", script, m_root.string(),
                 (fs::path(KILN_TEST_SUPPORT_DIR) / "dns_http.py").string(), log.string(), "--disk", "/disk.img",
                 "--booted", "A", "reimage", "--retries", "0", "http://unknown.kiln.test:8080/" + name},
                options);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("resolve"), std::string::npos) << r.err;
}

} // namespace
} // namespace kiln
