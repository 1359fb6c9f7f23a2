// make_ext4_from_tar: tars made here with libarchive (pax, xattrs, sparse members) become
// ext4 images with the real mke2fs; debugfs and e2fsck read them back.
#include "core/archive/handles.hpp"
#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "image/fsimage/ext4_image.hpp"
#include "image/fsimage/tar_spool.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <random>
#include <regex>

namespace kiln::fsimage {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t k_epoch = 1'700'000'000;
constexpr std::int64_t k_old = k_epoch - 86'400 * 365; // a member's mtime before the epoch: kept
constexpr std::uint64_t k_mib = 1ull << 20;
constexpr std::uint64_t k_sparse_size = 5ull << 30; // past 4 GiB: the size's high word is used
const std::string k_selinux("system_u:object_r:etc_t:s0\0", 27); // with its trailing NUL
const std::string k_user_x("\x00\x01\xff\x80 binary", 11);
const std::string k_capability("\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

struct TarMember {
  std::string path;
  char type = 'f'; // f, d, l (symlink), h (hard link), c, b, p
  unsigned mode = 0644;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime = k_old;
  std::string data; // f
  std::string link; // l, h
  std::vector<std::pair<std::string, std::string>> xattrs;
  unsigned major = 0;
  unsigned minor = 0;
  // A sparse f: its size and data runs (offset, bytes); `data` is unused.
  std::uint64_t sparse_size = 0;
  std::vector<std::pair<std::uint64_t, std::string>> runs;
};

TarMember
file(std::string path, std::string data, unsigned mode = 0644)
{
  TarMember m;
  m.path = std::move(path);
  m.data = std::move(data);
  m.mode = mode;
  return m;
}

TarMember
directory(std::string path, unsigned mode = 0755)
{
  TarMember m;
  m.path = std::move(path);
  m.type = 'd';
  m.mode = mode;
  return m;
}

TarMember
link_member(char type, std::string path, std::string target)
{
  TarMember m;
  m.path = std::move(path);
  m.type = type;
  m.mode = 0777;
  m.link = std::move(target);
  return m;
}

TarMember
device(char type, std::string path, unsigned major, unsigned minor)
{
  TarMember m;
  m.path = std::move(path);
  m.type = type;
  m.mode = 0660;
  m.major = major;
  m.minor = minor;
  return m;
}

std::string
random_bytes(std::size_t size, unsigned seed)
{
  std::mt19937 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) {
    c = static_cast<char>(gen() & 0xff);
  }
  return out;
}

void
check_write(int r, struct archive* a)
{
  ASSERT_GE(r, ARCHIVE_WARN) << archive_error_string(a);
}

// A pax tar of `members` in the order given.
void
write_tar(const fs::path& out, const std::vector<TarMember>& members)
{
  archive::WriteHandle a(archive_write_new());
  archive_write_set_format_pax(a.get());
  ASSERT_EQ(archive_write_open_filename(a.get(), out.c_str()), ARCHIVE_OK);
  for (const TarMember& m : members) {
    archive::EntryHandle e(archive_entry_new());
    archive_entry_set_pathname(e.get(), m.path.c_str());
    archive_entry_set_uid(e.get(), m.uid);
    archive_entry_set_gid(e.get(), m.gid);
    archive_entry_set_mtime(e.get(), m.mtime, 0);
    std::map<char, unsigned> types{{'f', AE_IFREG}, {'d', AE_IFDIR}, {'l', AE_IFLNK}, {'h', AE_IFREG},
                                   {'c', AE_IFCHR}, {'b', AE_IFBLK}, {'p', AE_IFIFO}};
    archive_entry_set_mode(e.get(), types.at(m.type) | m.mode);
    for (const auto& [name, value] : m.xattrs) {
      archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
    }
    if (m.type == 'l') {
      archive_entry_set_symlink(e.get(), m.link.c_str());
    } else if (m.type == 'h') {
      archive_entry_set_hardlink(e.get(), m.link.c_str());
      archive_entry_set_size(e.get(), 0);
    } else if (m.type == 'c' || m.type == 'b') {
      archive_entry_set_rdevmajor(e.get(), m.major);
      archive_entry_set_rdevminor(e.get(), m.minor);
    } else if (m.type == 'f') {
      archive_entry_set_size(e.get(), static_cast<la_int64_t>(m.runs.empty() ? m.data.size() : m.sparse_size));
      for (const auto& [offset, bytes] : m.runs) {
        archive_entry_sparse_add_entry(e.get(), static_cast<la_int64_t>(offset), static_cast<la_int64_t>(bytes.size()));
      }
    }
    check_write(archive_write_header(a.get(), e.get()), a.get());
    if (m.type == 'f' && m.runs.empty()) {
      ASSERT_EQ(archive_write_data(a.get(), m.data.data(), m.data.size()), static_cast<la_ssize_t>(m.data.size()));
    } else if (m.type == 'f') {
      // The whole logical content goes in; the pax writer leaves the holes out.
      std::string zeros(4 * k_mib, '\0');
      std::uint64_t pos = 0;
      for (const auto& [offset, bytes] : m.runs) {
        for (; pos < offset; pos += std::min<std::uint64_t>(zeros.size(), offset - pos)) {
          archive_write_data(a.get(), zeros.data(), std::min<std::uint64_t>(zeros.size(), offset - pos));
        }
        archive_write_data(a.get(), bytes.data(), bytes.size());
        pos += bytes.size();
      }
      for (; pos < m.sparse_size; pos += std::min<std::uint64_t>(zeros.size(), m.sparse_size - pos)) {
        archive_write_data(a.get(), zeros.data(), std::min<std::uint64_t>(zeros.size(), m.sparse_size - pos));
      }
    }
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
}

Ext4Params
params(std::uint64_t size = 64 * k_mib)
{
  Ext4Params p;
  p.size = size;
  p.label = "kiln-root";
  p.uuid = "0b6a4f4e-8d2c-4a57-9c1e-3f5d2e7a9b10";
  p.hash_seed = "5e3c1a2b-7d4f-4e6a-8b9c-0d1e2f3a4b5c";
  p.epoch = k_epoch;
  return p;
}

// Every kind of member, names and owners included, in a tar writer's order.
std::vector<TarMember>
rich_tree()
{
  std::vector<TarMember> t;
  TarMember root = directory("./");
  root.xattrs = {{"security.selinux", std::string("system_u:object_r:root_t:s0\0", 27)}};
  t.push_back(root);
  t.push_back(directory("./etc/"));
  TarMember hosts = file("./etc/hosts", "127.0.0.1 localhost\n");
  hosts.xattrs = {{"security.selinux", k_selinux}};
  t.push_back(hosts);
  TarMember fresh = file("./etc/fresh", "newer than the epoch\n");
  fresh.mtime = k_epoch + 86'400;
  t.push_back(fresh);
  t.push_back(link_member('h', "./etc/hosts.hard", "./etc/hosts"));
  t.push_back(link_member('l', "./etc/short", "hosts"));
  t.push_back(link_member('l', "./etc/long", "/usr/share/" + std::string(100, 'x') + "/target"));
  t.push_back(directory("./usr/"));
  t.push_back(directory("./usr/bin/"));
  TarMember su = file("./usr/bin/su", "#!/bin/sh\n", 04755);
  su.xattrs = {{"security.capability", k_capability}};
  t.push_back(su);
  t.push_back(file("./usr/bin/zzz", "the holder is bin/aaa\n", 0755));
  t.push_back(directory("./bin/"));
  t.push_back(link_member('h', "./bin/aaa", "usr/bin/zzz"));
  t.push_back(directory("./home/"));
  TarMember home = directory("./home/user/", 0700);
  home.uid = 1000;
  home.gid = 1000;
  t.push_back(home);
  TarMember data = file("./home/user/data", "private\n", 0600);
  data.uid = 1000;
  data.gid = 1001;
  data.xattrs = {{"user.x", k_user_x}, {"trusted.t", "trusted value"}};
  t.push_back(data);
  TarMember blob = file("./etc/blob", "xattrs past the inode's room: one block of their own\n");
  blob.xattrs = {{"user.blob", std::string(900, 'b')}, {"security.selinux", k_selinux}};
  t.push_back(blob);
  t.push_back(directory("./tmp/", 01777));
  t.push_back(directory("./lost+found/", 0700));
  t.push_back(directory("./usr/share/"));
  t.push_back(file("./usr/share/big", random_bytes(5 * k_mib, 1)));
  TarMember sparse;
  sparse.path = "./var/sparse";
  sparse.sparse_size = k_sparse_size;
  sparse.runs = {{0, random_bytes(8192, 2)}, {(1ull << 30) + 100, "in the middle"}, {k_sparse_size - 10, "0123456789"}};
  t.push_back(sparse);
  t.push_back(file("./var/zeros", std::string(1 * k_mib, '\0'))); // zeros in the tar, a hole in ext4
  t.push_back(directory("./dev/"));
  t.push_back(device('c', "./dev/null", 1, 3));
  t.push_back(device('b', "./dev/sda", 8, 0));
  t.push_back(device('c', "./dev/wide", 300, 70000)); // Linux's 12:20 encoding
  t.push_back(device('p', "./run/fifo", 0, 0)); // /run itself is not listed
  t.push_back(file("/opt/deep/er/file", "absolute and under unlisted parents\n"));
  return t;
}

struct Made {
  fs::path image;
  Ext4Report report;
};

Made
make(const test::ScratchDir& dir, const std::vector<TarMember>& members, const Ext4Params& p,
     const std::string& name = "root")
{
  fs::path tar = dir / (name + ".tar");
  write_tar(tar, members);
  Made made;
  made.image = dir / (name + ".ext4");
  made.report = make_ext4_from_tar(util::system_runner(), tar, made.image, p);
  return made;
}

std::string
debugfs(const fs::path& image, const std::string& request)
{
  test::require_program("debugfs", "e2fsprogs");
  util::RunResult r = util::run({"debugfs", "-R", request, image.string()});
  EXPECT_EQ(r.exit_code, 0) << request << ": " << r.err;
  return r.out;
}

struct Stat {
  std::string type;
  unsigned ino = 0;
  unsigned mode = 0;
  unsigned uid = 0;
  unsigned gid = 0;
  std::uint64_t size = 0;
  unsigned links = 0;
  std::uint64_t blockcount = 0;
  std::map<std::string, std::string> times; // "ctime" -> "0xSECONDS:EXTRA"
  std::string fast_link;
};

std::string
field(const std::string& text, const std::string& pattern)
{
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) {
    ADD_FAILURE() << "no " << pattern << " in:\n" << text;
    return "0";
  }
  return m[1];
}

Stat
stat_of(const fs::path& image, const std::string& path)
{
  std::string out = debugfs(image, "stat " + path);
  Stat s;
  s.ino = static_cast<unsigned>(std::stoul(field(out, R"(Inode: (\d+))")));
  s.type = field(out, R"(Type: (\w+))");
  s.mode = static_cast<unsigned>(std::stoul(field(out, R"(Mode: +(\d+))"), nullptr, 8));
  s.uid = static_cast<unsigned>(std::stoul(field(out, R"(User: +(\d+))")));
  s.gid = static_cast<unsigned>(std::stoul(field(out, R"(Group: +(\d+))")));
  s.size = std::stoull(field(out, R"(Size: (\d+)\n)"));
  s.links = static_cast<unsigned>(std::stoul(field(out, R"(Links: (\d+))")));
  s.blockcount = std::stoull(field(out, R"(Blockcount: (\d+))"));
  for (const char* t : {"ctime", "atime", "mtime", "crtime"}) {
    s.times[t] = field(out, std::string("\n *") + t + R"(: (0x[0-9a-f]+:[0-9a-f]+))");
  }
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(Fast link dest: \"(.*)\")"))) {
    s.fast_link = m[1];
  }
  return s;
}

