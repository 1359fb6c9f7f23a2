// The step kinds of a recipe, in ONE table: each entry names a kind (its recipe key) and
// says how its body is read (schema: every problem reported, FILE:LINE:COL), how
// `kiln plan` describes it (its canonical JSON, part of the stage key) and which local
// files it reads (hashed into the stage key). step_kinds() lists the table's names, so
// adding a step kind is one StepSpec alternative (model.hpp) and one entry in steps.cpp
// (and its run in image/steps).
#pragma once

#include "core/recipe/loader.hpp"
#include "core/recipe/model.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::recipe {

// A local file or directory a step reads.
struct StepSource {
  std::string kind; // the plan input's kind (overlay, package); empty: the step's own kind
  std::string path; // absolute, on the build host
  bool tree = false; // a directory, hashed as a tree
};

struct StepKind {
  std::string name; // the recipe key: file, overlay, edit, ...
  std::size_t index = 0; // the StepSpec alternative the body is read into
  // Reads the body given under the key; problems go to diags (nullopt: nothing usable).
  std::function<std::optional<StepSpec>(const Value& body, const LoadOptions& options, Diagnostics& diags)> parse;
  // The canonical JSON of a body of this kind (host paths by file name only: the
  // checkout may move; the inputs' digests are keyed instead).
  std::function<nlohmann::json(const StepSpec& spec)> describe;
  // The local inputs of a body of this kind, in order.
  std::function<std::vector<StepSource>(const StepSpec& spec)> sources;
};

// Every step kind, in documentation order (the order of StepSpec's alternatives).
const std::vector<StepKind>& step_table();
// The entry of the kind named `name`, or nullptr.
const StepKind* find_step_kind(const std::string& name);
// The entry that reads into spec's alternative.
const StepKind& step_kind_of(const StepSpec& spec);

namespace detail {

// One item of a stage's `steps:`: a mapping with one key, the step kind, whose body the
// table's entry reads. nullopt when the item or its body was reported.
std::optional<Step> read_step(const Value& item, const LoadOptions& options, Diagnostics& diags);

} // namespace detail

} // namespace kiln::recipe
