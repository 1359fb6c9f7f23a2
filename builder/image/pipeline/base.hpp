// The image a build starts from, as a file a qcow2 overlay can be backed by:
//   url   a blob fetched into the cache (pinned digest, mirrors)
//   path  an image file copied into the cache (layers never back onto a user's file),
//         or a root filesystem tar made into a disk
//   bootstrap  mmdebstrap's tar (cached by the base key) made into a disk
// A disk made from a tar is a layer of its own (base key), made once even when builds
// of several recipes on the same base run side by side.
#pragma once

#include "core/fetch/cache.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/options.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::build {

struct BaseLayer {
  std::filesystem::path image;
  std::string format = "qcow2";
  int launches = 0; // appliance launches it took (a disk made from a tar: one)
  std::optional<GuestFacts> guest; // known for a disk kiln made (inspected at once), else unset
};

BaseLayer resolve_base(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache,
                       const LayerStore& layers, const BuildOptions& options);

// mmdebstrap's command line for a bootstrap base, writing its tar to `out`.
std::vector<std::string> mmdebstrap_argv(const recipe::BaseImage& base, const std::filesystem::path& out);

// The bootstrap base's root file system tar, made once per base key into the cache
// (under a lock: builds of several recipes on one base make it once); the cached tar
// when it is there. Throws Error("mmdebstrap SUITE", ...) with mmdebstrap's last lines,
// leaving nothing behind.
std::filesystem::path bootstrap_tar(const recipe::BaseImage& base, const std::string& key, fetch::Cache& cache,
                                    const BuildOptions& options);

} // namespace kiln::build