std::string
hex_time(std::int64_t t)
{
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%08x:00000000", static_cast<unsigned>(t));
  return buf;
}

std::string
xattr(const test::ScratchDir& dir, const fs::path& image, const std::string& path, const std::string& name)
{
  fs::path out = dir / "xattr.value";
  fs::remove(out);
  debugfs(image, "ea_get -f " + out.string() + " " + path + " " + name);
  return fs::exists(out) ? test::read_text(out) : "(missing)";
}

std::uint32_t
superblock_u32(const fs::path& image, std::size_t offset)
{
  std::string sb = test::read_text(image).substr(1024, 1024);
  std::uint32_t v = 0;
  std::memcpy(&v, sb.data() + offset, sizeof v);
  return v;
}

std::vector<std::string>
leftovers(const fs::path& dir)
{
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".tar") {
      names.push_back(name);
    }
  }
  return names;
}

// 1. The same tar twice gives the same bytes.
TEST(Ext4Image, SameTarTwiceGivesIdenticalImages)
{
  test::ScratchDir dir;
  Made a = make(dir, rich_tree(), params(), "a");
  Made b = make(dir, rich_tree(), params(), "b");
  EXPECT_EQ(crypto::sha256_file(a.image), crypto::sha256_file(b.image));
  EXPECT_EQ(fs::file_size(a.image), 64 * k_mib);
}

