// The JSON form of kiln-node's reports (report_json.hpp).
#include "core/node/report_json.hpp"

#include "core/node/command_common.hpp"

#include "core/slots/abi.hpp"

namespace kiln::node {

using json = nlohmann::json;

namespace {

json
text_or_null(const std::optional<std::string>& text)
{
  return text ? json(*text) : json(nullptr);
}

// The write's byte counts, into the command's own object.
void
add_write(json& j, const WriteReport& w)
{
  j["image_size"] = w.image_size;
  j["mapped_bytes"] = w.mapped_bytes;
  j["written_bytes"] = w.written_bytes;
  j["skipped_bytes"] = w.skipped_bytes;
  j["write_mode"] = write_mode_name(w.mode);
  // How the read-back reached the device: "direct" (O_DIRECT) or "uncached" (its cached
  // pages dropped first, where O_DIRECT is refused).
  j["read_back"] = w.direct_read_back ? "direct" : "uncached";
  j["zeroed_bytes"] = w.zeroed_bytes;
}

// A signer's key id; null when the signature was not verified.
json
key_id(const std::string& id)
{
  return id.empty() ? json(nullptr) : json(id);
}

} // namespace

void
to_json(json& j, const SlotReport& r)
{
  j = {{"state", r.state}, {"tries", r.tries}, {"digest", r.digest}, {"name", r.name}, {"partuuid", r.partuuid}};
}

void
to_json(json& j, const NextBoot& r)
{
  j = {{"slot", detail::slot_str(r.slot)}, {"reason", std::string(slots::to_string(r.reason))}};
  if (!r.tries_after.empty()) {
    j["tries_after"] = r.tries_after;
  }
}

void
to_json(json& j, const StatusReport& r)
{
  j = {{"disk", r.disk},
       {"in_progress", r.in_progress},
       {"booted", r.booted ? json(detail::slot_str(*r.booted)) : json(nullptr)},
       {"order", r.order},
       {"slots", {{"A", r.a}, {"B", r.b}}},
       {"next_boot", r.next_boot},
       {"highest_version", r.highest_version},
       {"dcos",
        {{"installed", r.dcos.installed},
         {"failed", r.dcos.failed},
         {"role", text_or_null(r.dcos.role)},
         {"stamp", std::string(slots::k_dcos_stamp)},
         {"failed_marker", std::string(slots::k_dcos_failed)}}}};
}

void
to_json(json& j, const ReimageReport& r)
{
  j = {{"slot", detail::slot_str(r.slot)},
       {"partition", r.partition},
       {"name", r.name},
       {"version", r.version},
       {"highest_version", r.highest_version},
       {"digest", r.digest},
       {"key_id", key_id(r.key_id)},
       {"tries", r.tries},
       {"resumes", r.resumes},
       {"next_boot", r.next_boot}};
  add_write(j, r.write);
}

void
to_json(json& j, const RollbackReport& r)
{
  j = {{"from", detail::slot_str(r.from)}, {"to", detail::slot_str(r.to)}, {"next_boot", r.next_boot}};
  if (!r.warning.empty()) {
    j["warning"] = r.warning;
  }
}

void
to_json(json& j, const MarkGoodReport& r)
{
  j = {{"slot", detail::slot_str(r.slot)}, {"state", "good"}, {"next_boot", r.next_boot}};
}

void
to_json(json& j, const PartitionGrowth& r)
{
  j = {{"changed", r.changed},         {"partition", r.partition},     {"old_end_lba", r.old_end_lba},
       {"new_end_lba", r.new_end_lba}, {"added_bytes", r.added_bytes}, {"backup_lba", r.backup_lba}};
}

void
to_json(json& j, const IdentityReport& r)
{
  j = {{"disk_guid", r.disk_guid}, {"partitions", json(r.partitions)}};
}

void
to_json(json& j, const InstallReport& r)
{
  j = {{"disk", r.disk},
       {"name", r.name},
       {"data_partition", r.data_partition ? json(*r.data_partition) : json{{"changed", false}}},
       {"identity", r.identity},
       {"digest", r.digest},
       {"key_id", key_id(r.key_id)}};
  add_write(j, r.write);
}

void
to_json(json& j, const GrowDataReport& r)
{
  json kernel = {{"size_before", r.kernel.size_before}, {"changed", r.kernel.changed}, {"size", r.kernel.size}};
  if (r.kernel.changed) {
    kernel["how"] = r.kernel.how;
  }
  j = {{"disk", r.disk},
       {"device", r.device},
       {"mount", r.mount},
       {"partition", r.partition},
       {"kernel", kernel},
       {"filesystem",
        {{"type", r.filesystem.type},
         {"size_before", r.filesystem.size_before},
         {"size", r.filesystem.size},
         {"changed", r.filesystem.changed}}},
       {"changed", r.changed}};
}

void
to_json(json& j, const WipeReport& r)
{
  j = {{"root", r.root},
       {"keep_data", r.keep_data},
       {"removed", r.removed},
       {"removed_entries", r.removed_entries},
       {"mount_points_skipped", r.mount_points_skipped},
       {"symlinks_not_followed", r.symlinks_not_followed},
       {"volumes_kept", r.volumes_kept},
       {"volumes_wiped", r.volumes_wiped}};
}

} // namespace kiln::node
