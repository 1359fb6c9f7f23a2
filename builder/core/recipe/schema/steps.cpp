#include "core/recipe/schema/steps.hpp"

#include "core/recipe/schema/reader.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>
#include <utility>

namespace kiln::recipe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using detail::MapReader;

// What a kind's reader gets: the body under the step key and the recipe's options.
struct StepInput {
  const Value& body;
  std::string what; // "'KIND' step", for messages
  const LoadOptions& options;
  Diagnostics& diags;
};

// A body that must be a mapping: read by `Read`, its other keys reported as unknown.
template <class T, std::optional<T> (*Read)(MapReader&, const StepInput&)>
std::optional<T>
mapped(const StepInput& in)
{
  MapReader r(in.body, in.what, in.diags);
  if (!r.ok()) {
    return std::nullopt;
  }
  std::optional<T> step = Read(r, in);
  r.finish();
  return step;
}

// Host paths are not part of a stage's definition (the checkout may move between
// runs); the inputs' digests are. Only the file name is kept, for readability.
std::optional<std::string>
file_name(const std::optional<std::string>& path)
{
  if (!path) {
    return std::nullopt;
  }
  return fs::path(*path).filename().string();
}

template <class T>
void
put_optional(json& j, const char* key, const std::optional<T>& value)
{
  if (value) {
    j[key] = *value;
  }
}

// Source of a unit, file or script: exactly one of `content`-like key or `src`.
void
content_or_source(MapReader& r, const std::string& content_key, std::optional<std::string>& content,
                  std::optional<std::string>& source, bool required)
{
  content = r.string(content_key);
  source = r.local_file("src");
  const Value* c = r.get(content_key);
  const Value* s = r.get("src");
  if (c != nullptr && s != nullptr) {
    r.diags().error(s->location, "give either " + content_key + " or src, not both");
  } else if (required && c == nullptr && s == nullptr && r.ok()) {
    r.diags().error(r.location(), "missing " + content_key + " or src");
  }
}

// The local file of a step given with `src:`, as an input of the step's own kind.
template <class T>
std::vector<StepSource>
own_source(const T& step)
{
  if (!step.source) {
    return {};
  }
  return {{"", *step.source, false}};
}

// --- file -------------------------------------------------------------------------

std::optional<FileStep>
read_file(MapReader& r, const StepInput&)
{
  FileStep step;
  step.path = r.guest_path("path", true).value_or("");
  content_or_source(r, "content", step.content, step.source, true);
  step.mode = r.mode("mode").value_or(0644);
  step.owner = r.string("owner").value_or("root");
  step.group = r.string("group").value_or("root");
  return step;
}

json
describe_file(const FileStep& s)
{
  json j = {{"path", s.path}, {"mode", s.mode}, {"owner", s.owner}, {"group", s.group}};
  put_optional(j, "content", s.content);
  put_optional(j, "src", file_name(s.source));
  return j;
}

// --- overlay ----------------------------------------------------------------------

fs::path
find_overlay(const std::string& name, const Location& loc, const LoadOptions& options)
{
  if (name.find('/') != std::string::npos) {
    return detail::beside_recipe(name, loc);
  }
  for (const auto& dir : options.overlay_dirs) {
    if (fs::is_directory(dir / name)) {
      return fs::absolute(dir / name);
    }
  }
  for (fs::path dir = fs::path(loc.file).parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "overlays" / name)) {
      return dir / "overlays" / name;
    }
    if (dir == dir.root_path()) {
      break;
    }
  }
  return {};
}

std::optional<OverlayStep>
read_overlay_map(MapReader& r, const StepInput& in)
{
  OverlayStep step;
  step.name = r.string("name", true).value_or("");
  step.dest = r.guest_path("dest").value_or("/");
  step.owner = r.string("owner").value_or("root");
  step.group = r.string("group").value_or("root");
  if (!step.name.empty()) {
    fs::path dir = find_overlay(step.name, r.get("name")->location, in.options);
    if (dir.empty() || !fs::is_directory(dir)) {
      in.diags.error(r.get("name")->location, "overlay '" + step.name + "' not found");
    } else {
      step.source = dir.string();
    }
  }
  return step;
}

