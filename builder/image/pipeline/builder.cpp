#include "image/pipeline/builder.hpp"

#include "core/util/fs.hpp"
#include "image/pipeline/ab_layout.hpp"
#include "image/pipeline/dcos_stage.hpp"
#include "image/pipeline/engine.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/pipeline/scratch.hpp"

namespace kiln::build {

namespace {

void
add_run(BuildResult& result, const Built& built)
{
  result.launches += built.launches;
  result.reused.insert(result.reused.end(), built.reused.begin(), built.reused.end());
  result.built.insert(result.built.end(), built.built.begin(), built.built.end());
}

} // namespace

BuildResult
build(const recipe::Recipe& recipe, const recipe::Plan& planned, fetch::Cache& cache, const BuildOptions& options)
{
  // One build of the same stages at a time: two builds of one recipe would otherwise both
  // run its stages; the second now finds them cached. Builds of other recipes share the
  // cache at the same time (layers and blobs appear by rename, complete or not at all).
  // The last key known before resolving (a dcos stage by URL has none yet).
  std::string chain_key = planned.base_key;
  for (const auto& s : planned.stages) {
    chain_key = s.key.empty() ? chain_key : s.key;
  }
  util::FileLock lock(cache.area("locks") / ("build-" + chain_key.substr(0, 16) + ".lock"));
  ScratchDir scratch(cache.area("tmp"));
  // Remote inputs are resolved before any image is touched: the DC/OS bundle is fetched
  // and validated, and its digest completes the keys. Nothing changes the plan afterwards.
  recipe::Resolution resolution;
  if (recipe.dcos) {
    resolution = dcos_stage::prepare(recipe, planned, cache, scratch.path(), options);
  }
  const recipe::Plan plan = recipe::resolve_plan(planned, resolution);
  // --no-cache builds every layer in the scratch directory and publishes none: the
  // cache's layers stay as they are (other layers are backed by them).
  const LayerStore layers(options.no_cache ? scratch.path() : cache.area("layers"));

  BuildResult result;
  // The A/B stage, unless cached, shares the launch of the dirty stages; when they are all
  // cached it launches on its own.
  std::optional<AbStage> ab_stage;
  std::optional<Built> ab;
  if (plan.ab) {
    ab_stage.emplace(recipe, plan, layers, options, scratch.path());
    ab = ab_stage->cached();
  }
  SharedLaunch* after = ab_stage && !ab ? &*ab_stage : nullptr;
  Built final = run_stages(recipe, plan, cache, layers, options, scratch.path(), after);
  add_run(result, final);
  if (ab_stage) {
    if (!ab) {
      ab = ab_stage->take();
    }
    if (!ab) {
      ab = ab_stage->build_alone(final);
    }
    add_run(result, *ab);
    final = std::move(*ab);
  }
  result.packages = nlohmann::json::array();
  for (const auto& p : final.meta.packages) {
    result.packages.push_back({{"name", p.name}, {"version", p.version}, {"arch", p.arch}});
  }
  Published published = publish(recipe, plan, final, options);
  result.outputs = std::move(published.outputs);
  result.manifest = std::move(published.manifest);
  result.outputs_up_to_date = published.up_to_date;
  return result;
}

} // namespace kiln::build
