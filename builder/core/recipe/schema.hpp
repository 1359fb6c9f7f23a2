// The recipe schema: turns a resolved document into the typed Recipe, reporting
// unknown keys (with a suggestion), wrong types, missing fields and bad values.
// Its parts live in schema/: reader (MapReader, sizes, suggestions), steps (the table of
// step kinds: parse, plan description, local inputs), base, blocks (ab, trust, dcos) and
// build_model (the recipe's own keys, outputs and stages).
#pragma once

#include "core/recipe/loader.hpp"
#include "core/recipe/model.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace kiln::recipe {

Recipe build_model(const Value& doc, const LoadOptions& options, Diagnostics& diags);

// "4G", "512MiB", "10 GB", "1048576" → bytes (binary units: K, M, G, T = 1024^n).
std::optional<std::uint64_t> parse_size(const std::string& text);

} // namespace kiln::recipe
