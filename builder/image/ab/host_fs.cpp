#include "image/ab/host_fs.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/fsimage/ext4_image.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

namespace kiln::ab {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t k_mib = 1ull << 20;

// Features CentOS 7 (kernel 3.10, xfsprogs 4.5, e2fsprogs 1.42.9, GRUB 2.02) handles.
constexpr const char* k_xfs_meta = "crc=1,finobt=0,reflink=0,rmapbt=0,bigtime=0,inobtcount=0";
constexpr const char* k_xfs_inode = "sparse=0,nrext64=0";
constexpr const char* k_ext4_features = fsimage::k_centos7_ext4_features;

} // namespace

void
run_tool(util::Runner& runner, const std::string& what, const std::vector<std::string>& argv,
         const util::RunOptions& options)
{
  util::RunResult r = runner.run(argv, options);
  if (!r.ok()) {
    throw Error("layout ab: " + what, argv.front() + " exit status " + std::to_string(r.exit_code) + ": " + r.tail(3));
  }
}

void
make_sparse_file(const fs::path& path, std::uint64_t size)
{
  util::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    throw Error(path.string(), "cannot create: " + errno_text(errno));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    throw Error(path.string(), "cannot size: " + errno_text(errno));
  }
  fd.close(path.string());
}

void
copy_sparse(const fs::path& from, const fs::path& to, std::uint64_t offset)
{
  util::Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  util::Fd out(::open(to.c_str(), O_WRONLY | O_CLOEXEC));
  if (!in || !out) {
    throw Error((in ? to : from).string(), "cannot open: " + errno_text(errno));
  }
  off_t end = ::lseek(in.get(), 0, SEEK_END);
  std::vector<char> buffer(4 * k_mib);
  off_t pos = 0;
  while (pos < end) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0 || data >= end) {
      break; // only a hole remains
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0 || hole > end) {
      hole = end;
    }
    for (off_t p = data; p < hole;) {
      size_t want = static_cast<size_t>(std::min<off_t>(hole - p, static_cast<off_t>(buffer.size())));
      std::size_t n = util::pread_full(in.get(), buffer.data(), want, static_cast<std::uint64_t>(p), from.string());
      if (n == 0) {
        throw Error(from.string(), "read failed: unexpected end");
      }
      util::pwrite_full(out.get(), buffer.data(), n, static_cast<off_t>(offset) + p, to.string());
      p += static_cast<off_t>(n);
    }
    pos = hole;
  }
  out.close(to.string());
}

void
replace_range(const fs::path& from, const fs::path& to, std::uint64_t offset, std::uint64_t size)
{
  {
    util::Fd out(::open(to.c_str(), O_WRONLY | O_CLOEXEC));
    if (!out) {
      throw Error(to.string(), "cannot open: " + errno_text(errno));
    }
    if (::fallocate(out.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(size)) != 0) {
      throw Error(to.string(), "cannot clear " + std::to_string(size) + " bytes at " + std::to_string(offset) + ": " +
                                 errno_text(errno));
    }
    out.close(to.string());
  }
  copy_sparse(from, to, offset);
}

std::vector<std::string>
mkfs_argv(const std::string& type, const fs::path& file, std::uint64_t size, const std::string& label,
          const std::string& uuid)
{
  if (type == "xfs") {
    return {
      "mkfs.xfs", "-q",        "-f", "-L",      label,        "-m", std::string("uuid=") + uuid + "," + k_xfs_meta,
      "-i",       k_xfs_inode, "-n", "ftype=1", file.string()};
  }
  if (type == "ext4") {
    return {"mkfs.ext4",     "-q",         "-F", "-T", "default",           "-L",
            label,           "-U",         uuid, "-E", "hash_seed=" + uuid, "-O",
            k_ext4_features, file.string()};
  }
  if (type == "vfat") {
    std::vector<std::string> argv{"mkfs.vfat"};
    if (size >= 64 * k_mib) {
      argv.insert(argv.end(), {"-F", "32"});
    }
    argv.insert(argv.end(), {"-n", label, "-i", uuid.substr(0, 8), file.string()});
    return argv;
  }
  throw Error("layout ab", "unknown file system " + type);
}

void
make_fs(util::Runner& runner, const std::string& type, const fs::path& file, std::uint64_t size,
        const std::string& label, const std::string& uuid)
{
  std::vector<std::string> argv = mkfs_argv(type, file, size, label, uuid);
  make_sparse_file(file, size);
  run_tool(runner, argv.front() + " " + label, argv);
}

void
partition(util::Runner& runner, const fs::path& disk, const Layout& layout)
{
  util::RunOptions o;
  o.stdin_data = sfdisk_script(layout);
  run_tool(runner, "partition table", {"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk.string()}, o);
}

} // namespace kiln::ab
