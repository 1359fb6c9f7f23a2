#include "core/recipe/loader.hpp"

#include "core/recipe/schema.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <functional>
#include <regex>
#include <set>

namespace kiln::recipe {

namespace fs = std::filesystem;

namespace {

const std::regex k_var_name(R"([A-Za-z_][A-Za-z0-9_]*)");

// Bounds of substitution: one expanded string, and all of them in one recipe together
// (so a ${v}${v} chain or many references to one big variable stop early).
constexpr std::size_t k_max_expanded_bytes = 64 * 1024;
constexpr std::size_t k_max_expanded_total = 16 * 1024 * 1024;

struct ExpandBudget {
  std::size_t total = k_max_expanded_total;
  bool reported = false;
};

// Reports an expansion past its bounds once per load; the value becomes empty.
bool
over_budget(const std::string& out, const Location& loc, ExpandBudget& budget, Diagnostics& diags)
{
  if (out.size() <= k_max_expanded_bytes && out.size() <= budget.total) {
    return false;
  }
  if (!budget.reported) {
    budget.reported = true;
    diags.error(loc, out.size() > k_max_expanded_bytes
                       ? "expands to more than " + std::to_string(k_max_expanded_bytes) + " bytes"
                       : "substituted strings exceed " + std::to_string(k_max_expanded_total) + " bytes in all");
  }
  return true;
}

// Expands ${name} in `text`. `lookup` returns nullptr for an undefined name.
// Returns false (and reports) on an error.
// `required` names the variables declared without a value (and not given): their uses
// report that, with where they were declared.
bool
expand(const std::string& text, const Location& loc,
       const std::function<const std::string*(const std::string&)>& lookup, std::string& out, Diagnostics& diags,
       ExpandBudget& budget, const std::map<std::string, Location>& required = {})
{
  out.clear();
  bool ok = true;
  for (size_t i = 0; i < text.size();) {
    if (over_budget(out, loc, budget, diags)) {
      out.clear();
      return false;
    }
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    size_t end = text.find('}', i + 2);
    if (end == std::string::npos) {
      diags.error(loc, "unterminated '${' in " + quote_token(text.substr(i)) + " (write '$${' for a literal '${')");
      return false;
    }
    std::string name = text.substr(i + 2, end - i - 2);
    if (!std::regex_match(name, k_var_name)) {
      diags.error(loc, "bad variable name " + quote_token(name));
      ok = false;
    } else if (const std::string* value = lookup(name)) {
      out += *value;
    } else if (auto req = required.find(name); req != required.end()) {
      diags.error(loc, "variable '" + name + "' is required: give it with --set " + name +
                         "=VALUE (declared without a value at " + req->second.str() + ")");
      ok = false;
    } else {
      diags.error(loc, "undefined variable '" + name + "' (define it under vars: or with --set " + name + "=...)");
      ok = false;
    }
    i = end + 1;
  }
  if (over_budget(out, loc, budget, diags)) {
    out.clear();
    return false;
  }
  budget.total -= out.size();
  return ok;
}

struct ChainLoader {
  Diagnostics& diags;
  std::vector<fs::path> stack;
  std::vector<std::string> chain;