// `overlay: NAME` or a mapping with name, dest, owner and group.
std::optional<OverlayStep>
read_overlay(const StepInput& in)
{
  const Value& body = in.body;
  if (!body.is_scalar()) {
    return mapped<OverlayStep, read_overlay_map>(in);
  }
  fs::path dir = find_overlay(body.scalar, body.location, in.options);
  if (dir.empty() || !fs::is_directory(dir)) {
    in.diags.error(body.location, "overlay '" + body.scalar + "' not found (looked for overlays/" + body.scalar +
                                    " beside the recipe and in its parent folders)");
    return std::nullopt;
  }
  OverlayStep step;
  step.name = body.scalar;
  step.source = dir.string();
  return step;
}

json
describe_overlay(const OverlayStep& s)
{
  return {{"name", s.name}, {"dest", s.dest}, {"owner", s.owner}, {"group", s.group}};
}

std::vector<StepSource>
overlay_sources(const OverlayStep& s)
{
  return {{"overlay", s.source, true}};
}

// --- edit -------------------------------------------------------------------------

// `each:` of an edit step: a list (or one comma-separated string, as `--set a,b` gives)
// whose items each get a copy of `line`, with {} replaced by the item. Resolved here, so
// `kiln plan` shows the lines the image gets.
constexpr size_t k_max_each_items = 256;

