// kiln-node's text output: the reports of core/node (report.hpp) rendered for a person.
#pragma once

#include "core/node/report.hpp"

#include <iosfwd>
#include <string>

namespace kiln::node_cli {

// "trial (tries 2)  NAME  manifest 0123456789abcdef"
std::string describe_slot(const node::SlotReport& slot);
// "B (trial, tries left after this boot: 2)"
std::string describe_next(const node::NextBoot& next_boot);

void render_status(std::ostream& out, const node::StatusReport& r);
void render_reimage(std::ostream& out, const node::ReimageReport& r);
void render_rollback(std::ostream& out, const node::RollbackReport& r);
void render_mark_good(std::ostream& out, const node::MarkGoodReport& r);
void render_wipe(std::ostream& out, const node::WipeReport& r);
void render_grow_data(std::ostream& out, const node::GrowDataReport& r);
void render_install(std::ostream& out, const node::InstallReport& r);

} // namespace kiln::node_cli
