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

namespace kiln::build {

struct BaseLayer {
  std::filesystem::path image;
  std::string format = "qcow2";
  int launches = 0; // appliance launches it took (a disk made from a tar: one)
};

BaseLayer resolve_base(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache,
                       const LayerStore& layers, const BuildOptions& options);

// `qemu-img ARGS...`; throws Error naming the subcommand with qemu-img's last lines.
void qemu_img(const std::vector<std::string>& args);

} // namespace kiln::build
