#include "core/recipe/plan.hpp"

#include "core/crypto/sha256.hpp"
#include "core/dcos/bundle.hpp"
#include "core/dcos/firstboot.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/recipe/schema/steps.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <filesystem>

namespace kiln::recipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The local files a step reads, with their digests: its table entry names them.
void
step_inputs(const Step& step, crypto::FileDigests& digests, std::vector<Input>& out)
{
  for (const auto& source : step_kind_of(step.spec).sources(step.spec)) {
    out.push_back({source.kind.empty() ? step.kind : source.kind,
                   source.path,
                   source.tree ? crypto::sha256_tree(source.path) : digests.sha256(source.path),
                   {},
                   {}});
  }
}

} // namespace

json
to_json(const Step& step)
{
  return {{step.kind, step_kind_of(step.spec).describe(step.spec)}};
}

json
to_json(const BaseImage& base)
{
  switch (base.kind) {
    case BaseImage::Kind::url:
      return {{"url", base.urls.empty() ? "" : base.urls.front()},
              {"mirrors", std::vector<std::string>(base.urls.begin() + (base.urls.empty() ? 0 : 1), base.urls.end())},
              {"sha256", base.sha256.value_or("")},
              {"size", base.size ? json(*base.size) : json(nullptr)},
              {"format", base.format}};
    case BaseImage::Kind::bootstrap:
      return {
        {"bootstrap",
         {{"suite", base.suite}, {"mirror", base.mirror}, {"variant", base.variant}, {"packages", base.packages}}}};
    case BaseImage::Kind::path:
      return {{"path", base.path}, {"format", base.format}};
  }
  return nullptr;
}

std::string
stage_key(const std::string& parent, const PlannedStage& stage)
{
  json inputs = json::array();
  for (const auto& in : stage.inputs) {
    inputs.push_back(in.sha256);
  }
  json key_src = {{"parent", parent}, {"stage", stage.definition}, {"inputs", inputs}};
  return crypto::sha256_hex(key_src.dump());
}

namespace {

// The implicit "dcos" stage: the bundle (by its digest: ids and file digests), the
// default role and the first-boot script and unit kiln writes.
PlannedStage
dcos_stage(const DcosSpec& spec, const std::string& parent)
{
  PlannedStage planned;
  planned.name = "dcos";
  json body = {{"role", dcos::role_name(spec.role)},
               {"firstboot", crypto::sha256_hex(dcos::firstboot_script(spec.role) + dcos::firstboot_unit())}};
  if (spec.version) {
    body["version"] = *spec.version;
  }
  planned.definition = {{"name", "dcos"}, {"steps", json::array({json{{"dcos", body}}})}};
  if (dcos::is_url(spec.bundle)) {
    planned.inputs.push_back({"dcos-bundle", spec.bundle, "", {}, {}});
    return planned; // key resolved at build, once the bundle was fetched
  }
  dcos::Bundle b = dcos::describe_bundle(spec.bundle, spec.bundle);
  planned.inputs.push_back({"dcos-bundle", spec.bundle, b.digest, {}, {}});
  planned.key = stage_key(parent, planned);
  return planned;
}

// Bumped when the A/B stage's result changes for the same settings (2: kiln-node installed;
// 3: kiln-mark-good.service gives up after a deadline; 4: /var/lib/dcos on kiln-data).
constexpr int k_ab_version = 4;

// The implicit "ab" stage: its key needs the finalize key (set by set_keys_after_stages).
PlannedStage
ab_stage(const Recipe& recipe, const PlanOptions& options)
{
  PlannedStage planned;
  planned.name = "ab";
  fs::path path = recipe.ab.node          ? fs::path(*recipe.ab.node)
                  : options.node_artifact ? *options.node_artifact
                                          : own_node_artifact();
  NodeArtifact node = describe_node_artifact(path);
  json body = {{"settings", to_json(recipe.ab)},
               {"name", recipe.outputs.name},
               {"relabel", wants_relabel(recipe)},
               {"node", node.directory ? "tree" : "executable"},
               {"version", k_ab_version}};
  if (recipe.version != 0) {
    body["image_version"] = recipe.version; // in the bundle's manifest
  }
  planned.definition = {{"name", "ab"}, {"steps", json::array({json{{"ab", body}}})}};
  planned.inputs.push_back({"kiln-node", node.path.string(), node.sha256, {}, node.version});
  return planned;
}

// Bumped when what finalize leaves changes for the same settings.
constexpr int k_finalize_version = 1;

// The implicit "finalize" stage: what it does depends only on the recipe's sysprep and
// trim (the relabel and the DC/OS checks follow from the stages before it).
PlannedStage
finalize_stage(const Recipe& recipe)
{
  PlannedStage planned;
  planned.name = "finalize";
  json body = {{"sysprep", recipe.sysprep}, {"trim", recipe.trim}, {"version", k_finalize_version}};
  planned.definition = {{"name", "finalize"}, {"steps", json::array({json{{"finalize", body}}})}};
  return planned;
}

// The keys of finalize and ab from the last stage's (empty while that one is unresolved).
void
set_keys_after_stages(Plan& plan)
{
  const std::string parent = plan.stages.empty() ? plan.base_key : plan.stages.back().key;
  if (parent.empty()) {
    plan.finalize.key.clear();
  } else {
    const json& body = plan.finalize.definition["steps"][0]["finalize"];
    plan.finalize.key = crypto::sha256_hex(json{{"parent", parent}, {"finalize", body}}.dump());
  }
  if (plan.ab) {
    plan.ab->key = plan.finalize.key.empty() ? "" : stage_key(plan.finalize.key, *plan.ab);
  }
}

} // namespace

