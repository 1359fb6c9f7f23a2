#include "kiln-node/render.hpp"

#include "core/util/term.hpp"

#include <ostream>

namespace kiln::node_cli {

std::string
describe_slot(const node::SlotReport& s)
{
  std::string text = s.state;
  if (text == "trial") {
    text += " (tries " + s.tries + ")";
  }
  if (!s.name.empty()) {
    text += "  " + s.name;
  }
  if (!s.digest.empty()) {
    text += "  manifest " + s.digest.substr(0, 16);
  }
  return text;
}

std::string
describe_next(const node::NextBoot& n)
{
  std::string text = std::string(1, n.slot) + " (";
  switch (n.reason) {
    case slots::BootReason::trial:
      text += "trial, tries left after this boot: " + n.tries_after;
      break;
    case slots::BootReason::last_resort:
      text += "last resort: no slot is good or has tries left";
      break;
    case slots::BootReason::empty:
      text += "every slot is empty";
      break;
    case slots::BootReason::good:
      text += slots::to_string(n.reason);
      break;
  }
  return text + ")";
}

void
render_status(std::ostream& out, const node::StatusReport& r)
{
  if (r.in_progress) {
    out << "in progress: another kiln-node holds the disk (a reimage writing a slot); the state below "
           "is the grubenv as it is now\n";
  }
  out << "disk:      " << r.disk << "\n"
      << "slot A:    " << describe_slot(r.a) << "\n"
      << "slot B:    " << describe_slot(r.b) << "\n"
      << "booted:    " << (r.booted ? std::string(1, *r.booted) : "none (not the running system's disk)") << "\n"
      << "next boot: " << describe_next(r.next_boot) << "\n"
      << "dcos:      "
      << (r.dcos.failed      ? "first-boot install FAILED"
          : r.dcos.installed ? "installed"
                             : "not installed")
      << "\n";
}

void
render_reimage(std::ostream& out, const node::ReimageReport& r)
{
  out << "slot " << r.slot << ": wrote " << r.name << " (" << util::human_bytes(r.write.written_bytes) << " written, "
      << util::human_bytes(r.write.skipped_bytes) << " already there"
      << (r.write.mode == node::WriteMode::resume ? ", resumed" : "") << "), verified; "
      << "next boot: " << describe_next(r.next_boot) << "\n";
}

void
render_rollback(std::ostream& out, const node::RollbackReport& r)
{
  out << "next boot: " << describe_next(r.next_boot) << "\n";
}

void
render_mark_good(std::ostream& out, const node::MarkGoodReport& r)
{
  out << "slot " << r.slot << " is good\n";
}

void
render_wipe(std::ostream& out, const node::WipeReport& r)
{
  for (const auto& p : r.removed) {
    out << "removed " << p << "\n";
  }
  for (const auto& p : r.mount_points_skipped) {
    out << "left alone (mount point) " << p << "\n";
  }
  for (const auto& p : r.symlinks_not_followed) {
    out << "left alone (symlink, not followed) " << p << "\n";
  }
  for (const auto& p : r.volumes_kept) {
    out << "kept (DC/OS volume; --volumes wipe empties it) " << p << "\n";
  }
}

void
render_grow_data(std::ostream& out, const node::GrowDataReport& r)
{
  if (!r.changed) {
    out << "kiln-data already fills " << r.disk << ": nothing to do\n";
    return;
  }
  out << "kiln-data (" << r.device << "): partition "
      << (r.partition.changed ? "grown by " + util::human_bytes(r.partition.added_bytes) : std::string("unchanged"))
      << ", " << r.filesystem.type << " file system now " << util::human_bytes(r.filesystem.size) << "\n";
}

void
render_install(std::ostream& out, const node::InstallReport& r)
{
  out << "installed " << r.name << " on " << r.disk << " (" << util::human_bytes(r.write.written_bytes)
      << " written), verified\n";
}

} // namespace kiln::node_cli
