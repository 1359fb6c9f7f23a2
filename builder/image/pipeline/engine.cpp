#include "image/pipeline/engine.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/guestfs/guestfs_editor.hpp"
#include "image/pipeline/base.hpp"
#include "image/pipeline/guest.hpp"
#include "image/pipeline/phase_timer.hpp"
#include "image/pipeline/repack.hpp"
#include "image/pipeline/stage.hpp"

namespace kiln::build {

namespace fs = std::filesystem;

Built
run_stages(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache, const LayerStore& layers,
           const BuildOptions& options, const fs::path& scratch, SharedLaunch* after)
{
  const std::vector<std::unique_ptr<Stage>> stages = appliance_stages(recipe, plan);
  Built result;
  // The deepest stage already cached; everything after it runs.
  size_t first = 0;
  if (!options.no_cache) {
    for (size_t i = stages.size(); i > 0; --i) {
      if (layers.has(stages[i - 1]->key())) {
        first = i;
        break;
      }
    }
  }
  for (size_t i = 0; i < first; ++i) {
    result.reused.push_back(stages[i]->name());
    events(options).stage({stages[i]->name(), stages[i]->key(), StageState::cached, ""});
  }
  result.layer = layers.image(stages.back()->key());
  if (first == stages.size()) {
    result.meta = layers.read(stages.back()->key());
    return result;
  }

  BaseLayer parent;
  if (first == 0) {
    PhaseTimer timer(log_sink(options), "base");
    parent = resolve_base(recipe, plan, cache, layers, options);
  } else {
    const std::string& key = stages[first - 1]->key();
    parent = BaseLayer{layers.image(key), "qcow2", 0, layers.read(key).guest};
  }
  result.launches += parent.launches;
  fs::path working = scratch / "working.qcow2";
  formats::create_overlay(runner_of(options), "working layer", parent.image, parent.format, working);

  bool network = options.network || recipe.network;
  for (size_t i = first; i < stages.size(); ++i) {
    network = network || stages[i]->needs_network();
  }
  gfs::Handle g(handle_options(options, network));
  g.add_drive(working.string(), "qcow2");
  if (after != nullptr) {
    after->add_drives(g, working);
  }
  say(options, "appliance: launching (" +
                 std::string(gfs::probe_acceleration().accel == gfs::Accel::kvm ? "kvm" : "software emulation") + ")");
  {
    PhaseTimer timer(log_sink(options), "launch");
    g.launch();
  }
  ++result.launches;
  steps::GuestInfo guest;
  {
    PhaseTimer timer(log_sink(options), parent.guest ? "mount" : "inspect");
    guest = known_or_inspected(g, parent.guest, "image");
    g.mount_points(guest.mounts);
  }
  gfs::GuestfsEditor editor(g);
  steps::StepContext ctx{editor, guest, network, notice_sink(options), options.source_date_epoch};
  StageRun run{g, ctx, recipe, layers, options, scratch};

  for (size_t i = first; i < stages.size(); ++i) {
    const Stage& stage = *stages[i];
    LayerMeta meta = stage.run(run);
    meta.key = stage.key();
    meta.name = stage.name();
    meta.recipe = recipe.name;
    meta.guest = guest;
    util::check_interrupted();
    const bool last = i + 1 == stages.size();
    // The last layer's file systems re-made from their trees (repack.hpp): found while
    // mounted, re-made in the stored layer, which no appliance opens, before its record
    // makes it a cached layer.
    std::vector<RepackTarget> targets = last ? repack_targets(g, guest) : std::vector<RepackTarget>{};
    {
      PhaseTimer timer(log_sink(options), "layer " + stage.name());
      g.umount_all();
      if (last && after == nullptr) {
        g.shutdown();
      }
      layers.put_image(runner_of(options), working, stage.key());
    }
    if (last) {
      PhaseTimer timer(log_sink(options), "repack");
      RepackResult r = repack_file_systems(runner_of(options), layers.image(stage.key()), "qcow2", targets,
                                           file_system_epoch(options.source_date_epoch), scratch);
      say_repacked(options, r, "", "");
    }
    layers.write(meta);
    result.built.push_back(stage.name());
    if (!last) {
      g.mount_points(guest.mounts);
    } else {
      result.meta = std::move(meta);
    }
  }
  if (after != nullptr) {
    after->run(g, guest, result);
  }
  return result;
}

} // namespace kiln::build
