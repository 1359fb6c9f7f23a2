// qemu-img, the one program that makes, converts and describes every image file kiln
// writes, run through a util::Runner (the pipeline passes the system's; unit tests a
// fake that records the command lines). One place builds its command lines and turns a
// failure into one line naming the subject.
#pragma once

#include "core/util/runner.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kiln::formats {

// `qemu-img ARGS...`; throws Error(subject, "qemu-img SUBCOMMAND failed: LAST LINES").
void qemu_img(util::Runner& runner, const std::string& subject, const std::vector<std::string>& args);

// A new qcow2 file of `size` bytes, empty.
void create_qcow2(util::Runner& runner, const std::string& subject, const std::filesystem::path& path,
                  std::uint64_t size);

// A qcow2 overlay at `path` on top of `backing` (recorded by its absolute path) in
// `backing_format`; `size` 0 keeps the backing file's virtual size.
void create_overlay(util::Runner& runner, const std::string& subject, const std::filesystem::path& backing,
                    const std::string& backing_format, const std::filesystem::path& path, std::uint64_t size = 0);

struct ImageInfo {
  std::string format; // qcow2, raw, vmdk, vpc, ...
  std::uint64_t virtual_size = 0;
};

// `qemu-img info` of an image; throws Error(image, ...) when it cannot be read.
ImageInfo image_info(util::Runner& runner, const std::filesystem::path& image);

} // namespace kiln::formats
