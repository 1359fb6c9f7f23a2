// `base:` of a recipe: exactly one of url (pinned by sha256, with mirrors), bootstrap
// (mmdebstrap) or path (a local image).
#pragma once

#include "core/recipe/loader.hpp"
#include "core/recipe/model.hpp"

namespace kiln::recipe::detail {

BaseImage read_base(const Value& v, const LoadOptions& options, Diagnostics& diags);

} // namespace kiln::recipe::detail
