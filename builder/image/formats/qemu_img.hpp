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

// A byte range of a disk image (a partition): `size` bytes at `offset` of `disk`, a file
// in qemu's `format` (raw, qcow2, ...).
struct DiskSpan {
  std::filesystem::path disk;
  std::string format;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

// The span's bytes as a new sparse raw file `out`. -U: an appliance may still have the
// disk open (its file systems unmounted and flushed).
void read_span(util::Runner& runner, const std::string& subject, const DiskSpan& span,
               const std::filesystem::path& out);

// `raw` (exactly span.size bytes) written over the span; its holes become zeros
// (qcow2: zero clusters). Nothing may have the disk open.
void write_span(util::Runner& runner, const std::string& subject, const std::filesystem::path& raw,
                const DiskSpan& span);

struct ImageInfo {
  std::string format; // qcow2, raw, vmdk, vpc, ...
  std::uint64_t virtual_size = 0;
};

// `qemu-img info` of an image; throws Error(image, ...) when it cannot be read.
ImageInfo image_info(util::Runner& runner, const std::filesystem::path& image);

} // namespace kiln::formats
