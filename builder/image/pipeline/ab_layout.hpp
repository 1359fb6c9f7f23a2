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
//   appliance: the launch of the dirty stages when finalize is one of them (the disk is
//              their second drive), else one of its own with the finalize layer read-only;
//              the root tree is copied into slot A inside the appliance (cp -a: ownership,
//              xattrs, SELinux labels, ACLs kept); fstab, stable kernel names, the kiln-node artifact
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
#include "image/pipeline/engine.hpp"
#include "image/pipeline/phase_timer.hpp"
#include "image/formats/outputs.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

// The "ab" stage (key: the resolved plan's plan.ab, which `kiln plan` shows) on top of the
// finalized layer. It yields the whole-disk layer with its metadata (the finalize layer's
// packages, kernel and guest, and the A/B disk), the launches it made and its name as built
// or reused. Three ways, in the builder's order of preference:
//   cached():      the layer and bundle are in the store;
//   shared launch: passed to run_stages, it adds its disk to the launch of the dirty stages
//                  and runs once finalize is stored (no launch of its own), then take();
//   build_alone(): finalize was cached, so nothing else launches: one launch of its own.
class AbStage : public SharedLaunch {
public:
  AbStage(const recipe::Recipe& recipe, const recipe::Plan& plan, const LayerStore& layers, const BuildOptions& options,
          std::filesystem::path scratch);
  ~AbStage() override;
  AbStage(const AbStage&) = delete;
  AbStage& operator=(const AbStage&) = delete;

  std::optional<Built> cached() const;
  Built build_alone(const Built& finalized);
  // What run() built, once (nothing when it did not run).
  std::optional<Built> take();

  void add_drives(gfs::Handle& g, const std::filesystem::path& source_layer) override;
  void run(gfs::Handle& g, const steps::GuestInfo& guest, const Built& finalized) override;

private:
  const recipe::Recipe& m_recipe;
  const recipe::Plan& m_plan;
  const LayerStore& m_layers;
  const BuildOptions& m_options;
  std::filesystem::path m_scratch;
  std::int64_t m_epoch = 0; // the re-made file systems' times (run())
  std::string m_key;
  Laps m_laps;
  ab::Layout m_layout;
  std::filesystem::path m_disk;
  nlohmann::json m_fs_uuids;
  struct FsFile {
    std::string part;
    std::string type;
    std::filesystem::path file;
  };
  std::vector<FsFile> m_fs_files; // made by add_drives, copied into the disk by run()
  std::optional<Built> m_result;
};

// Writes NAME.kbundle into `dir` (signed with `key_path` when given); returns it for
// the manifest (role "bundle", format "kbundle").
std::vector<formats::Written> write_ab_bundle(const AbDisk& ab, const std::filesystem::path& final_layer,
                                              const std::string& stem, const std::filesystem::path& dir,
                                              const std::optional<std::string>& key_path);

} // namespace kiln::build