void
expand_each(MapReader& r, const Value& each, EditStep& step)
{
  Diagnostics& diags = r.diags();
  std::vector<std::string> items;
  for (const auto& raw : r.as_list(each, "each")) {
    if (each.is_sequence()) {
      items.push_back(raw);
      continue;
    }
    for (size_t from = 0;;) {
      size_t comma = raw.find(',', from);
      items.push_back(raw.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
      if (comma == std::string::npos) {
        break;
      }
      from = comma + 1;
    }
  }
  const std::string shown = each.is_scalar() ? "'" + each.scalar + "'" : describe(each);
  if (items.empty()) {
    diags.error(each.location, "each: the list is empty (give at least one item)");
  } else if (items.size() > k_max_each_items) {
    diags.error(each.location,
                "each: " + std::to_string(items.size()) + " items, at most " + std::to_string(k_max_each_items));
    return;
  }
  if (!step.line || step.line->find("{}") == std::string::npos) {
    diags.error(each.location, "'edit' step: each needs a line with {} where each item goes");
    return;
  }
  static const std::regex item_re(R"([^\s\x00-\x1f\x7f]+)");
  for (auto item : items) {
    while (!item.empty() && item.front() == ' ') {
      item.erase(0, 1);
    }
    while (!item.empty() && item.back() == ' ') {
      item.pop_back();
    }
    if (!std::regex_match(item, item_re)) {
      diags.error(each.location, "each: item '" + item + "' of " + shown + " must be one word (no spaces, not empty)");
      continue;
    }
    std::string line = *step.line;
    for (size_t at = line.find("{}"); at != std::string::npos; at = line.find("{}", at + item.size())) {
      line.replace(at, 2, item);
    }
    step.lines.push_back(std::move(line));
  }
}

std::optional<EditStep>
read_edit(MapReader& r, const StepInput& in)
{
  Diagnostics& diags = in.diags;
  EditStep step;
  step.path = r.guest_path("path", true).value_or("");
  if (const Value* set = r.get("set")) {
    if (!set->is_mapping()) {
      diags.error(set->location, "set must be a mapping of KEY: VALUE, not " + describe(*set));
    } else {
      for (const auto& [k, v] : set->entries) {
        if (!v.is_scalar()) {
          diags.error(v.location, "set: value of '" + k.scalar + "' must be a scalar, not " + describe(v));
        } else {
          step.set[k.scalar] = v.scalar;
        }
      }
    }
  }
  step.separator = r.string("separator").value_or("=");
  step.match = r.string("match");
  step.line = r.string("line");
  if (step.match) {
    try {
      std::regex check(*step.match, std::regex::extended);
    } catch (const std::regex_error& e) {
      diags.error(r.get("match")->location, "match: not a valid regular expression: " + std::string(e.what()));
    }
    if (!step.line) {
      diags.error(r.location(), "'edit' step: match needs a line to put in place of the matching lines");
    }
  }
  if (const Value* each = r.get("each")) {
    expand_each(r, *each, step);
  }
  if (step.set.empty() && !step.line && r.ok()) {
    diags.error(r.location(), "'edit' step: give set (KEY: VALUE) or line (with an optional match)");
  }
  return step;
}

json
describe_edit(const EditStep& s)
{
  json j = {{"path", s.path}, {"set", s.set}, {"separator", s.separator}};
  put_optional(j, "match", s.match);
  put_optional(j, "line", s.line);
  if (!s.lines.empty()) {
    j["lines"] = s.lines;
  }
  return j;
}

// --- delete -----------------------------------------------------------------------

// `delete: PATH` or a list of paths.
std::optional<DeleteStep>
read_delete(const StepInput& in)
{
  MapReader dummy(Value::make_mapping(), in.what, in.diags);
  DeleteStep step;
  step.paths = dummy.as_list(in.body, "delete");
  for (const auto& p : step.paths) {
    if (p.empty() || p[0] != '/') {
      in.diags.error(in.body.location, "delete: '" + p + "' must be an absolute path in the image");
    }
  }
  return step;
}

json
describe_delete(const DeleteStep& s)
{
  return {{"paths", s.paths}};
}

// --- unit, systemd ----------------------------------------------------------------

const std::regex k_unit_name(R"([A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|mount|path|slice|automount|swap))");

std::optional<UnitStep>
read_unit(MapReader& r, const StepInput& in)
{
  UnitStep step;
  step.name = r.string("name", true).value_or("");
  if (!step.name.empty() && !std::regex_match(step.name, k_unit_name)) {
    in.diags.error(r.get("name")->location, "'" + step.name + "' is not a systemd unit name");
  }
  content_or_source(r, "content", step.content, step.source, true);
  return step;
}

json
describe_unit(const UnitStep& s)
{
  json j = {{"name", s.name}};
  put_optional(j, "content", s.content);
  put_optional(j, "src", file_name(s.source));
  return j;
}

std::optional<SystemdStep>
read_systemd(MapReader& r, const StepInput& in)
{
  SystemdStep step;
  for (auto [key, list] : {std::pair{"enable", &step.enable}, {"disable", &step.disable}, {"mask", &step.mask}}) {
    *list = r.list(key);
    if (const Value* v = r.get(key)) {
      for (const auto& name : *list) {
        if (!std::regex_match(name, k_unit_name)) {
          in.diags.error(v->location,
                         std::string(key) + ": '" + name + "' is not a systemd unit name (for example docker.service)");
        }
      }
    }
  }
  if (step.enable.empty() && step.disable.empty() && step.mask.empty()) {
    in.diags.error(r.location(), "'systemd' step: give enable, disable or mask");
  }
  return step;
}

json
describe_systemd(const SystemdStep& s)
{
  return {{"enable", s.enable}, {"disable", s.disable}, {"mask", s.mask}};
}

// --- group, user ------------------------------------------------------------------

std::optional<GroupStep>
read_group(MapReader& r, const StepInput&)
{
  GroupStep step;
  step.name = r.string("name", true).value_or("");
  step.gid = r.id("gid");
  step.system = r.boolean("system").value_or(false);
  return step;
}

json
describe_group(const GroupStep& s)
{
  json j = {{"name", s.name}, {"system", s.system}};
  put_optional(j, "gid", s.gid);
  return j;
}

std::optional<UserStep>
read_user(MapReader& r, const StepInput&)
{
  UserStep step;
  step.name = r.string("name", true).value_or("");
  step.uid = r.id("uid");
  step.group = r.string("group");
  step.groups = r.list("groups");
  step.home = r.guest_path("home");
  step.shell = r.guest_path("shell").value_or("/bin/bash");
  step.system = r.boolean("system").value_or(false);
  return step;
}

json
describe_user(const UserStep& s)
{
  json j = {{"name", s.name}, {"groups", s.groups}, {"shell", s.shell}, {"system", s.system}};
  put_optional(j, "uid", s.uid);
  put_optional(j, "group", s.group);
  put_optional(j, "home", s.home);
  return j;
}

// --- selinux ----------------------------------------------------------------------

std::optional<SelinuxStep>
read_selinux(MapReader& r, const StepInput&)
{
  SelinuxStep step;
  step.mode = r.one_of("mode", {"enforcing", "permissive", "disabled"}, true).value_or("");
  step.relabel = r.boolean("relabel").value_or(true);
  return step;
}

json
describe_selinux(const SelinuxStep& s)
{
  return {{"mode", s.mode}, {"relabel", s.relabel}};
}

// --- packages ---------------------------------------------------------------------

std::optional<PackagesStep>
read_packages(MapReader& r, const StepInput& in)
{
  Diagnostics& diags = in.diags;
  PackagesStep step;
  step.install = r.list("install");
  step.remove = r.list("remove");
  if (const Value* files = r.get("files")) {
    if (files->is_sequence()) {
      for (const auto& item : files->items) {
        if (auto f = r.as_local_file(item, "files")) {
          step.files.push_back(*f);
        }
      }
    } else {
      diags.error(files->location, "files must be a list of local package files, not " + describe(*files));
    }
  }
  if (const Value* repos = r.get("repos")) {
    if (!repos->is_sequence()) {
      diags.error(repos->location, "repos must be a list, not " + describe(*repos));
    } else {
      for (const auto& item : repos->items) {
        MapReader rr(item, "repository", diags);
        Repo repo;
        repo.name = rr.string("name", true).value_or("");
        repo.baseurl = rr.string("baseurl", true).value_or("");
        repo.gpgcheck = rr.boolean("gpgcheck").value_or(true);
        repo.gpgkey = rr.string("gpgkey");
        rr.finish();
        step.repos.push_back(repo);
      }
    }
  }
  step.network = r.boolean("network").value_or(false);
  if (step.install.empty() && step.remove.empty() && step.files.empty() && r.ok()) {
    diags.error(r.location(), "'packages' step: give install, remove or files");
  }
  return step;
}

json
describe_packages(const PackagesStep& s)
{
  json files = json::array();
  for (const auto& f : s.files) {
    files.push_back(fs::path(f).filename().string());
  }
  json repos = json::array();
  for (const auto& r : s.repos) {
    json rj = {{"name", r.name}, {"baseurl", r.baseurl}, {"gpgcheck", r.gpgcheck}};
    put_optional(rj, "gpgkey", r.gpgkey);
    repos.push_back(rj);
  }
  return {{"install", s.install}, {"remove", s.remove}, {"files", files}, {"repos", repos}, {"network", s.network}};
}

std::vector<StepSource>
packages_sources(const PackagesStep& s)
{
  std::vector<StepSource> out;
  for (const auto& f : s.files) {
    out.push_back({"package", f, false});
  }
  return out;
}

// --- run --------------------------------------------------------------------------

std::optional<RunStep>
read_run_map(MapReader& r, const StepInput&)
{
  auto command = r.string("command", true);
  return command ? std::optional<RunStep>(RunStep{*command}) : std::nullopt;
}

// `run: COMMAND` or a mapping with command.
std::optional<RunStep>
read_run(const StepInput& in)
{
  if (in.body.is_scalar()) {
    return RunStep{in.body.scalar};
  }
  return mapped<RunStep, read_run_map>(in);
}

json
describe_run(const RunStep& s)
{
  return {{"command", s.command}};
}

// --- firstboot --------------------------------------------------------------------

std::optional<FirstbootStep>
read_firstboot(MapReader& r, const StepInput& in)
{
  FirstbootStep step;
  step.name = r.string("name", true).value_or("");
  static const std::regex name_re("[A-Za-z0-9_.-]+");
  if (!step.name.empty() && !std::regex_match(step.name, name_re)) {
    in.diags.error(r.get("name")->location,
                   "firstboot name '" + step.name + "' may hold only letters, digits, '.', '_' and '-'");
  }
  content_or_source(r, "script", step.script, step.source, true);
  step.after = r.list("after");
  return step;
}

json
describe_firstboot(const FirstbootStep& s)
{
  json j = {{"name", s.name}, {"after", s.after}};
  put_optional(j, "script", s.script);
  put_optional(j, "src", file_name(s.source));
  return j;
}

// --- the table --------------------------------------------------------------------

// One entry: `parse` reads the body into T, `describe` and `sources` take a T.
template <class T>
StepKind
entry(std::string name, std::optional<T> (*parse)(const StepInput&), json (*describe)(const T&),
      std::vector<StepSource> (*sources)(const T&) = nullptr)
{
  StepKind kind;
  kind.name = std::move(name);
  kind.index = StepSpec(std::in_place_type<T>).index();
  kind.parse = [parse, what = "'" + kind.name + "' step"](const Value& body, const LoadOptions& options,
                                                          Diagnostics& diags) -> std::optional<StepSpec> {
    std::optional<T> step = parse(StepInput{body, what, options, diags});
    if (!step) {
      return std::nullopt;
    }
    return StepSpec(std::move(*step));
  };
  kind.describe = [describe](const StepSpec& spec) { return describe(std::get<T>(spec)); };
  kind.sources = [sources](const StepSpec& spec) {
    return sources != nullptr ? sources(std::get<T>(spec)) : std::vector<StepSource>{};
  };
  return kind;
}

std::vector<StepKind>
make_table()
{
  std::vector<StepKind> table = {
    entry<FileStep>("file", mapped<FileStep, read_file>, describe_file, own_source<FileStep>),
    entry<OverlayStep>("overlay", read_overlay, describe_overlay, overlay_sources),
    entry<EditStep>("edit", mapped<EditStep, read_edit>, describe_edit),
    entry<DeleteStep>("delete", read_delete, describe_delete),
    entry<UnitStep>("unit", mapped<UnitStep, read_unit>, describe_unit, own_source<UnitStep>),
    entry<SystemdStep>("systemd", mapped<SystemdStep, read_systemd>, describe_systemd),
    entry<GroupStep>("group", mapped<GroupStep, read_group>, describe_group),
    entry<UserStep>("user", mapped<UserStep, read_user>, describe_user),
    entry<SelinuxStep>("selinux", mapped<SelinuxStep, read_selinux>, describe_selinux),
    entry<PackagesStep>("packages", mapped<PackagesStep, read_packages>, describe_packages, packages_sources),
    entry<RunStep>("run", read_run, describe_run),
    entry<FirstbootStep>("firstboot", mapped<FirstbootStep, read_firstboot>, describe_firstboot,
                         own_source<FirstbootStep>),
  };
  static_assert(std::variant_size_v<StepSpec> == 12, "a new StepSpec alternative needs its entry here");
  return table;
}

} // namespace

