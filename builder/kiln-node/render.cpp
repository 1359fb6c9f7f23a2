#include "kiln-node/render.hpp"

#include "core/util/term.hpp"

#include <ostream>

namespace kiln::node_cli {

using nlohmann::json;

std::string
describe_slot(const json& s)
{
  std::string text = s["state"].get<std::string>();
  if (text == "trial") {
    text += " (tries " + s["tries"].get<std::string>() + ")";
  }
  if (!s["name"].get<std::string>().empty()) {
    text += "  " + s["name"].get<std::string>();
  }
  if (!s["digest"].get<std::string>().empty()) {
    text += "  manifest " + s["digest"].get<std::string>().substr(0, 16);
  }
  return text;
}

std::string
describe_next(const json& n)
{
  std::string reason = n["reason"].get<std::string>();
  std::string text = n["slot"].get<std::string>() + " (";
  if (reason == "trial") {
    text += "trial, tries left after this boot: " + n["tries_after"].get<std::string>();
  } else if (reason == "last-resort") {
    text += "last resort: no slot is good or has tries left";
  } else if (reason == "empty") {
    text += "every slot is empty";
  } else {
    text += reason;
  }
  return text + ")";
}

void
render_status(std::ostream& out, const json& j)
{
  if (j["in_progress"].get<bool>()) {
    out << "in progress: another kiln-node holds the disk (a reimage writing a slot); the state below "
           "is the grubenv as it is now\n";
  }
  out << "disk:      " << j["disk"].get<std::string>() << "\n"
      << "slot A:    " << describe_slot(j["slots"]["A"]) << "\n"
      << "slot B:    " << describe_slot(j["slots"]["B"]) << "\n"
      << "booted:    "
      << (j["booted"].is_null() ? "none (not the running system's disk)" : j["booted"].get<std::string>()) << "\n"
      << "next boot: " << describe_next(j["next_boot"]) << "\n"
      << "dcos:      "
      << (j["dcos"]["failed"].get<bool>()      ? "first-boot install FAILED"
          : j["dcos"]["installed"].get<bool>() ? "installed"
                                               : "not installed")
      << "\n";
}

void
render_reimage(std::ostream& out, const json& j)
{
  out << "slot " << j["slot"].get<std::string>() << ": wrote " << j["name"].get<std::string>() << " ("
      << util::human_bytes(j["written_bytes"].get<std::uint64_t>()) << " written, "
      << util::human_bytes(j["skipped_bytes"].get<std::uint64_t>()) << " already there), verified; "
      << "next boot: " << describe_next(j["next_boot"]) << "\n";
}

void
render_rollback(std::ostream& out, const json& j)
{
  out << "next boot: " << describe_next(j["next_boot"]) << "\n";
}

void
render_mark_good(std::ostream& out, const json& j)
{
  out << "slot " << j["slot"].get<std::string>() << " is good\n";
}

void
render_wipe(std::ostream& out, const json& j)
{
  for (const auto& p : j["removed"]) {
    out << "removed " << p.get<std::string>() << "\n";
  }
  for (const auto& p : j["mount_points_skipped"]) {
    out << "left alone (mount point) " << p.get<std::string>() << "\n";
  }
  for (const auto& p : j["symlinks_not_followed"]) {
    out << "left alone (symlink, not followed) " << p.get<std::string>() << "\n";
  }
  for (const auto& p : j["volumes_kept"]) {
    out << "kept (DC/OS volume; --volumes wipe empties it) " << p.get<std::string>() << "\n";
  }
}

void
render_grow_data(std::ostream& out, const json& j)
{
  if (!j["changed"].get<bool>()) {
    out << "kiln-data already fills " << j["disk"].get<std::string>() << ": nothing to do\n";
    return;
  }
  out << "kiln-data (" << j["device"].get<std::string>() << "): partition "
      << (j["partition"]["changed"].get<bool>()
            ? "grown by " + util::human_bytes(j["partition"]["added_bytes"].get<std::uint64_t>())
            : std::string("unchanged"))
      << ", " << j["filesystem"]["type"].get<std::string>() << " file system now "
      << util::human_bytes(j["filesystem"]["size"].get<std::uint64_t>()) << "\n";
}

void
render_install(std::ostream& out, const json& j)
{
  out << "installed " << j["name"].get<std::string>() << " on " << j["disk"].get<std::string>() << " ("
      << util::human_bytes(j["written_bytes"].get<std::uint64_t>()) << " written), verified\n";
}

} // namespace kiln::node_cli
