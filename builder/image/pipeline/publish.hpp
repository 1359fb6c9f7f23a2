// The end of a build: the final layer converted into every output format, the slot
// bundle (layout: ab), the manifest (and its signature), all written into a staging
// directory inside the output directory and moved into place, the manifest last.
// A failure before the moves leaves the output directory as it was. When the directory's
// stamp says it holds the outputs of the same final layer and options, untouched since,
// nothing is written (outputs_stamp.hpp; never with --no-cache).
#pragma once

#include "core/manifest/manifest.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/options.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::build {

struct OutputFile {
  std::string name; // file name in the output directory
  std::string role; // image, bmap, kernel, initramfs, ipxe, manifest
  std::string format;
  std::string sha256;
  std::uint64_t size = 0;
};

struct Published {
  std::vector<OutputFile> outputs;
  std::filesystem::path manifest;
  // The output directory already held exactly these outputs (outputs_stamp.hpp): nothing
  // was written.
  bool up_to_date = false;
};

// The manifest's recipe part, the same for the outputs' manifest and the slot bundle's:
// name, versions, recipe digest, inputs (kiln-node by its VERSION line and tree digest),
// every stage key of the resolved plan (the recipe's, dcos, finalize, ab), the packages.
manifest::Manifest manifest_base(const recipe::Recipe& recipe, const recipe::Plan& plan,
                                 const std::vector<manifest::Package>& packages, const std::string& name);

Published publish(const recipe::Recipe& recipe, const recipe::Plan& plan, const Built& final,
                  const BuildOptions& options);

} // namespace kiln::build
