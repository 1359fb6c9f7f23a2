// The stages that run in the appliance (stage.hpp): the recipe's and dcos, and the
// list of a plan's stages in order.
#include "image/pipeline/dcos_stage.hpp"
#include "image/pipeline/finalize.hpp"
#include "image/pipeline/phase_timer.hpp"
#include "image/pipeline/stage.hpp"
#include "image/steps/steps.hpp"

#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <variant>

namespace kiln::build {

namespace {

// A stage of the recipe: its steps, in order.
class RecipeStage : public Stage {
public:
  RecipeStage(const recipe::Stage& stage, const std::string& key) : Stage(stage.name, key), m_stage(stage) {}

  bool needs_network() const override
  {
    for (const auto& step : m_stage.steps) {
      if (const auto* p = std::get_if<recipe::PackagesStep>(&step.spec); p != nullptr && p->network) {
        return true;
      }
    }
    return false;
  }

  LayerMeta run(StageRun& run) const override
  {
    const BuildOptions& options = run.options;
    const auto& steps = m_stage.steps;
    events(options).stage({name(), key(), StageState::running, "running " + std::to_string(steps.size()) + " steps"});
    PhaseTimer timer(log_sink(options), "stage " + name() + " steps");
    for (size_t s = 0; s < steps.size(); ++s) {
      util::check_interrupted();
      say(options, "  [" + std::to_string(s + 1) + "/" + std::to_string(steps.size()) + "] " + steps[s].kind + " (" +
                     steps[s].location.str() + ")");
      steps::run_step(run.ctx, steps[s]);
    }
    return {};
  }

private:
  const recipe::Stage& m_stage;
};

// The implicit dcos stage: the bundle prepared before the launch, staged in the guest.
class DcosStage : public Stage {
public:
  using Stage::Stage;

  LayerMeta run(StageRun& run) const override
  {
    events(run.options).stage({name(), key(), StageState::running, "staging the bundle in /opt/dcos_install_tmp"});
    PhaseTimer timer(log_sink(run.options), "stage dcos");
    dcos_stage::run(run.ctx, run.recipe, run.scratch);
    return {};
  }
};

} // namespace

std::vector<std::unique_ptr<Stage>>
appliance_stages(const recipe::Recipe& recipe, const recipe::Plan& plan)
{
  if (!plan.resolved()) {
    throw Error("plan", "a stage key is unresolved (internal error: the plan must be resolved before a build)");
  }
  std::vector<std::unique_ptr<Stage>> stages;
  for (size_t i = 0; i < recipe.stages.size(); ++i) {
    stages.push_back(std::make_unique<RecipeStage>(recipe.stages[i], plan.stages.at(i).key));
  }
  if (recipe.dcos) {
    stages.push_back(std::make_unique<DcosStage>("dcos", plan.stages.back().key));
  }
  stages.push_back(std::make_unique<FinalizeStage>(plan));
  return stages;
}

} // namespace kiln::build
