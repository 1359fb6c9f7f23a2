// Output formats, written from the final qcow2 layer with qemu-img and kiln's own
// bmap writer: qcow2 (optionally compressed), raw + bmap 2.0, vmdk (streamOptimized),
// vhd (fixed, virtual size aligned to 1 MiB as Azure requires), and pxe (the image's
// kernel and initramfs plus an iPXE script). Files are written under a staging
// directory; the caller publishes them by rename. qemu-img runs through a util::Runner
// (the pipeline passes the system's; unit tests a fake that records the command lines).
#pragma once

#include "core/recipe/model.hpp"
#include "core/util/runner.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::formats {

struct Written {
  std::string name; // file name
  std::string role; // image, bmap, kernel, initramfs, ipxe
  std::string format; // qcow2, raw, bmap, vmdk, vhd, pxe
};

struct Source {
  std::filesystem::path image; // final layer (qcow2, may have a backing chain)
  std::filesystem::path kernel; // empty when the image has none
  std::filesystem::path initramfs;
  std::string kernel_cmdline; // extra arguments for the PXE boot
  // pxe of an A/B image (layout "ab") is the installer (pxe_installer.hpp), which trusts
  // the recipe's trust: keys when it verifies the image.
  recipe::Layout layout = recipe::Layout::plain;
  std::vector<std::filesystem::path> trust_keys;
  std::optional<std::filesystem::path> revoked;
  std::filesystem::path node_artifact; // layout "ab": the kiln-node artifact the image carries
};

// Writes `format` for `stem` into `dir`; returns the files written (relative names).
// Throws Error naming the format on failure ("output FORMAT: qemu-img convert failed: ...").
std::vector<Written> write_format(util::Runner& runner, recipe::OutputFormat format, const Source& source,
                                  const std::string& stem, const std::filesystem::path& dir, bool compress);

} // namespace kiln::formats