// 2. The member order of the tar does not matter (hard links before their targets included).
TEST(Ext4Image, MemberOrderDoesNotMatter)
{
  test::ScratchDir dir;
  std::vector<TarMember> tree = rich_tree();
  Made a = make(dir, tree, params(), "sorted");
  std::reverse(tree.begin(), tree.end());
  Made b = make(dir, tree, params(), "reversed");
  std::shuffle(tree.begin(), tree.end(), std::mt19937(7));
  Made c = make(dir, tree, params(), "shuffled");
  EXPECT_EQ(crypto::sha256_file(a.image), crypto::sha256_file(b.image));
  EXPECT_EQ(crypto::sha256_file(a.image), crypto::sha256_file(c.image));
}

// 3. What the image is made of changes it: the epoch, one byte of content.
TEST(Ext4Image, EpochOrOneByteChangesTheImage)
{
  test::ScratchDir dir;
  std::vector<TarMember> tree = rich_tree();
  Made base = make(dir, tree, params(), "base");
  Ext4Params later = params();
  later.epoch = k_epoch + 1;
  Made epoch = make(dir, tree, later, "epoch");
  ASSERT_EQ(tree[2].path, "./etc/hosts");
  tree[2].data[0] = '2';
  Made byte = make(dir, tree, params(), "byte");
  std::string h = crypto::sha256_file(base.image);
  EXPECT_NE(h, crypto::sha256_file(epoch.image));
  EXPECT_NE(h, crypto::sha256_file(byte.image));
}

