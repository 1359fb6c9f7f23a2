// kiln-node's text output: the JSON results of core/node rendered for a person.
#pragma once

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <string>

namespace kiln::node_cli {

// "trial (tries 2)  NAME  manifest 0123456789abcdef"
std::string describe_slot(const nlohmann::json& slot);
// "B (trial, tries left after this boot: 2)"
std::string describe_next(const nlohmann::json& next_boot);

void render_status(std::ostream& out, const nlohmann::json& j);
void render_reimage(std::ostream& out, const nlohmann::json& j);
void render_rollback(std::ostream& out, const nlohmann::json& j);
void render_mark_good(std::ostream& out, const nlohmann::json& j);
void render_wipe(std::ostream& out, const nlohmann::json& j);
void render_grow_data(std::ostream& out, const nlohmann::json& j);
void render_install(std::ostream& out, const nlohmann::json& j);

} // namespace kiln::node_cli
