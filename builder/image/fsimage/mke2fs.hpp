// The empty file system that the tar's members are written into: mke2fs with every input
// that could vary pinned. The UUID, the directory hash seed, the times
// (E2FSPROGS_FAKE_TIME), the geometry, the features, lazy initialisation (off: every
// inode table and the journal written), the root owner, and mke2fs's configuration: a
// file kiln writes (mke2fs_config), so the host's /etc/mke2fs.conf cannot change the
// result. mke2fs runs under `env -i`, so no other variable it reads (MKE2FS_DEVICE_SECTSIZE,
// MKE2FS_FIRST_META_BG, ...) can either.
#pragma once

#include "core/util/runner.hpp"
#include "image/fsimage/ext4_image.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::fsimage {

// kiln's mke2fs.conf: e2fsprogs 1.47.0's built-in defaults, "ext4" and the "default" usage type.
std::string mke2fs_config();

// The command line (`env -i PATH=... E2FSPROGS_FAKE_TIME=... MKE2FS_CONFIG=config mke2fs ...`)
// that makes the file system of `params` in `image`.
std::vector<std::string> mke2fs_argv(const Ext4Params& params, const std::filesystem::path& image,
                                     const std::filesystem::path& config);

// Writes the configuration into `scratch`, makes `image` a fresh sparse file of
// params.size bytes and runs mke2fs on it through `runner`. Throws Error(subject, ...).
void make_empty_ext4(util::Runner& runner, const Ext4Params& params, const std::filesystem::path& image,
                     const std::filesystem::path& scratch, const std::string& subject);

} // namespace kiln::fsimage
