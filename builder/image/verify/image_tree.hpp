// The file trees of disk images, read through libguestfs for `kiln diff`: every image
// read-only on ONE appliance launch, each one's operating system mounted as inspection
// finds it (or, for an image with no operating system, its lone file system: a slot's
// root file system image), written out as a tar and read back as an archive::Tree.
#pragma once

#include "core/archive/tree.hpp"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace kiln::verify {

struct ImageTreeOptions {
  std::filesystem::path scratch; // where the tars go for a moment (one at a time)
  std::function<void(const std::string&)> log; // appliance messages (-v)
};

// One tree per image, in order. Throws Error(image, reason) for an image whose tree
// cannot be told (no file system, several without an operating system, ...).
std::vector<archive::Tree> image_trees(const std::vector<std::filesystem::path>& images,
                                       const ImageTreeOptions& options);

} // namespace kiln::verify
