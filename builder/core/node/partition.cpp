#include "core/node/partition.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"

#include <cstdlib>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace kiln::node {

fs::path
partition_node(const fs::path& disk, unsigned number)
{
  std::error_code ec;
  struct stat st {};
  if (::stat(disk.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return {};
  }
  fs::path sys =
    fs::path("/sys/dev/block") / (std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)));
  for (fs::directory_iterator it(sys, ec), end; !ec && it != end; it.increment(ec)) {
    fs::path partition_file = it->path() / "partition";
    if (!fs::exists(partition_file, ec)) {
      continue;
    }
    std::string text;
    try {
      text = util::read_file(partition_file);
    } catch (const Error&) {
      continue;
    }
    if (std::strtoul(text.c_str(), nullptr, 10) == number) {
      fs::path node = fs::path("/dev") / it->path().filename();
      if (fs::exists(node, ec)) {
        return node;
      }
    }
  }
  return {};
}

PartitionMount::PartitionMount(const slots::Gpt& gpt, const slots::Partition& part, const std::string& options)
  : m_dir(fs::temp_directory_path(), "kiln-node-" + part.label)
{
  std::string all = options;
  fs::path source = partition_node(gpt.disk, part.number);
  if (source.empty()) {
    source = gpt.disk;
    all += ",loop,offset=" + std::to_string(part.offset) + ",sizelimit=" + std::to_string(part.size);
  }
  util::RunResult r = util::run({"mount", "-o", all, source.string(), m_dir.path().string()});
  if (!r.ok()) {
    throw Error(gpt.disk.string(), "cannot mount the " + part.label + " partition: " + r.tail(2));
  }
}

PartitionMount::~PartitionMount()
{
  bool unmounted = false;
  try {
    unmounted = util::run({"umount", m_dir.path().string()}).ok();
  } catch (...) {
    // Nothing may escape a destructor.
  }
  if (!unmounted) {
    m_dir.keep(); // a mount left under /tmp; never remove what is still mounted there
  }
}

} // namespace kiln::node