const std::vector<StepKind>&
step_table()
{
  static const std::vector<StepKind> table = make_table();
  return table;
}

const std::vector<std::string>&
step_kinds()
{
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> out;
    for (const auto& kind : step_table()) {
      out.push_back(kind.name);
    }
    return out;
  }();
  return kinds;
}

const StepKind*
find_step_kind(const std::string& name)
{
  const auto& table = step_table();
  auto it = std::find_if(table.begin(), table.end(), [&](const StepKind& k) { return k.name == name; });
  return it == table.end() ? nullptr : &*it;
}

const StepKind&
step_kind_of(const StepSpec& spec)
{
  const auto& table = step_table();
  auto it = std::find_if(table.begin(), table.end(), [&](const StepKind& k) { return k.index == spec.index(); });
  if (it == table.end()) {
    throw Error("recipe", "no step kind reads into alternative " + std::to_string(spec.index()) + " of StepSpec");
  }
  return *it;
}

namespace detail {

std::optional<Step>
read_step(const Value& item, const LoadOptions& options, Diagnostics& diags)
{
  if (!item.is_mapping() || item.entries.size() != 1) {
    diags.error(item.location,
                "a step must be a mapping with exactly one key, the step kind (" + join(step_kinds()) + ")");
    return std::nullopt;
  }
  const auto& [key, body] = item.entries.front();
  const StepKind* kind = find_step_kind(key.scalar);
  if (kind == nullptr) {
    const auto& kinds = step_kinds();
    diags.error(key.location,
                "unknown step '" + key.scalar + "' (known: " + join(kinds) + ")" + suggestion(key.scalar, kinds));
    return std::nullopt;
  }
  auto spec = kind->parse(body, options, diags);
  if (!spec) {
    return std::nullopt;
  }
  return Step{key.scalar, std::move(*spec), key.location};
}

} // namespace detail

} // namespace kiln::recipe
