#include "core/node/identity.hpp"

#include "core/node/disk.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kiln::node {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_grub_cfg_limit = 1u << 20;

// kiln-boot's grub.cfg, read without following a symlink and bounded in size.
std::string
read_grub_cfg(const fs::path& path)
{
  util::Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    throw Error(path.string(), "cannot open: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > k_grub_cfg_limit) {
    throw Error(path.string(), "not a regular file of at most 1 MiB: not kiln's grub.cfg");
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n <= 0) {
      throw Error(path.string(), n == 0 ? "shorter than its size" : "cannot read: " + errno_text(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return text;
}

} // namespace

slots::Guid
random_bytes16()
{
  // /dev/urandom, not OpenSSL's RAND_bytes: under CentOS 7's kernel (no getrandom(2))
  // OpenSSL 3's seeding fails, as integration.el7.* showed. /dev/urandom is on 3.10.
  util::Fd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!fd) {
    throw Error("/dev/urandom", "cannot open: " + errno_text(errno));
  }
  slots::Guid g{};
  std::size_t done = 0;
  while (done < g.size()) {
    ssize_t n = ::read(fd.get(), g.data() + done, g.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      throw Error("/dev/urandom", n == 0 ? "ended early" : "cannot read: " + errno_text(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return g;
}

std::string
rewrite_grub_cfg(const std::string& text, const std::vector<slots::GuidChange>& changes, const std::string& subject)
{
  std::string out = text;
  for (const auto& c : changes) {
    const bool slot = c.label == slots::k_part_a || c.label == slots::k_part_b;
    std::size_t count = 0;
    for (std::size_t at = out.find(c.old_guid); at != std::string::npos; at = out.find(c.old_guid, at)) {
      out.replace(at, c.old_guid.size(), c.new_guid);
      at += c.new_guid.size();
      ++count;
    }
    if (slot && count == 0) {
      throw Error(subject, "does not name " + c.label + " by its PARTUUID " + c.old_guid +
                             ": not the grub.cfg kiln wrote for this image; refusing to change the disk's GUIDs");
    }
  }
  return out;
}

IdentityReport
give_own_guids(const fs::path& disk, const std::function<slots::Guid()>& draw)
{
  const std::string subject = disk.string();
  slots::Gpt gpt = slots::read_ab_gpt(disk);
  slots::GuidPlan plan;
  {
    util::Fd fd = util::open_file(disk, O_RDONLY | O_CLOEXEC);
    plan = slots::plan_new_guids(slots::read_primary_table(fd.get(), gpt.sector_size, subject), draw);
  }
  // grub.cfg first, checked before anything is written: a disk whose grub.cfg does not
  // name its slots keeps the image's GUIDs.
  {
    BootFs boot(gpt, false, true);
    const fs::path cfg = boot.root() / std::string(slots::k_grubcfg_path).substr(1);
    std::string text = rewrite_grub_cfg(read_grub_cfg(cfg), plan.partitions, cfg.string());
    util::write_file_atomic(cfg, text);
  }
  {
    util::Fd fd = util::open_file(disk, O_RDWR | O_CLOEXEC);
    slots::write_gpt_growth(fd.get(), plan.rewrite, subject);
  }
  IdentityReport r;
  r.disk_guid = plan.new_disk_guid;
  for (const auto& c : plan.partitions) {
    r.partitions[c.label] = c.new_guid;
  }
  return r;
}

} // namespace kiln::node