// 4. e2fsck finds nothing to fix.
TEST(Ext4Image, PassesFsck)
{
  test::ScratchDir dir;
  Made made = make(dir, rich_tree(), params());
  std::string e2fsck = test::require_program("e2fsck", "e2fsprogs");
  util::RunResult r = util::run({e2fsck, "-fn", made.image.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(made.report.entries, rich_tree().size());
  EXPECT_EQ(made.report.skipped, 0u);
  EXPECT_EQ(made.report.implicit_dirs, 5u); // run, var, opt, opt/deep, opt/deep/er
}

// 5. Read back: content, modes, owners, links, devices.
TEST(Ext4Image, ReadsBackContentModesAndOwners)
{
  test::ScratchDir dir;
  Made made = make(dir, rich_tree(), params());
  const fs::path& img = made.image;
  EXPECT_EQ(debugfs(img, "cat /etc/hosts"), "127.0.0.1 localhost\n");
  EXPECT_EQ(debugfs(img, "cat /opt/deep/er/file"), "absolute and under unlisted parents\n");
  Stat su = stat_of(img, "/usr/bin/su");
  EXPECT_EQ(su.mode, 04755u);
  EXPECT_EQ(su.type, "regular");
  Stat data = stat_of(img, "/home/user/data");
  EXPECT_EQ(data.mode, 0600u);
  EXPECT_EQ(data.uid, 1000u);
  EXPECT_EQ(data.gid, 1001u);
  Stat home = stat_of(img, "/home/user");
  EXPECT_EQ(home.mode, 0700u);
  EXPECT_EQ(home.uid, 1000u);
  EXPECT_EQ(stat_of(img, "/tmp").mode, 01777u);
  EXPECT_EQ(stat_of(img, "/lost+found").ino, 11u); // mke2fs's own
  Stat run = stat_of(img, "/run"); // not in the tar
  EXPECT_EQ(run.mode, 0755u);
  EXPECT_EQ(run.uid, 0u);
  std::string dev = debugfs(img, "ls -p /dev");
  EXPECT_NE(dev.find("/020660/0/0/null/"), std::string::npos) << dev;
  EXPECT_NE(dev.find("/060660/0/0/sda/"), std::string::npos) << dev;
  EXPECT_NE(dev.find("/020660/0/0/wide/"), std::string::npos) << dev;
  EXPECT_NE(debugfs(img, "stat /dev/wide").find("Device major/minor number: 300:70000"), std::string::npos);
  EXPECT_NE(debugfs(img, "stat /dev/null").find("Device major/minor number: 01:03"), std::string::npos);
  EXPECT_EQ(stat_of(img, "/run/fifo").type, "FIFO");
}

TEST(Ext4Image, ReadsBackSymlinksAndHardLinks)
{
  test::ScratchDir dir;
  Made made = make(dir, rich_tree(), params());
  const fs::path& img = made.image;
  Stat short_link = stat_of(img, "/etc/short");
  EXPECT_EQ(short_link.type, "symlink");
  EXPECT_EQ(short_link.fast_link, "hosts");
  Stat long_link = stat_of(img, "/etc/long");
  EXPECT_EQ(long_link.fast_link, ""); // in a block of its own
  std::string target = "/usr/share/" + std::string(100, 'x') + "/target";
  EXPECT_EQ(long_link.size, target.size());
  EXPECT_EQ(debugfs(img, "cat /etc/long"), target);
  Stat hosts = stat_of(img, "/etc/hosts");
  Stat hard = stat_of(img, "/etc/hosts.hard");
  EXPECT_EQ(hosts.ino, hard.ino);
  EXPECT_EQ(hosts.links, 2u);
  // The tar's target sorts after its link: the inode is the same either way.
  Stat aaa = stat_of(img, "/bin/aaa");
  Stat zzz = stat_of(img, "/usr/bin/zzz");
  EXPECT_EQ(aaa.ino, zzz.ino);
  EXPECT_EQ(aaa.links, 2u);
  EXPECT_EQ(aaa.mode, 0755u);
  EXPECT_EQ(debugfs(img, "cat /bin/aaa"), "the holder is bin/aaa\n");
  // Inode numbers follow the sorted paths: /bin (the first member) right after lost+found.
  EXPECT_EQ(stat_of(img, "/bin").ino, 12u);
}

TEST(Ext4Image, ReadsBackLargeAndSparseFiles)
{
  test::ScratchDir dir;
  Made made = make(dir, rich_tree(), params());
  const fs::path& img = made.image;
  EXPECT_EQ(crypto::sha256_hex(debugfs(img, "cat /usr/share/big")), crypto::sha256_hex(random_bytes(5 * k_mib, 1)));
  EXPECT_NE(debugfs(img, "stat /usr/share/big").find("Flags: 0x80000"), std::string::npos); // EXT4_EXTENTS_FL
  Stat zeros = stat_of(img, "/var/zeros");
  EXPECT_EQ(zeros.size, k_mib);
  EXPECT_EQ(zeros.blockcount, 0u);
  Stat sparse = stat_of(img, "/var/sparse");
  EXPECT_EQ(sparse.size, k_sparse_size);
  EXPECT_EQ(sparse.blockcount, (2 + 1 + 1) * 8u); // 4 blocks of 4 KiB, counted in 512-byte sectors
  // Each run where the extents put it: logical block -> physical block, read from the image.
  std::map<std::uint64_t, std::uint64_t> physical;
  std::string extents = debugfs(img, "ex /var/sparse");
  std::regex row(R"(\s*\d+/\s*\d+\s+\d+/\s*\d+\s+(\d+) -\s+(\d+)\s+(\d+) -\s+(\d+))");
  for (auto it = std::sregex_iterator(extents.begin(), extents.end(), row); it != std::sregex_iterator(); ++it) {
    std::uint64_t logical = std::stoull((*it)[1]);
    std::uint64_t end = std::stoull((*it)[2]);
    std::uint64_t start = std::stoull((*it)[3]);
    for (std::uint64_t l = logical; l <= end; ++l) {
      physical[l] = start + (l - logical);
    }
  }
  util::Fd fd = util::open_file(img, O_RDONLY);
  std::vector<TarMember> tree = rich_tree();
  auto sparse_member =
    std::find_if(tree.begin(), tree.end(), [](const TarMember& m) { return m.path == "./var/sparse"; });
  ASSERT_NE(sparse_member, tree.end());
  for (const auto& [offset, bytes] : sparse_member->runs) {
    ASSERT_EQ(physical.count(offset / 4096), 1u) << offset;
    std::string got(bytes.size(), '\0');
    util::pread_full(fd.get(), got.data(), got.size(), physical[offset / 4096] * 4096 + offset % 4096, "image");
    EXPECT_EQ(got, bytes) << offset;
  }
}

TEST(Ext4Image, ReadsBackXattrsExactly)
{
  test::ScratchDir dir;
  Made made = make(dir, rich_tree(), params());
  const fs::path& img = made.image;
  EXPECT_EQ(xattr(dir, img, "/etc/hosts", "security.selinux"), k_selinux);
  EXPECT_EQ(xattr(dir, img, "/", "security.selinux"), std::string("system_u:object_r:root_t:s0\0", 27));
  EXPECT_EQ(xattr(dir, img, "/usr/bin/su", "security.capability"), k_capability);
  EXPECT_EQ(xattr(dir, img, "/home/user/data", "user.x"), k_user_x);
  EXPECT_EQ(xattr(dir, img, "/home/user/data", "trusted.t"), "trusted value");
  EXPECT_EQ(xattr(dir, img, "/etc/blob", "user.blob"), std::string(900, 'b'));
  EXPECT_EQ(xattr(dir, img, "/etc/blob", "security.selinux"), k_selinux);
  EXPECT_EQ(debugfs(img, "stat /etc/blob").find("File ACL: 0\n"), std::string::npos); // an xattr block
  std::string list = debugfs(img, "ea_list /home/user/data");
  EXPECT_NE(list.find("user.x (11)"), std::string::npos) << list;
  EXPECT_NE(list.find("trusted.t (13)"), std::string::npos) << list;
  EXPECT_EQ(debugfs(img, "ea_list /etc/fresh").find("security"), std::string::npos); // none given, none written
}

TEST(Ext4Image, TimesComeFromTheEpoch)
{
  test::ScratchDir dir;
  Made made = make(dir, rich_tree(), params());
  const fs::path& img = made.image;
  for (const char* path : {"/", "/etc", "/etc/hosts", "/etc/fresh", "/etc/long", "/run", "/lost+found", "/dev/null"}) {
    Stat s = stat_of(img, path);
    EXPECT_EQ(s.times["ctime"], hex_time(k_epoch)) << path;
    EXPECT_EQ(s.times["atime"], hex_time(k_epoch)) << path;
    EXPECT_EQ(s.times["crtime"], hex_time(k_epoch)) << path;
  }
  EXPECT_EQ(stat_of(img, "/etc/hosts").times["mtime"], hex_time(k_old)); // older: kept
  EXPECT_EQ(stat_of(img, "/etc").times["mtime"], hex_time(k_old));
  EXPECT_EQ(stat_of(img, "/etc/fresh").times["mtime"], hex_time(k_epoch)); // newer: clamped
  EXPECT_EQ(stat_of(img, "/run").times["mtime"], hex_time(k_epoch)); // not in the tar
  // The superblock: made, written and checked at the epoch, never mounted.
  EXPECT_EQ(superblock_u32(img, 0x108), k_epoch); // s_mkfs_time
  EXPECT_EQ(superblock_u32(img, 0x30), k_epoch); // s_wtime
  EXPECT_EQ(superblock_u32(img, 0x40), k_epoch); // s_lastcheck
  EXPECT_EQ(superblock_u32(img, 0x2c), 0u); // s_mtime
}

// mke2fs's command line pins what it would otherwise pick, and its environment is its own.
TEST(Ext4Image, MkfsRunsPinned)
{
  struct Recording final : util::Runner {
    std::vector<std::vector<std::string>> calls;
    util::RunResult run(const std::vector<std::string>& argv, const util::RunOptions& options) override
    {
      calls.push_back(argv);
      return util::system_runner().run(argv, options);
    }
  } runner;
  test::ScratchDir dir;
  write_tar(dir / "t.tar", {file("a", "a")});
  make_ext4_from_tar(runner, dir / "t.tar", dir / "t.ext4", params());
  ASSERT_EQ(runner.calls.size(), 1u);
  const std::vector<std::string>& argv = runner.calls[0];
  auto has = [&](const std::string& arg) { return std::find(argv.begin(), argv.end(), arg) != argv.end(); };
  EXPECT_EQ(argv[0], "env");
  EXPECT_EQ(argv[1], "-i");
  EXPECT_TRUE(has("E2FSPROGS_FAKE_TIME=" + std::to_string(k_epoch)));
  EXPECT_TRUE(has("0b6a4f4e-8d2c-4a57-9c1e-3f5d2e7a9b10"));
  EXPECT_TRUE(has("hash_seed=5e3c1a2b-7d4f-4e6a-8b9c-0d1e2f3a4b5c,root_owner=0:0,lazy_itable_init=0,"
                  "lazy_journal_init=0,nodiscard"));
  EXPECT_TRUE(has(k_centos7_ext4_features));
  EXPECT_TRUE(has("16384")); // blocks
  auto config =
    std::find_if(argv.begin(), argv.end(), [](const std::string& a) { return a.rfind("MKE2FS_CONFIG=", 0) == 0; });
  ASSERT_NE(config, argv.end());
  EXPECT_EQ(config->find("/etc/"), std::string::npos) << *config;
  std::string features = debugfs(dir / "t.ext4", "stats");
  EXPECT_NE(features.find("has_journal ext_attr resize_inode dir_index filetype extent flex_bg sparse_super large_file "
                          "huge_file dir_nlink extra_isize"),
            std::string::npos)
    << features;
  EXPECT_EQ(features.find("metadata_csum"), std::string::npos);
  EXPECT_EQ(leftovers(dir.path()), std::vector<std::string>{"t.ext4"}); // no spool, no config left
}

// 6. A tree larger than the file system: an error, and no output (an old one kept).
TEST(Ext4Image, TooLargeTreeFailsAndLeavesNoOutput)
{
  test::ScratchDir dir;
  Ext4Params small = params(8 * k_mib); // about 3 MiB free once the journal is in
  // Content that passes the first check (under 8 MiB) but not libext2fs's allocation.
  write_tar(dir / "six.tar", {file("six", random_bytes(6 * k_mib, 3))});
  Error error =
    test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "six.tar", dir / "x.ext4", small); });
  EXPECT_NE(error.reason().find("does not fit in 8388608 bytes: member six:"), std::string::npos) << error.reason();
  EXPECT_FALSE(fs::exists(dir / "x.ext4"));
  // Content larger than the whole size: refused before mke2fs runs; an existing output kept.
  test::write_text(dir / "x.ext4", "old");
  write_tar(dir / "nine.tar", {file("nine", random_bytes(9 * k_mib, 4))});
  error = test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "nine.tar", dir / "x.ext4", small); });
  EXPECT_NE(error.reason().find("does not fit in 8388608 bytes"), std::string::npos) << error.reason();
  EXPECT_EQ(test::read_text(dir / "x.ext4"), "old");
  EXPECT_EQ(leftovers(dir.path()), std::vector<std::string>{"x.ext4"});
}