std::vector<const PlannedStage*>
stages_in_order(const Plan& plan)
{
  std::vector<const PlannedStage*> out;
  for (const auto& s : plan.stages) {
    out.push_back(&s);
  }
  out.push_back(&plan.finalize);
  if (plan.ab) {
    out.push_back(&*plan.ab);
  }
  return out;
}

bool
Plan::resolved() const
{
  auto known = [](const PlannedStage& s) { return !s.key.empty(); };
  return !base_key.empty() && std::all_of(stages.begin(), stages.end(), known) && known(finalize) &&
         (!ab || known(*ab));
}

Plan
resolve_plan(const Plan& planned, const Resolution& resolution)
{
  Plan plan = planned;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    PlannedStage& stage = plan.stages[i];
    if (stage.name != "dcos" || !stage.key.empty()) {
      continue;
    }
    if (resolution.dcos_bundle_sha256.empty()) {
      throw Error("dcos", "the bundle's digest is not known (internal error: resolved without fetching it)");
    }
    stage.inputs.at(0).sha256 = resolution.dcos_bundle_sha256;
    stage.key = stage_key(i == 0 ? plan.base_key : plan.stages[i - 1].key, stage);
    for (auto& in : plan.inputs) {
      if (in.kind == "dcos-bundle" && in.sha256.empty()) {
        in.sha256 = resolution.dcos_bundle_sha256;
      }
    }
  }
  set_keys_after_stages(plan);
  if (!plan.resolved()) {
    throw Error("plan", "a stage key is still unresolved after resolving the plan (internal error)");
  }
  return plan;
}

bool
wants_relabel(const Recipe& recipe)
{
  for (const auto& stage : recipe.stages) {
    for (const auto& step : stage.steps) {
      if (const auto* s = std::get_if<SelinuxStep>(&step.spec); s != nullptr && s->relabel) {
        return true;
      }
    }
  }
  return false;
}

