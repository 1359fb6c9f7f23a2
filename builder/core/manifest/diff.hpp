// What differs between two manifests, section by section: the fields that say what an
// image was made from and what it holds (kiln and libguestfs versions, recipe, stage keys,
// inputs, packages, files). The first half of `kiln diff`; the file trees are the other.
#pragma once

#include "core/manifest/manifest.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace kiln::manifest {

// One difference: `section` is "field", "stage", "input", "package" or "file"; `name` the
// field, stage, input (KIND SOURCE), package or file name; `a` and `b` the two sides
// (empty: that side has none).
struct Difference {
  std::string section;
  std::string name;
  std::string a;
  std::string b;
};

// In the order of the sections above; within one, by name. The SBOM is derived from the
// packages and files, so it is not compared on its own.
std::vector<Difference> diff_manifests(const Manifest& a, const Manifest& b);

nlohmann::json to_json(const Difference& d);

} // namespace kiln::manifest
