// `kiln-node install` gives the disk it wrote an identity of its own: new disk and
// partition GUIDs (slots/gpt_guids), and kiln-boot's grub.cfg, which names the slots by
// root=PARTUUID=, follows. The image keeps its reproducible GUIDs; every disk written
// from it differs, so two kiln disks in one machine never share a PARTUUID and a copy of
// a node's disk never passes for the node's own.
#pragma once

#include "core/node/report.hpp"
#include "core/slots/gpt_guids.hpp"

#include <filesystem>
#include <functional>

namespace kiln::node {

// 16 bytes from /dev/urandom (Linux 3.10 has no getrandom(2)). Throws Error when it
// cannot be read.
slots::Guid random_bytes16();

// grub.cfg's text with every old GUID of `changes` replaced by its new one. Refuses
// (Error(subject, ...)) a grub.cfg that does not name both slots by their old PARTUUIDs:
// it is not the one kiln wrote for this image.
std::string rewrite_grub_cfg(const std::string& text, const std::vector<slots::GuidChange>& changes,
                             const std::string& subject);

// New GUIDs for the A/B disk at `disk` (a file or a block device, nothing of it mounted),
// then kiln-boot's grub.cfg rewritten to match. Returns the new disk GUID and each
// partition's new PARTUUID by label. A cut in the middle leaves a disk that does not boot: run install
// again (it rewrites the whole image).
IdentityReport give_own_guids(const std::filesystem::path& disk, const std::function<slots::Guid()>& draw);

} // namespace kiln::node