Plan
make_plan(const Recipe& recipe, const PlanOptions& options)
{
  crypto::FileDigests& digests = options.digests != nullptr ? *options.digests : crypto::direct_digests();
  Plan plan;
  plan.recipe_digest = crypto::sha256_hex(recipe.tree.to_json().dump());

  Input base{"base", "", "", {}, {}};
  json base_def = to_json(recipe.base);
  switch (recipe.base.kind) {
    case BaseImage::Kind::url:
      base.source = recipe.base.urls.empty() ? "" : recipe.base.urls.front();
      base.mirrors.assign(recipe.base.urls.begin() + (recipe.base.urls.empty() ? 0 : 1), recipe.base.urls.end());
      base.sha256 = recipe.base.sha256.value_or("");
      // Mirrors do not change what is fetched: the key depends on the digest only.
      base_def = {{"sha256", base.sha256}, {"format", recipe.base.format}};
      if (base.sha256.empty()) {
        base_def["url"] = base.source;
      }
      break;
    case BaseImage::Kind::bootstrap:
      base.source = "mmdebstrap:" + recipe.base.suite;
      break;
    case BaseImage::Kind::path:
      base.source = recipe.base.path;
      base.sha256 = digests.sha256(recipe.base.path);
      base_def = {{"sha256", base.sha256}, {"format", recipe.base.format}};
      break;
  }
  plan.inputs.push_back(base);
  json base_key_src = {{"base", base_def}, {"size", recipe.size}};
  if (options.source_date_epoch) {
    base_key_src["source_date_epoch"] = *options.source_date_epoch; // unset: the keys of earlier kilns
  }
  plan.base_key = crypto::sha256_hex(base_key_src.dump());

  std::string parent = plan.base_key;
  for (const auto& stage : recipe.stages) {
    PlannedStage planned;
    planned.name = stage.name;
    json steps = json::array();
    for (const auto& step : stage.steps) {
      steps.push_back(to_json(step));
      step_inputs(step, digests, planned.inputs);
    }
    planned.definition = {{"name", stage.name}, {"steps", steps}, {"network", recipe.network}};
    planned.key = stage_key(parent, planned);
    parent = planned.key;
    plan.inputs.insert(plan.inputs.end(), planned.inputs.begin(), planned.inputs.end());
    plan.stages.push_back(std::move(planned));
  }
  if (recipe.dcos) {
    plan.stages.push_back(dcos_stage(*recipe.dcos, parent));
    plan.inputs.insert(plan.inputs.end(), plan.stages.back().inputs.begin(), plan.stages.back().inputs.end());
  }
  plan.finalize = finalize_stage(recipe);
  if (recipe.layout == Layout::ab) {
    plan.ab = ab_stage(recipe, options);
    plan.inputs.insert(plan.inputs.end(), plan.ab->inputs.begin(), plan.ab->inputs.end());
  }
  set_keys_after_stages(plan);
  return plan;
}

json
to_json(const AbLayout& ab)
{
  return {{"esp_size", ab.esp_size},   {"boot_size", ab.boot_size}, {"slot_size", ab.slot_size},
          {"data_size", ab.data_size}, {"root_fs", ab.root_fs},     {"data_fs", ab.data_fs},
          {"tries", ab.tries},         {"panic", ab.panic},         {"kernel_args", ab.kernel_args},
          {"grow_data", ab.grow_data}};
}

json
plan_json(const Recipe& recipe, const Plan& plan)
{
  json inputs = json::array();
  for (const auto& in : plan.inputs) {
    json j = {{"kind", in.kind}, {"source", in.source}, {"sha256", in.sha256}};
    if (in.kind == "dcos-bundle" && in.sha256.empty()) {
      j["resolved"] = "at build";
    }
    if (!in.mirrors.empty()) {
      j["mirrors"] = in.mirrors;
    }
    if (!in.version.empty()) {
      j["version"] = in.version;
    }
    inputs.push_back(j);
  }
  json stages = json::array();
  for (const auto* s : stages_in_order(plan)) {
    if (s->name == "ab" && plan.ab) {
      break; // below, with its inputs
    }
    json st = {{"name", s->name}, {"key", s->key}, {"steps", s->definition["steps"]}};
    if (s->key.empty()) {
      st["resolved"] = "at build";
    }
    stages.push_back(st);
  }
  if (plan.ab) {
    json st = {
      {"name", "ab"}, {"key", plan.ab->key}, {"steps", plan.ab->definition["steps"]}, {"inputs", json::array()}};
    for (const auto& in : plan.ab->inputs) {
      st["inputs"].push_back(
        {{"kind", in.kind}, {"source", in.source}, {"sha256", in.sha256}, {"version", in.version}});
    }
    if (plan.ab->key.empty()) {
      st["resolved"] = "at build";
    }
    stages.push_back(st);
  }
  return {{"name", recipe.name},
          {"file", recipe.file},
          {"extends", recipe.chain},
          {"recipe_digest", plan.recipe_digest},
          {"recipe", recipe.tree.to_json()},
          {"base", to_json(recipe.base)},
          {"base_key", plan.base_key},
          {"inputs", inputs},
          {"stages", stages},
          {"outputs",
           {{"name", recipe.outputs.name},
            {"formats", format_names(recipe.outputs.formats)},
            {"compress", recipe.outputs.compress}}},
          {"layout", layout_name(recipe.layout)},
          {"ab", recipe.layout == Layout::ab ? to_json(recipe.ab) : json(nullptr)},
          {"sysprep", recipe.sysprep}};
}

} // namespace kiln::recipe
