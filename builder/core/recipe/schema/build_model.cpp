// The top level of the schema: the recipe's own keys, its outputs and stages; the
// blocks, the base and each step are read by their own files.
#include "core/recipe/schema.hpp"

#include "core/manifest/manifest.hpp"
#include "core/recipe/schema/base.hpp"
#include "core/recipe/schema/blocks.hpp"
#include "core/recipe/schema/reader.hpp"
#include "core/recipe/schema/steps.hpp"

#include <algorithm>
#include <regex>
#include <set>

namespace kiln::recipe {

using detail::join;
using detail::MapReader;
using detail::suggestion;

const char*
layout_name(Layout layout)
{
  return layout == Layout::ab ? "ab" : "plain";
}

namespace {

constexpr OutputFormat k_formats[] = {OutputFormat::qcow2, OutputFormat::raw, OutputFormat::vmdk, OutputFormat::vhd,
                                      OutputFormat::pxe};

} // namespace

const char*
format_name(OutputFormat format)
{
  switch (format) {
    case OutputFormat::qcow2:
      return "qcow2";
    case OutputFormat::raw:
      return "raw";
    case OutputFormat::vmdk:
      return "vmdk";
    case OutputFormat::vhd:
      return "vhd";
    case OutputFormat::pxe:
      return "pxe";
  }
  return "";
}

std::optional<OutputFormat>
parse_format(std::string_view name)
{
  for (OutputFormat f : k_formats) {
    if (name == format_name(f)) {
      return f;
    }
  }
  return std::nullopt;
}

std::vector<std::string>
format_names(const std::vector<OutputFormat>& formats)
{
  std::vector<std::string> names;
  for (OutputFormat f : formats) {
    names.push_back(format_name(f));
  }
  return names;
}

const std::vector<std::string>&
output_formats()
{
  static const std::vector<std::string> names = format_names({std::begin(k_formats), std::end(k_formats)});
  return names;
}

namespace {

void
read_outputs(const Value& v, Outputs& outputs, Diagnostics& diags)
{
  MapReader o(v, "outputs", diags);
  outputs.name = o.string("name").value_or("");
  (void)o.list("formats"); // the list's own shape errors
  if (const Value* f = o.get("formats")) {
    const auto& known = output_formats();
    for (const Value& item : f->is_sequence() ? f->items : std::vector<Value>{*f}) {
      if (!item.is_scalar()) {
        continue;
      }
      if (std::optional<OutputFormat> format = parse_format(item.scalar)) {
        outputs.formats.push_back(*format);
      } else {
        diags.error(item.location, "formats: unknown format '" + item.scalar + "' (known: " + join(known) + ")" +
                                     suggestion(item.scalar, known));
      }
    }
  }
  outputs.compress = o.boolean("compress").value_or(false);
  o.finish();
}

void
read_stages(const Value& stages, const LoadOptions& options, Recipe& recipe, Diagnostics& diags)
{
  if (!stages.is_sequence()) {
    diags.error(stages.location, "stages must be a list, not " + describe(stages));
    return;
  }
  std::set<std::string> names;
  for (const auto& item : stages.items) {
    MapReader s(item, "stage", diags);
    Stage stage;
    stage.location = item.location;
    stage.name = s.string("name", true).value_or("");
    if (!stage.name.empty() && !names.insert(stage.name).second) {
      diags.error(s.get("name")->location, "duplicate stage name '" + stage.name + "'");
    }
    if (const Value* steps = s.require("steps")) {
      if (!steps->is_sequence()) {
        diags.error(steps->location, "steps must be a list, not " + describe(*steps));
      } else {
        for (const auto& step_value : steps->items) {
          if (auto step = detail::read_step(step_value, options, diags)) {
            stage.steps.push_back(std::move(*step));
          }
        }
      }
    }
    s.finish();
    recipe.stages.push_back(std::move(stage));
  }
}

} // namespace

Recipe
build_model(const Value& doc, const LoadOptions& options, Diagnostics& diags)
{
  Recipe recipe;
  MapReader r(doc, "recipe", diags);
  r.get("vars"); // resolved by the loader
  recipe.name = r.string("name", true).value_or("");
  static const std::regex name_re("[A-Za-z0-9][A-Za-z0-9_.-]*");
  if (!recipe.name.empty() && !std::regex_match(recipe.name, name_re)) {
    diags.error(r.get("name")->location,
                "name " + quote_token(recipe.name) + " may hold only letters, digits, '.', '_' and '-'");
  }
  recipe.description = r.string("description").value_or("");
  recipe.version = r.id("version").value_or(0);
  if (const Value* base = r.require("base")) {
    recipe.base = detail::read_base(*base, options, diags);
  }
  recipe.size = r.size("size").value_or(0);
  recipe.network = r.boolean("network").value_or(false);
  recipe.sysprep = r.boolean("sysprep").value_or(true);
  recipe.trim = r.boolean("trim").value_or(true);
  recipe.layout = r.one_of("layout", {layout_name(Layout::plain), layout_name(Layout::ab)}).value_or("plain") == "ab"
                    ? Layout::ab
                    : Layout::plain;
  if (const Value* ab = r.get("ab")) {
    detail::read_ab(*ab, recipe, diags);
  }
  if (const Value* trust = r.get("trust")) {
    recipe.trust = detail::read_trust(*trust, diags);
  }
  if (const Value* dcos = r.get("dcos")) {
    recipe.dcos = detail::read_dcos(*dcos, diags);
  }
  recipe.signing_key = r.local_file("signing_key");

  if (const Value* outputs = r.get("outputs")) {
    read_outputs(*outputs, recipe.outputs, diags);
  }
  if (recipe.outputs.name.empty()) {
    recipe.outputs.name = recipe.name;
  }
  // The outputs' name is the manifest's, which kiln-node keeps in the grubenv: refused
  // here rather than after the build.
  bool name_reported = recipe.outputs.name == recipe.name && !std::regex_match(recipe.name, name_re);
  if (!recipe.outputs.name.empty() && !name_reported && !manifest::valid_image_name(recipe.outputs.name)) {
    const Value* outputs = r.get("outputs");
    const Value* where = outputs != nullptr && outputs->find("name") != nullptr ? outputs->find("name") : r.get("name");
    diags.error(where != nullptr ? where->location : doc.location,
                "the image name " + manifest::image_name_problem(recipe.outputs.name));
  }
  if (recipe.outputs.formats.empty()) {
    recipe.outputs.formats = {OutputFormat::qcow2};
  }

  if (const Value* stages = r.get("stages")) {
    read_stages(*stages, options, recipe, diags);
  }
  if (recipe.trust) {
    detail::add_trust_stage(recipe, diags);
  }
  if (recipe.dcos && recipe.layout == Layout::ab) {
    detail::check_agent_data(doc, recipe, diags);
  }
  if (recipe.dcos) {
    for (const auto& stage : recipe.stages) {
      if (stage.name == "dcos") {
        diags.error(stage.location, "stage name 'dcos' is reserved for the dcos: bundle");
      }
    }
  }
  r.finish();
  return recipe;
}

} // namespace kiln::recipe
