#include "core/slots/gpt_guids.hpp"

#include "core/slots/gpt.hpp"

#include <set>

namespace kiln::slots {

Guid
random_guid(const Guid& random_bytes)
{
  Guid g = random_bytes;
  // GPT stores the third field little-endian: its high byte (the version) is byte 7.
  g[7] = static_cast<unsigned char>((g[7] & 0x0f) | 0x40);
  g[8] = static_cast<unsigned char>((g[8] & 0x3f) | 0x80);
  return g;
}

GuidPlan
plan_new_guids(const GptTable& primary, const std::function<Guid()>& draw)
{
  GuidPlan plan;
  std::set<Guid> taken{primary.disk_guid};
  for (const auto& e : primary.entries) {
    if (e.used()) {
      taken.insert(e.unique);
    }
  }
  auto fresh = [&] {
    for (;;) {
      Guid g = random_guid(draw());
      if (taken.insert(g).second) {
        return g;
      }
    }
  };
  GptTable t = primary;
  plan.old_disk_guid = guid_text(primary.disk_guid.data());
  t.disk_guid = fresh();
  plan.new_disk_guid = guid_text(t.disk_guid.data());
  for (auto& e : t.entries) {
    if (!e.used()) {
      continue;
    }
    GuidChange c{e.label(), guid_text(e.unique.data()), ""};
    e.unique = fresh();
    c.new_guid = guid_text(e.unique.data());
    plan.partitions.push_back(std::move(c));
  }
  const std::uint64_t entry_sectors = t.entry_sectors();
  std::vector<unsigned char> entries = entry_bytes(t);
  entries.resize(entry_sectors * t.sector_size, 0);
  GrowPlan& w = plan.rewrite;
  w.changed = true;
  w.table = t;
  w.old_last_usable = w.new_last_usable = t.last_usable;
  w.old_backup_lba = t.alternate_lba; // the backup stays where it is: nothing to zero
  w.backup_writes = {{t.alternate_lba - entry_sectors, entries}, {t.alternate_lba, header_sector(t, true)}};
  w.primary_writes = {{t.entries_lba, entries}, {1, header_sector(t, false)}};
  return plan;
}

} // namespace kiln::slots