// 7. A member outside the image is refused.
TEST(Ext4Image, DotDotIsRefused)
{
  test::ScratchDir dir;
  write_tar(dir / "bad.tar", {directory("etc/"), file("etc/../../escape", "x")});
  Error error =
    test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "bad.tar", dir / "x.ext4", params()); });
  EXPECT_EQ(error.subject(), (dir / "bad.tar").string());
  EXPECT_NE(error.reason().find("\"..\""), std::string::npos) << error.reason();
  EXPECT_FALSE(fs::exists(dir / "x.ext4"));
  write_tar(dir / "link.tar", {file("a", "a"), link_member('h', "b", "../a")});
  EXPECT_THROW(make_ext4_from_tar(util::system_runner(), dir / "link.tar", dir / "x.ext4", params()), Error);
  EXPECT_EQ(normalise_path("./etc/x"), "etc/x");
  EXPECT_EQ(normalise_path("/etc//./x/"), "etc/x");
  EXPECT_EQ(normalise_path("./"), "");
}

// 8. A directory that outgrows its first blocks reads back complete.
TEST(Ext4Image, LargeDirectoryReadsBackComplete)
{
  test::ScratchDir dir;
  std::vector<TarMember> tree{directory("many/")};
  for (int i = 0; i < 3000; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "many/entry-with-a-longer-name-%04d", i);
    tree.push_back(file(name, i % 10 == 0 ? std::string(name) : std::string()));
  }
  Made made = make(dir, tree, params());
  std::string listing = debugfs(made.image, "ls -p /many");
  std::size_t entries = 0;
  for (const std::string& line : test::lines(listing)) {
    entries += line.find("/entry-with-a-longer-name-") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(entries, 3000u);
  EXPECT_GT(stat_of(made.image, "/many").size, 4096u * 20);
  EXPECT_EQ(debugfs(made.image, "cat /many/entry-with-a-longer-name-2990"), "many/entry-with-a-longer-name-2990");
  util::RunResult r = util::run({test::require_program("e2fsck", "e2fsprogs"), "-fn", made.image.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// Other geometries and the full 1.47.0 feature set (metadata_csum, 64bit, orphan_file).
TEST(Ext4Image, OtherGeometriesAndFeaturesAreFsckClean)
{
  test::ScratchDir dir;
  Ext4Params small = params();
  small.block_size = 1024;
  small.inode_size = 128; // no room for crtime or nanoseconds
  Ext4Params csum = params();
  csum.features = "metadata_csum,64bit";
  csum.inodes = 2048;
  for (const Ext4Params& p : {small, csum}) {
    std::string name = std::to_string(p.block_size) + "-" + std::to_string(p.inode_size);
    Made made = make(dir, rich_tree(), p, name);
    util::RunResult r = util::run({test::require_program("e2fsck", "e2fsprogs"), "-fn", made.image.string()});
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err;
    EXPECT_EQ(debugfs(made.image, "cat /etc/hosts"), "127.0.0.1 localhost\n") << name;
    EXPECT_EQ(xattr(dir, made.image, "/etc/blob", "user.blob"), std::string(900, 'b')) << name;
    EXPECT_NE(debugfs(made.image, "stat /etc/fresh").find("mtime: " + hex_time(k_epoch).substr(0, 10)),
              std::string::npos)
      << name;
  }
  std::string stats = debugfs(dir / "4096-256.ext4", "stats");
  EXPECT_NE(stats.find("metadata_csum"), std::string::npos);
  EXPECT_NE(stats.find("Inode count:              2048"), std::string::npos) << stats;
}

TEST(Ext4Image, LimitsAreEnforced)
{
  test::ScratchDir dir;
  write_tar(dir / "t.tar", {file("a", "a"), file("b", "b"), file("c", "c")});
  Ext4Params p = params();
  p.limits.max_entries = 2;
  Error error = test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "t.tar", dir / "x.ext4", p); });
  EXPECT_NE(error.reason().find("more than 2 members"), std::string::npos) << error.reason();
  p = params();
  p.limits.max_path = 10;
  write_tar(dir / "long.tar", {file("a/very/long/path", "x")});
  error = test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "long.tar", dir / "x.ext4", p); });
  EXPECT_NE(error.reason().find("longer than 10 bytes"), std::string::npos) << error.reason();
  TarMember big = file("x", "x");
  big.xattrs = {{"user.big", std::string(70'000, 'v')}};
  write_tar(dir / "xattr.tar", {big});
  error =
    test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "xattr.tar", dir / "x.ext4", params()); });
  EXPECT_NE(error.reason().find("extended attributes of more than 65536 bytes"), std::string::npos) << error.reason();
  write_tar(dir / "twice.tar", {file("a", "a"), file("./a", "b")});
  error =
    test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "twice.tar", dir / "x.ext4", params()); });
  EXPECT_NE(error.reason().find("appears twice"), std::string::npos) << error.reason();
  write_tar(dir / "parent.tar", {file("a", "a"), file("a/b", "b")});
  error =
    test::error_of([&] { make_ext4_from_tar(util::system_runner(), dir / "parent.tar", dir / "x.ext4", params()); });
  EXPECT_NE(error.reason().find("its parent a is not a directory"), std::string::npos) << error.reason();
  EXPECT_FALSE(fs::exists(dir / "x.ext4"));
}

