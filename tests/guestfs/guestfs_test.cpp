// The libguestfs wrapper against the real appliance. Every launch costs ~15 s under TCG and
// ctest runs each TEST in its own process, so the file launches three times in total:
// twice in GuestfsImage.BuildThenReopenReadOnly (write, then read back) and once in
// GuestfsErrors.MessagesAreOneLine. The other tests never launch.
#include "core/util/error.hpp"
#include "core/util/process.hpp"
#include "image/guestfs/guestfs.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <regex>
#include <sys/stat.h>

namespace kiln::gfs {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

bool
contains(const std::vector<std::string>& list, const std::string& item)
{
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool
has_substr(const std::string& text, const std::string& part)
{
  return text.find(part) != std::string::npos;
}

// A qcow2 image made by qemu-img, as kiln's pipeline does.
fs::path
make_qcow2(const ScratchDir& dir, const std::string& size)
{
  fs::path image = dir / "disk.qcow2";
  util::run_checked({"qemu-img", "create", "-q", "-f", "qcow2", image.string(), size});
  return image;
}

// Launches and prints how long it took (for the record; TCG launches vary ±30 %).
void
timed_launch(Handle& h, const char* what)
{
  auto start = std::chrono::steady_clock::now();
  h.launch();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ measure  ] launch (%s, %s): %.1f s\n", what, h.accel() == Accel::kvm ? "kvm" : "tcg", seconds);
}

// The host's dash plus the shared objects it needs, laid out under `root` at the same
// paths, so the fresh filesystem gets a working /bin/sh for sh().
void
add_shell(const fs::path& root)
{
  fs::path dash = fs::canonical("/bin/dash");
  fs::create_directories(root / "bin");
  fs::copy_file(dash, root / "bin/sh");
  fs::permissions(root / "bin/sh", fs::perms(0755));
  util::RunResult ldd = util::run_checked({"ldd", dash.string()});
  std::regex path_re(R"((/[^ \t]+) \(0x)");
  for (const std::string& line : test::lines(ldd.out)) {
    std::smatch m;
    if (std::regex_search(line, m, path_re)) {
      fs::path lib = m[1].str();
      fs::path target = root / lib.relative_path();
      fs::create_directories(target.parent_path());
      fs::copy_file(fs::canonical(lib), target, fs::copy_options::overwrite_existing);
      fs::permissions(target, fs::perms(0755));
    }
  }
}

MkfsOptions
mkfs_options(const std::string& label, const std::string& features)
{
  MkfsOptions o;
  o.label = label;
  o.features = features;
  return o;
}

Error
catch_error(const std::function<void()>& f)
{
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no kiln::Error thrown";
  return Error("none", "none");
}

void
expect_one_line(const Error& e, const std::string& subject_prefix)
{
  std::string text = e.what();
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_EQ(text.find("LIBGUESTFS_DEBUG"), std::string::npos) << text;
  EXPECT_EQ(e.subject().rfind(subject_prefix, 0), 0u) << e.subject();
  EXPECT_FALSE(e.reason().empty());
  std::printf("[ message  ] %s\n", text.c_str());
}

TEST(Guestfs, LibraryVersionWithoutLaunch)
{
  std::string v = library_version();
  EXPECT_TRUE(std::regex_match(v, std::regex(R"(1\.\d+\.\d+.*)"))) << v;
}

TEST(GuestfsErrors, BeforeLaunchOneLine)
{
  Handle h;
  expect_one_line(catch_error([&] { h.add_drive("/nonexistent/kiln/disk.img", "raw"); }),
                  "guestfs add_drive /nonexistent/kiln/disk.img");
  expect_one_line(catch_error([&] { h.list_devices(); }), "guestfs list_devices");

  Handle moved = std::move(h);
  expect_one_line(catch_error([&] { h.list_devices(); }), "guestfs"); // NOLINT(bugprone-use-after-move)
}

TEST(GuestfsErrors, MessagesAreOneLine)
{
  ScratchDir dir;
  fs::path image = make_qcow2(dir, "64M");
  Handle h;
  h.add_drive(image.string(), "qcow2");
  timed_launch(h, "errors");

  expect_one_line(catch_error([&] { h.mount("/dev/sdz9", "/"); }), "guestfs mount /dev/sdz9");
  expect_one_line(catch_error([&] { h.read_file("/nonexistent"); }), "guestfs read_file /nonexistent");
  // mke2fs prints a version banner and the complaint on separate lines.
  expect_one_line(catch_error([&] { h.mkfs("ext4", "/dev/sda", mkfs_options("", "bogus_feature")); }),
                  "guestfs mkfs /dev/sda");
  // Refused before reaching mkfs.xfs, which would print its whole usage text.
  expect_one_line(catch_error([&] { h.mkfs("xfs", "/dev/sda", mkfs_options("", "^metadata_csum")); }),
                  "guestfs mkfs /dev/sda");
  // A local file that cannot be read is refused before libguestfs sends the request (an
  // upload whose local open fails can leave library and daemon waiting on each other).
  expect_one_line(catch_error([&] { h.tar_in((dir / "missing.tar").string(), "/"); }), "guestfs tar_in");
  Error upload = catch_error([&] { h.upload((dir / "missing").string(), "/x"); });
  expect_one_line(upload, "guestfs upload /x");
  EXPECT_EQ(upload.reason(),
            "cannot read the local file " + (dir / "missing").string() + ": No such file or directory");
  // The handle still works after those failures.
  EXPECT_EQ(h.list_devices(), std::vector<std::string>{"/dev/sda"});
  h.shutdown();
}

TEST(GuestfsImage, BuildThenReopenReadOnly)
{
  ScratchDir dir;
  fs::path image = make_qcow2(dir, "256M");
  std::vector<std::string> log;
  std::uint64_t progress_events = 0;
  HandleOptions options;
  options.log = [&](const std::string& line) { log.push_back(line); };
  options.progress = [&](std::uint64_t, std::uint64_t) { ++progress_events; };

  const std::string hello = std::string("hello\nwith a NUL \0 inside\n", 26);
  {
    Handle h(options);
    h.add_drive(image.string(), "qcow2");
    timed_launch(h, "read-write");
    if (::access("/dev/kvm", F_OK) != 0) {
      EXPECT_EQ(h.accel(), Accel::tcg);
    }
    EXPECT_TRUE(std::regex_match(h.version(), std::regex(R"(1\.\d+\.\d+.*)"))) << h.version();

    // Partition, format, mount.
    ASSERT_EQ(h.list_devices(), std::vector<std::string>{"/dev/sda"});
    h.part_disk("/dev/sda", "gpt");
    ASSERT_EQ(h.list_partitions(), std::vector<std::string>{"/dev/sda1"});
    h.mkfs("ext4", "/dev/sda1", mkfs_options("kilnroot", "^metadata_csum,^64bit"));
    EXPECT_EQ(h.vfs_type("/dev/sda1"), "ext4");
    EXPECT_TRUE(std::regex_match(h.vfs_uuid("/dev/sda1"), std::regex("[0-9a-f-]{36}"))) << h.vfs_uuid("/dev/sda1");
    auto tune = h.tune2fs_l("/dev/sda1");
    ASSERT_TRUE(tune.count("Filesystem features"));
    const std::string& features = tune["Filesystem features"];
    EXPECT_FALSE(has_substr(features, "metadata_csum")) << features;
    EXPECT_FALSE(has_substr(features, "64bit")) << features;
    EXPECT_TRUE(has_substr(features, "extent")) << features;
    EXPECT_EQ(tune["Filesystem volume name"], "kilnroot");
    EXPECT_EQ(h.list_filesystems()["/dev/sda1"], "ext4");
    h.mount("/dev/sda1", "/");

    // write / read_file (binary-safe), exists / is_file / is_dir.
    h.write("/hello.txt", hello);
    EXPECT_EQ(h.read_file("/hello.txt"), hello);
    EXPECT_TRUE(h.exists("/hello.txt"));
    EXPECT_TRUE(h.is_file("/hello.txt"));
    EXPECT_FALSE(h.is_dir("/hello.txt"));
    EXPECT_FALSE(h.exists("/nope"));
    h.mkdir_p("/a/b/c");
    EXPECT_TRUE(h.is_dir("/a/b/c"));

    // upload / download round trip.
    std::string blob(3u << 20, '\0');
    for (std::uint32_t i = 0; i < blob.size(); ++i) {
      blob[i] = static_cast<char>((i * 7919u) >> 3);
    }
    test::write_text(dir / "blob.in", blob);
    h.upload((dir / "blob.in").string(), "/a/blob");
    EXPECT_EQ(h.lstat("/a/blob").size, blob.size());
    h.download("/a/blob", (dir / "blob.out").string());
    EXPECT_EQ(test::read_text(dir / "blob.out"), blob);

    // chmod / chown / lstat / symlinks.
    h.chmod(0640, "/hello.txt");
    h.chown(1000, 1001, "/hello.txt");
    Stat st = h.lstat("/hello.txt");
    EXPECT_TRUE(S_ISREG(st.mode));
    EXPECT_EQ(st.mode & 07777, 0640u);
    EXPECT_EQ(st.uid, 1000u);
    EXPECT_EQ(st.gid, 1001u);
    EXPECT_EQ(st.size, hello.size());
    h.ln_sf("hello.txt", "/link");
    EXPECT_TRUE(h.is_symlink("/link"));
    EXPECT_FALSE(h.is_symlink("/hello.txt"));
    EXPECT_EQ(h.readlink("/link"), "hello.txt");
    EXPECT_TRUE(S_ISLNK(h.lstat("/link").mode));
    EXPECT_EQ(h.getxattr("/hello.txt", "user.kiln.absent"), "");

    // ls / glob / truncate / rm.
    auto root = h.ls("/");
    for (const char* name : {"hello.txt", "link", "a", "lost+found"}) {
      EXPECT_TRUE(contains(root, name)) << name;
    }
    auto matches = h.glob("/a/*");
    EXPECT_EQ(matches.size(), 2u);
    EXPECT_TRUE(contains(matches, "/a/blob"));
    EXPECT_TRUE(h.glob("/a/nothing*").empty());
    h.truncate("/a/blob");
    EXPECT_EQ(h.lstat("/a/blob").size, 0u);
    h.rm_f("/a/blob");
    h.rm_f("/a/blob"); // absent: fine
    EXPECT_FALSE(h.exists("/a/blob"));
    h.rm_rf("/a/b");
    EXPECT_FALSE(h.exists("/a/b"));

    // tar_in of a tar built here: a shell for sh(), a setuid file, a sticky /tmp.
    fs::path tree = dir / "tree";
    add_shell(tree);
    test::write_text(tree / "etc/motd", "from the tar\n");
    test::write_text(tree / "usr/bin/suid", "#!/bin/sh\n");
    fs::create_directories(tree / "tmp");
    util::run_checked({"chmod", "4755", (tree / "usr/bin/suid").string()});
    util::run_checked({"chmod", "1777", (tree / "tmp").string()});
    fs::path tar = dir / "tree.tar";
    util::run_checked(
      {"tar", "--numeric-owner", "--owner=0", "--group=0", "-cf", tar.string(), "-C", tree.string(), "."});
    h.tar_in(tar.string(), "/");
    EXPECT_EQ(h.read_file("/etc/motd"), "from the tar\n");
    EXPECT_EQ(h.lstat("/usr/bin/suid").mode & 07777, 04755u);
    EXPECT_EQ(h.lstat("/tmp").mode & 07777, 01777u);
    EXPECT_TRUE(h.is_file("/bin/sh"));

    // sh: exit status, stdout and stderr apart, quotes and newlines intact.
    const std::string script = "printf '%s\\n' \"it's \\\"quoted\\\"\" 'two words'\n"
                               "echo 'to stderr' >&2\n"
                               "echo persisted > /from-sh\n"
                               "exit 3\n";
    CommandResult r = h.sh(script);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "it's \"quoted\"\ntwo words\n");
    EXPECT_EQ(r.err, "to stderr\n");
    CommandResult ok = h.sh("echo ok");
    EXPECT_EQ(ok.exit_code, 0);
    EXPECT_EQ(ok.out, "ok\n");
    EXPECT_EQ(ok.err, "");
    CommandResult missing = h.sh("/no/such/program");
    EXPECT_EQ(missing.exit_code, 127);
    EXPECT_TRUE(has_substr(missing.err, "not found")) << missing.err;
    // The scratch files are gone again.
    EXPECT_TRUE(h.ls("/tmp").empty());
    EXPECT_TRUE(h.glob("/.kiln-sh*").empty());

    h.umount_all();
    h.shutdown();
  }
  std::printf("[ measure  ] %zu log lines, %llu progress events\n", log.size(),
              static_cast<unsigned long long>(progress_events));
  for (const auto& line : log) {
    EXPECT_EQ(line.find('\n'), std::string::npos);
    std::printf("[ log      ] %s\n", line.c_str());
  }

  // Reopen read-only: everything above persisted, and writes are refused in one line.
  {
    Handle h;
    h.add_drive(image.string(), "qcow2", true);
    timed_launch(h, "read-only");
    h.mount_ro("/dev/sda1", "/");
    EXPECT_EQ(h.read_file("/hello.txt"), hello);
    Stat st = h.lstat("/hello.txt");
    EXPECT_EQ(st.mode & 07777, 0640u);
    EXPECT_EQ(st.uid, 1000u);
    EXPECT_EQ(h.readlink("/link"), "hello.txt");
    EXPECT_EQ(h.read_file("/from-sh"), "persisted\n");
    EXPECT_EQ(h.read_file("/etc/motd"), "from the tar\n");
    EXPECT_EQ(h.tune2fs_l("/dev/sda1")["Filesystem volume name"], "kilnroot");
    expect_one_line(catch_error([&] { h.write("/new", "x"); }), "guestfs write /new");
    h.shutdown();
  }
}

} // namespace
} // namespace kiln::gfs
