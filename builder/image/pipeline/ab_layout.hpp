// `layout: ab`: turns the finalized image into a whole-disk GPT A/B image (abi.hpp)
// and a slot bundle.
//
// An implicit stage after finalize, "ab", cached like the others (layers/KEY.qcow2 +
// KEY.json, plus KEY.kbundle): key = the plan's ab key (finalize key, the ab: settings,
// image name, the kiln-node artifact's digest).
//   host:      partition table (sfdisk, GUIDs derived from the key) and every file system
//              made with the host's mkfs and features CentOS 7's kernel 3.10 and GRUB
//              2.02 read (XFS v5 without finobt/sparse/reflink/rmapbt/bigtime/inobtcount,
//              ext4 without metadata_csum/metadata_csum_seed/orphan_file/64bit), copied
//              into a sparse raw disk at their offsets;
//   appliance: ONE launch with the finalize layer (read-only) and the new disk: the root
//              tree goes into slot A through tar (ownership, xattrs, SELinux labels,
//              ACLs kept); fstab, stable kernel names, the kiln-node artifact
//              (/usr/bin/kiln-node, /usr/lib/kiln/node), kiln-mark-good.service and
//              kiln-grow-data.service (ab.grow_data); the paths kiln added are labelled
//              with the image's policy; /var/lib/docker, /var/lib/mesos, /var/lib/dcos
//              and /var/log move to kiln-data (bind mounts); the image's
//              own grub-install runs for i386-pc and x86_64-efi; kiln's grub.cfg and
//              the initial grubenv go on kiln-boot;
//   host:      slot A's bytes become the bundle (unsigned, cached); its manifest digest
//              is written into the grubenv (kiln_A_digest) before the appliance stops.
// At output time the disk goes through the ordinary format writers and the bundle is
// published as OUTDIR/NAME.kbundle (role "bundle"), re-made with a signature when the
// build signs (same manifest bytes, so kiln_A_digest still matches).
#pragma once

#include "core/fetch/cache.hpp"
#include "core/recipe/model.hpp"
#include "core/recipe/plan.hpp"
#include "image/pipeline/options.hpp"
#include "image/pipeline/publish.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/formats/outputs.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::build {

// Runs (or reuses from `layers`) the "ab" stage (key: the resolved plan's plan.ab, which
// `kiln plan` shows) on top of the finalized layer; returns the
// whole-disk layer with its metadata (the finalize layer's packages, kernel and guest,
// and the A/B disk), the launches it made and its name as built or reused.
Built make_ab_layer(const recipe::Recipe& recipe, const recipe::Plan& plan, const LayerStore& layers,
                    const BuildOptions& options, const std::filesystem::path& scratch, const Built& finalized);

// Writes NAME.kbundle into `dir` (signed with `key_path` when given); returns it for
// the manifest (role "bundle", format "kbundle").
std::vector<formats::Written> write_ab_bundle(const AbDisk& ab, const std::filesystem::path& final_layer,
                                              const std::string& stem, const std::filesystem::path& dir,
                                              const std::optional<std::string>& key_path);

} // namespace kiln::build