TEST(Ext4Image, ParametersThatWouldNotBePinnedAreRefused)
{
  test::ScratchDir dir;
  write_tar(dir / "t.tar", {file("a", "a")});
  Ext4Params p = params();
  p.epoch = 0; // mke2fs would take the clock
  EXPECT_THROW(make_ext4_from_tar(util::system_runner(), dir / "t.tar", dir / "x.ext4", p), UsageError);
  p = params();
  p.uuid = "random";
  EXPECT_THROW(make_ext4_from_tar(util::system_runner(), dir / "t.tar", dir / "x.ext4", p), UsageError);
  p = params();
  p.size = 64 * k_mib + 1;
  EXPECT_THROW(make_ext4_from_tar(util::system_runner(), dir / "t.tar", dir / "x.ext4", p), UsageError);
  EXPECT_FALSE(fs::exists(dir / "x.ext4"));
}

TEST(Ext4Image, CanonicalOrderPutsDirectoriesBeforeTheirMembers)
{
  std::vector<std::string> paths{"a-b", "a/b", "a", "", "a/b/c", "a.b", "b"};
  std::sort(paths.begin(), paths.end(), path_before);
  EXPECT_EQ(paths, (std::vector<std::string>{"", "a", "a/b", "a/b/c", "a-b", "a.b", "b"}));
}

} // namespace
} // namespace kiln::fsimage