  Value load(const fs::path& path, const Location& from)
  {
    auto it = std::find(stack.begin(), stack.end(), path);
    if (it != stack.end()) {
      std::string names;
      for (; it != stack.end(); ++it) {
        names += it->string() + " -> ";
      }
      diags.error(from, "extends cycle: " + names + path.string());
      return {};
    }
    if (!fs::is_regular_file(path)) {
      diags.error(from, "cannot read recipe '" + path.string() + "': no such file");
      return {};
    }
    Value doc = load_yaml_file(path, diags);
    if (doc.is_null()) {
      return Value::make_mapping({path.string(), 1, 1});
    }
    if (!doc.is_mapping()) {
      diags.error(doc.location, "a recipe must be a mapping of keys, not " + describe(doc));
      return {};
    }
    chain.push_back(path.string());
    const Value* extends = doc.find("extends");
    if (extends == nullptr) {
      return doc;
    }
    if (!extends->is_scalar() || extends->scalar.empty()) {
      diags.error(extends->location, "extends must be a file name, not " + describe(*extends));
      return doc;
    }
    fs::path parent_path = fs::weakly_canonical(path.parent_path() / extends->scalar);
    stack.push_back(path);
    Value parent = load(parent_path, extends->location);
    stack.pop_back();
    if (!parent.is_mapping()) {
      return doc;
    }
    return merge_recipes(parent, doc);
  }
};

void
merge_stages(Value& merged, const Value& child)
{
  if (!merged.is_sequence() || !child.is_sequence()) {
    merged = child;
    return;
  }
  for (const auto& stage : child.items) {
    const Value* name = stage.is_mapping() ? stage.find("name") : nullptr;
    auto same = std::find_if(merged.items.begin(), merged.items.end(), [&](const Value& existing) {
      const Value* other = existing.is_mapping() ? existing.find("name") : nullptr;
      return name != nullptr && other != nullptr && name->is_scalar() && other->scalar == name->scalar;
    });
    if (same != merged.items.end()) {
      *same = stage;
    } else {
      merged.items.push_back(stage);
    }
  }
  merged.location = child.location;
}

} // namespace

Value
merge_recipes(const Value& parent, const Value& child)
{
  Value merged = parent;
  merged.location = child.location;
  for (const auto& [key, value] : child.entries) {
    if (key.scalar == "extends") {
      continue;
    }
    Value* existing = merged.find(key.scalar);
    if (existing == nullptr) {
      merged.entries.emplace_back(key, value);
    } else if (key.scalar == "vars" && existing->is_mapping() && value.is_mapping()) {
      for (const auto& [vk, vv] : value.entries) {
        existing->set(vk, vv);
      }
      existing->location = value.location;
    } else if (key.scalar == "stages") {
      merge_stages(*existing, value);
    } else {
      *existing = value;
    }
  }
  // `extends` is resolved: keep it out of the merged document.
  std::erase_if(merged.entries, [](const auto& entry) { return entry.first.scalar == "extends"; });
  return merged;
}

namespace {

void
substitute_within(Value& value, const std::map<std::string, std::string>& vars, Diagnostics& diags,
                  ExpandBudget& budget, const std::map<std::string, Location>& required, std::set<std::string>* used)
{
  auto lookup = [&](const std::string& name) -> const std::string* {
    if (used != nullptr) {
      used->insert(name);
    }
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : &it->second;
  };
  switch (value.kind) {
    case Value::Kind::null:
      break;
    case Value::Kind::scalar: {
      if (value.scalar.find('$') != std::string::npos) {
        std::string out;
        if (expand(value.scalar, value.location, lookup, out, diags, budget, required)) {
          value.scalar = std::move(out);
        }
      }
      break;
    }
    case Value::Kind::sequence:
      for (auto& item : value.items) {
        substitute_within(item, vars, diags, budget, required, used);
      }
      break;
    case Value::Kind::mapping:
      for (auto& [k, v] : value.entries) {
        substitute_within(v, vars, diags, budget, required, used);
      }
      break;
  }
}

} // namespace

void
substitute(Value& value, const std::map<std::string, std::string>& vars, Diagnostics& diags,
           const std::map<std::string, Location>& required, std::set<std::string>* used)
{
  ExpandBudget budget;
  substitute_within(value, vars, diags, budget, required, used);
}

std::pair<std::string, std::string>
parse_assignment(const std::string& text)
{
  size_t eq = text.find('=');
  std::string name = text.substr(0, eq);
  if (eq == std::string::npos || !std::regex_match(name, k_var_name)) {
    throw UsageError("--set " + text, "expected NAME=VALUE with NAME made of letters, digits and '_'");
  }
  return {name, text.substr(eq + 1)};
}

namespace {

// Resolves the vars mapping: --set values win, and a variable may refer to others. A
// variable declared without a value (`name:` or `name: null`) and not given goes to
// `required` (name -> where it was declared) instead of the result.
std::map<std::string, std::string>
resolve_vars(Value& doc, const std::map<std::string, std::string>& set, Diagnostics& diags, ExpandBudget& budget,
             std::map<std::string, Location>& required)
{
  std::map<std::string, const Value*> raw;
  Value* vars = doc.find("vars");
  if (vars != nullptr) {
    if (!vars->is_mapping()) {
      diags.error(vars->location, "vars must be a mapping of names to values, not " + describe(*vars));
    } else {
      for (const auto& [k, v] : vars->entries) {
        if (!std::regex_match(k.scalar, k_var_name)) {
          diags.error(k.location, "bad variable name '" + k.scalar + "' (letters, digits and '_')");
        } else if (!v.is_scalar() && !v.is_null()) {
          diags.error(v.location, "variable '" + k.scalar + "' must be a scalar, not " + describe(v));
        } else if (v.is_null() && set.count(k.scalar) == 0) {
          required[k.scalar] = k.location;
        } else {
          raw[k.scalar] = &v;
        }
      }
    }
  }
  std::map<std::string, std::string> done(set.begin(), set.end());
  std::vector<std::string> active;
  std::function<const std::string*(const std::string&)> get = [&](const std::string& name) -> const std::string* {
    if (auto it = done.find(name); it != done.end()) {
      return &it->second;
    }
    auto it = raw.find(name);
    if (it == raw.end()) {
      return nullptr;
    }
    if (std::find(active.begin(), active.end(), name) != active.end()) {
      std::string names;
      for (const auto& a : active) {
        names += a + " -> ";
      }
      diags.error(it->second->location, "variable cycle: " + names + name);
      done[name] = "";
      return &done[name];
    }
    active.push_back(name);
    std::string out;
    expand(it->second->scalar, it->second->location, get, out, diags, budget, required);
    active.pop_back();
    done[name] = out;
    return &done[name];
  };
  for (const auto& [name, value] : raw) {
    get(name);
  }
  // Write the final values back, so `kiln plan` shows what was used.
  if (vars != nullptr && vars->is_mapping()) {
    for (auto& [k, v] : vars->entries) {
      if (auto it = done.find(k.scalar); it != done.end()) {
        v = Value::make_scalar(it->second, v.location);
      }
    }
  }
  for (const auto& [name, value] : set) {
    if (raw.count(name) == 0) {
      if (vars == nullptr || !vars->is_mapping()) {
        doc.set(Value::make_scalar("vars"), Value::make_mapping());
        vars = doc.find("vars");
      }
      vars->set(Value::make_scalar(name), Value::make_scalar(value));
    }
  }
  return done;
}

} // namespace

Recipe
load_recipe(const fs::path& path, const LoadOptions& options)
{
  fs::path absolute = fs::weakly_canonical(fs::absolute(path));
  if (!fs::is_regular_file(absolute)) {
    throw UsageError(path.string(), "no such recipe file");
  }
  Diagnostics diags;
  ChainLoader loader{diags, {}, {}};
  Value doc = loader.load(absolute, {absolute.string(), 0, 0});
  diags.checkpoint();

  ExpandBudget budget;
  std::map<std::string, Location> required;
  std::map<std::string, std::string> vars = resolve_vars(doc, options.set, diags, budget, required);
  std::set<std::string> used;
  for (auto& [key, value] : doc.entries) {
    if (key.scalar != "vars") {
      substitute_within(value, vars, diags, budget, required, &used);
    }
  }
  // A required variable is required even where nothing uses it (yet): a recipe that
  // declares it means the builder to think about it.
  for (const auto& [name, declared] : required) {
    if (used.count(name) == 0) {
      diags.error(declared, "variable '" + name + "' is required: give it with --set " + name + "=VALUE");
    }
  }
  // No checkpoint here: validation still runs so that every problem is reported at once,
  // except what a value that could not be resolved would add at its own place.
  std::vector<Location> unresolved;
  for (const auto& d : diags.items()) {
    unresolved.push_back(d.location);
  }
  const size_t validation = diags.items().size();

  Recipe recipe = build_model(doc, options, diags);
  diags.drop_echoes(validation, unresolved);
  diags.checkpoint();
  recipe.file = absolute.string();
  recipe.chain = loader.chain;
  recipe.vars = vars;
  recipe.tree = std::move(doc);
  return recipe;
}

} // namespace kiln::recipe
