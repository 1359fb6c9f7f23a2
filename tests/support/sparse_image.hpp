// A small sparse image and a minimal valid manifest for it: what the bundle and
// verified-source unit tests write slot bundles and whole-disk images from.
#pragma once

#include "core/bmap/bmap.hpp"
#include "core/manifest/manifest.hpp"

#include <filesystem>
#include <string>

namespace kiln::test {

// DIR/rootfs.img: sparse, 8 MiB less one byte, with random data in three places (the
// last one not block-aligned at the end).
std::filesystem::path sparse_image(const std::filesystem::path& dir);

// The mapped bytes of `image` in bmap order (a slot bundle's rootfs.data).
std::string packed(const std::filesystem::path& image, const bmap::Bmap& map);

// A manifest that validates (name, recipe name and digest, one package); files empty.
manifest::Manifest small_manifest(const std::string& name);

} // namespace kiln::test
