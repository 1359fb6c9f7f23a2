#include "image/fsimage/ext4_image.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/fsimage/ext4_writer.hpp"
#include "image/fsimage/mke2fs.hpp"
#include "image/fsimage/tar_spool.hpp"

#include <cstdint>
#include <string_view>

namespace kiln::fsimage {

namespace fs = std::filesystem;

namespace {

bool
is_uuid(std::string_view text)
{
  if (text.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = text[i];
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (dash ? c != '-' : !hex) {
      return false;
    }
  }
  return true;
}

bool
is_power_of_two(std::uint64_t n)
{
  return n != 0 && (n & (n - 1)) == 0;
}

// Refuses what mke2fs would pick by itself (a random UUID, the clock) or cannot make.
void
check_params(const Ext4Params& p, const std::string& subject)
{
  auto refuse = [&](const std::string& reason) { throw UsageError(subject, "ext4 parameters: " + reason); };
  if (!is_power_of_two(p.block_size) || p.block_size < 1024 || p.block_size > 65536) {
    refuse("block size " + std::to_string(p.block_size) + " is not a power of two from 1024 to 65536");
  }
  if (!is_power_of_two(p.inode_size) || p.inode_size < 128 || p.inode_size > p.block_size) {
    refuse("inode size " + std::to_string(p.inode_size) + " is not a power of two from 128 to the block size");
  }
  if (p.size == 0 || p.size % p.block_size != 0) {
    refuse("size " + std::to_string(p.size) + " is not a positive multiple of the block size");
  }
  if (!is_uuid(p.uuid) || !is_uuid(p.hash_seed)) {
    refuse("the UUID and the hash seed must both be UUIDs (8-4-4-4-12 hex digits)");
  }
  if (p.epoch < 1 || p.epoch > INT32_MAX) {
    refuse("epoch " + std::to_string(p.epoch) + " is not from 1 to 2^31-1");
  }
  if (p.label.size() > 16) {
    refuse("label \"" + p.label + "\" is longer than 16 bytes");
  }
  if (p.features.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_^,") != std::string::npos) {
    refuse("features \"" + p.features + "\" are not a comma-separated list of names");
  }
}

} // namespace

Ext4Report
make_ext4_from_tar(util::Runner& runner, const fs::path& tar, const fs::path& out, const Ext4Params& params)
{
  const std::string subject = out.string();
  check_params(params, subject);
  // The spool and mke2fs's configuration, beside the output (its file system has the room).
  util::TempDir scratch(util::parent_dir(out), ".kiln-ext4");
  TarContent content = read_tar(tar, scratch.path(), params.block_size, params.limits);
  if (content.data_blocks * params.block_size > params.size) {
    throw Error(subject, "does not fit in " + std::to_string(params.size) + " bytes: the files' content alone takes " +
                           std::to_string(content.data_blocks * params.block_size));
  }
  util::AtomicFile image(out);
  make_empty_ext4(runner, params, image.temp_path(), scratch.path(), subject);
  Ext4Writer writer(image.temp_path(), params.epoch, subject);
  Ext4Report report;
  for (const Member& member : content.members) {
    writer.add(member, content.spool.get());
    report.implicit_dirs += member.implicit ? 1 : 0;
  }
  writer.finish();
  image.commit();
  report.entries = content.entries;
  report.bytes = content.bytes;
  report.skipped = content.skipped;
  return report;
}

} // namespace kiln::fsimage
