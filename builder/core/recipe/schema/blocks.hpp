// The recipe's optional blocks: `ab:` (the A/B whole-disk layout), `trust:` (the keys an
// image trusts, installed by an implicit last stage) and `dcos:` (the DC/OS bundle and
// role), with the check that ties dcos: to ab:.
#pragma once

#include "core/recipe/model.hpp"

#include <optional>

namespace kiln::recipe::detail {

// `ab:` into recipe.ab (needs recipe.layout read first).
void read_ab(const Value& v, Recipe& recipe, Diagnostics& diags);
std::optional<TrustSpec> read_trust(const Value& v, Diagnostics& diags);
// The implicit stage "trust" that installs recipe.trust's keys, after every other stage.
void add_trust_stage(Recipe& recipe, Diagnostics& diags);
DcosSpec read_dcos(const Value& v, Diagnostics& diags);
// A DC/OS agent's kiln-data that is never grown must already hold what DC/OS wants.
void check_agent_data(const Value& doc, const Recipe& recipe, Diagnostics& diags);

} // namespace kiln::recipe::detail
