// Each written disk its own identity. An image's disk and partition GUIDs come from its
// stage key (reproducible builds), so every disk written from one image would carry the
// same ones: root=PARTUUID= would be ambiguous with two such disks in one machine, and a
// copy of a node's disk would pass for the node's own. `kiln-node install` therefore
// draws new ones for the disk it wrote. Pure planning here; the writes reuse gpt_grow's
// crash-safe order (backup copy first, primary last).
#pragma once

#include "core/slots/gpt_grow.hpp"

#include <array>
#include <functional>
#include <string>
#include <vector>

namespace kiln::slots {

using Guid = std::array<unsigned char, 16>;

struct GuidChange {
  std::string label; // PARTLABEL
  std::string old_guid; // text, lower case
  std::string new_guid;
};

struct GuidPlan {
  GrowPlan rewrite; // the table with the new GUIDs, layout unchanged
  std::string old_disk_guid, new_disk_guid;
  std::vector<GuidChange> partitions; // used entries, in entry order
};

// A random (version 4, RFC 4122 variant) GUID from 16 random bytes, in GPT's byte order.
Guid random_guid(const Guid& random_bytes);

// Replaces the disk GUID and every used entry's unique GUID of `primary` with values
// drawn from `draw` (each a version-4 GUID; a draw equal to an old GUID or to another
// new one is drawn again). The backup copy stays where the table puts it.
GuidPlan plan_new_guids(const GptTable& primary, const std::function<Guid()>& draw);

} // namespace kiln::slots
