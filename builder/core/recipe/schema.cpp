#include "core/recipe/schema.hpp"

#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/slots/abi.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <limits>
#include <regex>
#include <set>

namespace kiln::recipe {

namespace fs = std::filesystem;

const std::vector<std::string>&
step_kinds()
{
  static const std::vector<std::string> kinds = {"file",  "overlay", "edit",    "delete",   "unit", "systemd",
                                                 "group", "user",    "selinux", "packages", "run",  "firstboot"};
  return kinds;
}

const std::vector<std::string>&
output_formats()
{
  static const std::vector<std::string> formats = {"qcow2", "raw", "vmdk", "vhd", "pxe"};
  return formats;
}

std::optional<std::uint64_t>
parse_size(const std::string& text)
{
  static const std::regex re(R"(\s*([0-9]+)\s*([KMGT]?)(i?B)?\s*)", std::regex::icase);
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  try {
    value = std::stoull(m[1].str());
  } catch (...) {
    return std::nullopt;
  }
  int shift = 0;
  if (m[2].length() > 0) {
    shift = 10 * static_cast<int>(std::string("KMGT").find(static_cast<char>(std::toupper(m[2].str()[0]))) + 1);
  }
  if (shift > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return std::nullopt;
  }
  return value << shift;
}

namespace {

size_t
edit_distance(const std::string& a, const std::string& b)
{
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string
suggestion(const std::string& key, const std::vector<std::string>& known)
{
  std::string best;
  size_t best_distance = 3; // only close matches are worth suggesting
  for (const auto& candidate : known) {
    size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string
join(const std::vector<std::string>& items, const std::string& sep = ", ")
{
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : sep) + item;
  }
  return out;
}

// Reads the keys of one mapping. Every key asked for is remembered; finish()
// reports the rest as unknown. A missing mapping reports once and yields nothing.
class MapReader {
public:
  MapReader(const Value& map, std::string what, Diagnostics& diags)
    : m_map(map), m_what(std::move(what)), m_diags(diags)
  {
    if (!map.is_mapping()) {
      diags.error(map.location, m_what + " must be a mapping, not " + describe(map));
      m_ok = false;
    }
  }

  bool ok() const { return m_ok; }
  const Location& location() const { return m_map.location; }
  Diagnostics& diags() { return m_diags; }

  const Value* get(const std::string& key)
  {
    m_known.push_back(key);
    return m_ok ? m_map.find(key) : nullptr;
  }

  const Value* require(const std::string& key)
  {
    const Value* v = get(key);
    if (v == nullptr && m_ok) {
      m_diags.error(m_map.location, m_what + ": missing required field '" + key + "'");
    }
    return v;
  }

  void finish()
  {
    if (!m_ok) {
      return;
    }
    for (const auto& [k, v] : m_map.entries) {
      if (std::find(m_known.begin(), m_known.end(), k.scalar) == m_known.end()) {
        m_diags.error(k.location,
                      "unknown key " + quote_token(k.scalar) + " in " + m_what + suggestion(k.scalar, m_known));
      }
    }
  }

  // Typed accessors: each reports a type error and returns nullopt.
  std::optional<std::string> string(const std::string& key, bool required = false)
  {
    const Value* v = required ? require(key) : get(key);
    return v == nullptr ? std::nullopt : as_string(*v, key);
  }

  std::optional<std::string> as_string(const Value& v, const std::string& key)
  {
    if (!v.is_scalar()) {
      m_diags.error(v.location, key + " must be a string, not " + describe(v));
      return std::nullopt;
    }
    return v.scalar;
  }

  std::optional<bool> boolean(const std::string& key)
  {
    const Value* v = get(key);
    if (v == nullptr) {
      return std::nullopt;
    }
    if (v->is_scalar() && !v->quoted && (v->scalar == "true" || v->scalar == "false")) {
      return v->scalar == "true";
    }
    m_diags.error(v->location,
                  key + " must be true or false, not " + (v->is_scalar() ? quote_token(v->scalar) : describe(*v)));
    return std::nullopt;
  }

  std::optional<std::uint32_t> id(const std::string& key)
  {
    const Value* v = get(key);
    if (v == nullptr) {
      return std::nullopt;
    }
    static const std::regex digits("[0-9]{1,10}");
    if (v->is_scalar() && std::regex_match(v->scalar, digits)) {
      std::uint64_t n = std::stoull(v->scalar);
      if (n < 4294967295ULL) {
        return static_cast<std::uint32_t>(n);
      }
    }
    m_diags.error(v->location, key + " must be a whole number from 0 to 4294967294, not " +
                                 (v->is_scalar() ? quote_token(v->scalar) : describe(*v)));
    return std::nullopt;
  }

  std::optional<std::string> one_of(const std::string& key, const std::vector<std::string>& allowed,
                                    bool required = false)
  {
    auto s = string(key, required);
    if (s && std::find(allowed.begin(), allowed.end(), *s) == allowed.end()) {
      m_diags.error(m_map.find(key)->location,
                    key + " must be one of " + join(allowed) + ", not " + quote_token(*s) + suggestion(*s, allowed));
      return std::nullopt;
    }
    return s;
  }

  std::vector<std::string> list(const std::string& key, bool required = false)
  {
    const Value* v = required ? require(key) : get(key);
    return v == nullptr ? std::vector<std::string>{} : as_list(*v, key);
  }

  std::vector<std::string> as_list(const Value& v, const std::string& key)
  {
    std::vector<std::string> out;
    if (v.is_scalar()) {
      out.push_back(v.scalar); // a single item may be written without brackets
    } else if (v.is_sequence()) {
      for (const auto& item : v.items) {
        if (item.is_scalar()) {
          out.push_back(item.scalar);
        } else {
          m_diags.error(item.location, key + " items must be strings, not " + describe(item));
        }
      }
    } else if (!v.is_null()) {
      m_diags.error(v.location, key + " must be a list of strings, not " + describe(v));
    }
    return out;
  }

  std::optional<unsigned> mode(const std::string& key)
  {
    const Value* v = get(key);
    if (v == nullptr) {
      return std::nullopt;
    }
    static const std::regex octal("0?[0-7]{3,4}");
    if (v->is_scalar() && std::regex_match(v->scalar, octal)) {
      return static_cast<unsigned>(std::stoul(v->scalar, nullptr, 8));
    }
    m_diags.error(v->location, key + " must be an octal mode such as 0644, not " +
                                 (v->is_scalar() ? quote_token(v->scalar) : describe(*v)));
    return std::nullopt;
  }

  std::optional<std::string> sha256(const std::string& key)
  {
    auto s = string(key);
    if (s && !crypto::is_sha256_hex(*s)) {
      m_diags.error(m_map.find(key)->location, key + " must be 64 lower-case hex digits, not " + quote_token(*s) +
                                                 " (" + std::to_string(s->size()) + " characters)");
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::uint64_t> size(const std::string& key)
  {
    auto s = string(key);
    if (!s) {
      return std::nullopt;
    }
    auto bytes = parse_size(*s);
    if (!bytes || *bytes == 0) {
      m_diags.error(m_map.find(key)->location,
                    key + " must be a size such as 4G, 512M or 1048576, not " + quote_token(*s));
      return std::nullopt;
    }
    return bytes;
  }

  // An absolute guest path.
  std::optional<std::string> guest_path(const std::string& key, bool required = false)
  {
    auto s = string(key, required);
    if (s && (s->empty() || (*s)[0] != '/')) {
      m_diags.error(m_map.find(key)->location, key + " must be an absolute path in the image, not " + quote_token(*s));
      return std::nullopt;
    }
    return s;
  }

  // A local file on the build host, relative to the recipe file that names it.
  std::optional<std::string> local_file(const std::string& key, bool required = false)
  {
    const Value* v = required ? require(key) : get(key);
    return v == nullptr ? std::nullopt : as_local_file(*v, key);
  }

  std::optional<std::string> as_local_file(const Value& v, const std::string& key)
  {
    auto s = as_string(v, key);
    if (!s) {
      return std::nullopt;
    }
    fs::path p = fs::path(*s).is_absolute() ? fs::path(*s) : fs::path(v.location.file).parent_path() / *s;
    p = p.lexically_normal();
    if (!fs::is_regular_file(p)) {
      m_diags.error(v.location, key + ": no such file '" + p.string() + "'");
      return std::nullopt;
    }
    return p.string();
  }

private:
  const Value& m_map;
  std::string m_what;
  Diagnostics& m_diags;
  bool m_ok = true;
  std::vector<std::string> m_known;
};

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

const std::regex k_unit_name(R"([A-Za-z0-9:_.@\\-]+\.(service|socket|target|timer|mount|path|slice|automount|swap))");

void
check_unit_names(const std::vector<std::string>& names, const Value* where, const std::string& key, Diagnostics& diags)
{
  for (const auto& name : names) {
    if (!std::regex_match(name, k_unit_name)) {
      diags.error(where->location, key + ": '" + name + "' is not a systemd unit name (for example docker.service)");
    }
  }
}

fs::path
find_overlay(const std::string& name, const Location& loc, const LoadOptions& options)
{
  if (name.find('/') != std::string::npos) {
    fs::path p = fs::path(name).is_absolute() ? fs::path(name) : fs::path(loc.file).parent_path() / name;
    return p.lexically_normal();
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

std::optional<StepSpec>
read_step(const std::string& kind, const Value& body, const LoadOptions& options, Diagnostics& diags)
{
  const std::string what = "'" + kind + "' step";
  if (kind == "run") {
    if (body.is_scalar()) {
      return RunStep{body.scalar};
    }
    MapReader r(body, what, diags);
    auto command = r.string("command", true);
    r.finish();
    return command ? std::optional<StepSpec>(RunStep{*command}) : std::nullopt;
  }
  if (kind == "overlay" && body.is_scalar()) {
    fs::path dir = find_overlay(body.scalar, body.location, options);
    if (dir.empty() || !fs::is_directory(dir)) {
      diags.error(body.location, "overlay '" + body.scalar + "' not found (looked for overlays/" + body.scalar +
                                   " beside the recipe and in its parent folders)");
      return std::nullopt;
    }
    OverlayStep step;
    step.name = body.scalar;
    step.source = dir.string();
    return step;
  }
  if (kind == "delete") {
    MapReader dummy(Value::make_mapping(), what, diags);
    DeleteStep step;
    step.paths = dummy.as_list(body, "delete");
    for (const auto& p : step.paths) {
      if (p.empty() || p[0] != '/') {
        diags.error(body.location, "delete: '" + p + "' must be an absolute path in the image");
      }
    }
    return step;
  }

  MapReader r(body, what, diags);
  if (!r.ok()) {
    return std::nullopt;
  }
  std::optional<StepSpec> out;
  if (kind == "file") {
    FileStep step;
    step.path = r.guest_path("path", true).value_or("");
    content_or_source(r, "content", step.content, step.source, true);
    step.mode = r.mode("mode").value_or(0644);
    step.owner = r.string("owner").value_or("root");
    step.group = r.string("group").value_or("root");
    out = step;
  } else if (kind == "overlay") {
    OverlayStep step;
    step.name = r.string("name", true).value_or("");
    step.dest = r.guest_path("dest").value_or("/");
    step.owner = r.string("owner").value_or("root");
    step.group = r.string("group").value_or("root");
    if (!step.name.empty()) {
      fs::path dir = find_overlay(step.name, r.get("name")->location, options);
      if (dir.empty() || !fs::is_directory(dir)) {
        diags.error(r.get("name")->location, "overlay '" + step.name + "' not found");
      } else {
        step.source = dir.string();
      }
    }
    out = step;
  } else if (kind == "edit") {
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
    out = step;
  } else if (kind == "unit") {
    UnitStep step;
    step.name = r.string("name", true).value_or("");
    if (!step.name.empty() && !std::regex_match(step.name, k_unit_name)) {
      diags.error(r.get("name")->location, "'" + step.name + "' is not a systemd unit name");
    }
    content_or_source(r, "content", step.content, step.source, true);
    out = step;
  } else if (kind == "systemd") {
    SystemdStep step;
    for (auto [key, list] : {std::pair{"enable", &step.enable}, {"disable", &step.disable}, {"mask", &step.mask}}) {
      *list = r.list(key);
      if (const Value* v = r.get(key)) {
        check_unit_names(*list, v, key, diags);
      }
    }
    if (step.enable.empty() && step.disable.empty() && step.mask.empty()) {
      diags.error(r.location(), "'systemd' step: give enable, disable or mask");
    }
    out = step;
  } else if (kind == "group") {
    GroupStep step;
    step.name = r.string("name", true).value_or("");
    step.gid = r.id("gid");
    step.system = r.boolean("system").value_or(false);
    out = step;
  } else if (kind == "user") {
    UserStep step;
    step.name = r.string("name", true).value_or("");
    step.uid = r.id("uid");
    step.group = r.string("group");
    step.groups = r.list("groups");
    step.home = r.guest_path("home");
    step.shell = r.guest_path("shell").value_or("/bin/bash");
    step.system = r.boolean("system").value_or(false);
    out = step;
  } else if (kind == "selinux") {
    SelinuxStep step;
    step.mode = r.one_of("mode", {"enforcing", "permissive", "disabled"}, true).value_or("");
    step.relabel = r.boolean("relabel").value_or(true);
    out = step;
  } else if (kind == "packages") {
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
    out = step;
  } else if (kind == "firstboot") {
    FirstbootStep step;
    step.name = r.string("name", true).value_or("");
    static const std::regex name_re("[A-Za-z0-9_.-]+");
    if (!step.name.empty() && !std::regex_match(step.name, name_re)) {
      diags.error(r.get("name")->location,
                  "firstboot name '" + step.name + "' may hold only letters, digits, '.', '_' and '-'");
    }
    content_or_source(r, "script", step.script, step.source, true);
    step.after = r.list("after");
    out = step;
  }
  r.finish();
  return out;
}

BaseImage
read_base(const Value& v, const LoadOptions& options, Diagnostics& diags)
{
  BaseImage base;
  base.location = v.location;
  MapReader r(v, "base", diags);
  if (!r.ok()) {
    return base;
  }
  const Value* url = r.get("url");
  const Value* bootstrap = r.get("bootstrap");
  const Value* path = r.get("path");
  int given = (url != nullptr) + (bootstrap != nullptr) + (path != nullptr);
  if (given != 1) {
    diags.error(v.location, given == 0 ? "base: give one of url, bootstrap or path"
                                       : "base: give only one of url, bootstrap or path");
  }
  if (url != nullptr) {
    base.kind = BaseImage::Kind::url;
    if (auto u = r.string("url")) {
      static const std::regex scheme("(https?|file)://.+");
      if (!std::regex_match(*u, scheme)) {
        diags.error(url->location, "url must start with http://, https:// or file://, not " + quote_token(*u));
      }
      base.urls.push_back(*u);
    }
    for (const auto& m : r.list("mirrors")) {
      base.urls.push_back(m);
    }
    base.sha256 = r.sha256("sha256");
    if (!base.sha256 && r.get("sha256") == nullptr && !options.allow_unpinned) {
      diags.error(v.location, "base: missing required field 'sha256' (a remote input must be pinned; "
                              "--allow-unpinned accepts it unverified)");
    }
    base.size = r.size("size");
    base.format = r.one_of("format", {"qcow2", "raw"}).value_or("qcow2");
  } else if (bootstrap != nullptr) {
    base.kind = BaseImage::Kind::bootstrap;
    MapReader b(*bootstrap, "base.bootstrap", diags);
    base.suite = b.string("suite", true).value_or("");
    base.mirror = b.string("mirror").value_or("");
    base.variant = b.one_of("variant", {"minbase", "required", "important", "standard"}).value_or("minbase");
    base.packages = b.list("packages");
    b.finish();
    base.format = "qcow2";
  } else if (path != nullptr) {
    base.kind = BaseImage::Kind::path;
    if (auto p = r.local_file("path")) {
      base.path = *p;
    }
    base.sha256 = r.sha256("sha256");
    std::string guess = "qcow2";
    if (base.path.ends_with(".raw") || base.path.ends_with(".img")) {
      guess = "raw";
    } else if (base.path.find(".tar") != std::string::npos) {
      guess = "tar";
    }
    base.format = r.one_of("format", {"qcow2", "raw", "tar"}).value_or(guess);
  }
  r.finish();
  return base;
}

// A whole number from `low` to `high`, written as a plain scalar.
std::optional<unsigned>
read_number(MapReader& r, const std::string& key, unsigned low, unsigned high)
{
  const Value* v = r.get(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  static const std::regex digits("[0-9]{1,6}");
  if (v->is_scalar() && std::regex_match(v->scalar, digits)) {
    unsigned n = static_cast<unsigned>(std::stoul(v->scalar));
    if (n >= low && n <= high) {
      return n;
    }
  }
  r.diags().error(v->location, key + " must be a whole number from " + std::to_string(low) + " to " +
                                 std::to_string(high) + ", not " +
                                 (v->is_scalar() ? quote_token(v->scalar) : describe(*v)));
  return std::nullopt;
}

// `ab:` -- sizes, file systems, boot tries and kernel arguments of the A/B layout.
void
read_ab(const Value& v, Recipe& recipe, Diagnostics& diags)
{
  AbLayout& ab = recipe.ab;
  ab.location = v.location;
  MapReader r(v, "ab", diags);
  if (!r.ok()) {
    return;
  }
  // Lower bounds: FAT needs room for its clusters, XFS (xfsprogs >= 5.19) refuses < 300 MiB.
  auto sized = [&](const std::string& key, std::uint64_t& field, std::uint64_t min, const char* why) {
    if (auto bytes = r.size(key)) {
      if (*bytes < min) {
        diags.error(r.get(key)->location, key + " must be at least " + std::to_string(min >> 20) + "M (" + why + ")");
      } else if (*bytes % (1 << 20) != 0) {
        diags.error(r.get(key)->location, key + " must be a whole number of MiB (partitions are MiB-aligned)");
      } else {
        field = *bytes;
      }
    }
  };
  sized("esp_size", ab.esp_size, 32ull << 20, "a FAT file system for the EFI loader");
  sized("boot_size", ab.boot_size, 32ull << 20, "GRUB's modules for BIOS and UEFI");
  sized("slot_size", ab.slot_size, 512ull << 20, "a root file system");
  sized("data_size", ab.data_size, 512ull << 20, "docker, mesos and logs");
  ab.root_fs = r.one_of("root_fs", {"xfs", "ext4"}).value_or("xfs");
  ab.data_fs = r.one_of("data_fs", {"xfs", "ext4"}).value_or("xfs");
  ab.tries = read_number(r, "tries", 1, 9).value_or(3);
  ab.panic = read_number(r, "panic", 1, 3600).value_or(10);
  ab.grow_data = r.boolean("grow_data").value_or(true);
  ab.kernel_args = r.list("kernel_args");
  static const std::regex word(R"([^\s\x00-\x1f\x7f]+)");
  for (const auto& arg : ab.kernel_args) {
    if (!std::regex_match(arg, word)) {
      diags.error(r.get("kernel_args")->location, "kernel_args: '" + arg + "' must be one word (no whitespace)");
    } else if (arg.rfind("root=", 0) == 0 || arg.rfind("kiln.slot=", 0) == 0) {
      diags.error(r.get("kernel_args")->location,
                  "kernel_args: '" + arg + "' is set by kiln for each slot (root=PARTUUID=..., kiln.slot=A|B)");
    }
  }
  if (const Value* node = r.get("node")) {
    // A ROOT tree (usr/bin/kiln-node, usr/lib/kiln/node/VERSION) or one executable.
    if (auto s = r.string("node")) {
      fs::path p = fs::path(*s).is_absolute() ? fs::path(*s) : fs::path(node->location.file).parent_path() / *s;
      p = p.lexically_normal();
      std::error_code ec;
      if (s->empty() || !fs::exists(p, ec)) {
        diags.error(node->location, "node: no kiln-node artifact '" + p.string() + "' (a directory or an executable)");
      } else if (fs::is_directory(p, ec) && !fs::is_regular_file(p / k_node_artifact_bin, ec)) {
        diags.error(node->location, "node: '" + p.string() + "' has no " + std::string(k_node_artifact_bin));
      } else if (!fs::is_directory(p, ec) && !fs::is_regular_file(p, ec)) {
        diags.error(node->location, "node: '" + p.string() + "' is neither a directory nor a file");
      } else {
        ab.node = p.string();
      }
    }
  }
  r.finish();
  if (recipe.layout != "ab") {
    diags.error(v.location, "ab: applies only with layout: ab");
  }
}

// `trust:` -- public keys (and a revocation list) for /etc/kiln/trust.d.
std::optional<TrustSpec>
read_trust(const Value& v, Diagnostics& diags)
{
  TrustSpec trust;
  trust.location = v.location;
  MapReader r(v, "trust", diags);
  if (!r.ok()) {
    return std::nullopt;
  }
  const Value* keys = r.require("keys");
  if (keys != nullptr) {
    std::vector<Value> items = keys->is_sequence() ? keys->items : std::vector<Value>{*keys};
    if (items.empty()) {
      diags.error(keys->location, "trust: keys must name at least one public key file");
    }
    std::set<std::string> names;
    for (const auto& item : items) {
      if (auto f = r.as_local_file(item, "keys")) {
        std::string name = fs::path(*f).stem().string() + ".pem";
        if (!names.insert(name).second) {
          diags.error(item.location, "keys: two keys would both be installed as " + name);
          continue;
        }
        try {
          crypto::load_public_key(*f);
        } catch (const Error& e) {
          diags.error(item.location, "keys: " + std::string(e.what()));
          continue;
        }
        trust.keys.push_back(*f);
      }
    }
  }
  trust.revoked = r.local_file("revoked");
  r.finish();
  return trust;
}

// The trust keys become an implicit last stage of file steps, so they are cached and
// keyed like any stage (their digests are its inputs) and `kiln plan` shows them.
void
add_trust_stage(Recipe& recipe, Diagnostics& diags)
{
  const std::string dir = std::string(slots::k_trust_dir);
  Stage stage;
  stage.name = "trust";
  stage.location = recipe.trust->location;
  for (const auto& s : recipe.stages) {
    if (s.name == stage.name) {
      diags.error(s.location, "stage name 'trust' is reserved for the trust: keys");
      return;
    }
  }
  auto file = [&](const std::string& src, const std::string& name) {
    FileStep f;
    f.path = dir + "/" + name;
    f.source = src;
    f.mode = 0644;
    stage.steps.push_back({"file", f, recipe.trust->location});
  };
  for (const auto& key : recipe.trust->keys) {
    file(key, fs::path(key).stem().string() + ".pem");
  }
  if (recipe.trust->revoked) {
    file(*recipe.trust->revoked, crypto::k_revocation_list_name);
  }
  recipe.stages.push_back(std::move(stage));
}

// `dcos:` -- the cluster's genconf/serve tree (a local directory, relative to the recipe
// file, or the bootstrap node's http(s) URL), the default role and the DC/OS version.
// The tree itself is validated at build time, before any image is touched.
DcosSpec
read_dcos(const Value& v, Diagnostics& diags)
{
  DcosSpec dcos;
  dcos.location = v.location;
  MapReader r(v, "dcos", diags);
  if (const Value* b = r.require("bundle")) {
    if (auto s = r.as_string(*b, "bundle")) {
      if (s->rfind("http://", 0) == 0 || s->rfind("https://", 0) == 0) {
        dcos.bundle = *s;
      } else if (s->find("://") != std::string::npos) {
        diags.error(b->location, "bundle must be a local directory or an http(s) URL, not '" + *s + "'");
      } else {
        fs::path p = fs::path(*s).is_absolute() ? fs::path(*s) : fs::path(b->location.file).parent_path() / *s;
        p = p.lexically_normal();
        if (!fs::is_directory(p)) {
          diags.error(b->location, "bundle: no such directory '" + p.string() + "' (the cluster's genconf/serve)");
        }
        dcos.bundle = p.string();
      }
    }
  }
  dcos.role = r.one_of("role", {"master", "slave", "slave_public"}, true).value_or("");
  if (auto ver = r.string("version")) {
    static const std::regex version_re(R"([0-9]+\.[0-9]+(\.([0-9]+|x))?)");
    if (!std::regex_match(*ver, version_re)) {
      diags.error(r.get("version")->location, "version must look like 2.2.1, 2.2.x or 1.13, not " + quote_token(*ver));
    } else {
      dcos.version = *ver;
    }
  }
  r.finish();
  return dcos;
}

// DC/OS agents want 20 GB free under /var: an agent's kiln-data (docker, mesos, logs) that
// is never grown must be that big already.
void
check_agent_data(const Value& doc, const Recipe& recipe, Diagnostics& diags)
{
  const AbLayout& ab = recipe.ab;
  const std::string& role = recipe.dcos->role;
  if ((role != "slave" && role != "slave_public") || ab.grow_data) {
    return;
  }
  std::uint64_t size = ab.data_size != 0 ? ab.data_size : k_default_data_size;
  if (size >= k_dcos_agent_min_data) {
    return;
  }
  const Value* ab_value = doc.find("ab");
  const Value* given = ab_value != nullptr && ab_value->is_mapping() ? ab_value->find("data_size") : nullptr;
  Location where = given != nullptr      ? given->location
                   : ab_value != nullptr ? ab_value->location
                                         : recipe.dcos->location;
  auto text = [](std::uint64_t bytes) {
    return bytes % (1ull << 30) == 0 ? std::to_string(bytes >> 30) + "G" : std::to_string(bytes >> 20) + "M";
  };
  diags.error(where, "ab: data_size " + text(size) + " with grow_data: false can never give the " +
                       std::to_string(k_dcos_agent_min_data >> 30) + "G DC/OS " + role +
                       " nodes need free under /var: give data_size: " + std::to_string(k_dcos_agent_min_data >> 30) +
                       "G or more, or grow_data: true");
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
    recipe.base = read_base(*base, options, diags);
  }
  recipe.size = r.size("size").value_or(0);
  recipe.network = r.boolean("network").value_or(false);
  recipe.sysprep = r.boolean("sysprep").value_or(true);
  recipe.trim = r.boolean("trim").value_or(true);
  recipe.layout = r.one_of("layout", {"plain", "ab"}).value_or("plain");
  if (const Value* ab = r.get("ab")) {
    read_ab(*ab, recipe, diags);
  }
  if (const Value* trust = r.get("trust")) {
    recipe.trust = read_trust(*trust, diags);
  }
  if (const Value* dcos = r.get("dcos")) {
    recipe.dcos = read_dcos(*dcos, diags);
  }
  recipe.signing_key = r.local_file("signing_key");

  if (const Value* outputs = r.get("outputs")) {
    MapReader o(*outputs, "outputs", diags);
    recipe.outputs.name = o.string("name").value_or("");
    recipe.outputs.formats = o.list("formats");
    if (const Value* f = o.get("formats")) {
      const auto& known = output_formats();
      for (const Value& item : f->is_sequence() ? f->items : std::vector<Value>{*f}) {
        if (item.is_scalar() && std::find(known.begin(), known.end(), item.scalar) == known.end()) {
          diags.error(item.location, "formats: unknown format '" + item.scalar + "' (known: " + join(known) + ")" +
                                       suggestion(item.scalar, known));
        }
      }
    }
    recipe.outputs.compress = o.boolean("compress").value_or(false);
    o.finish();
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
    recipe.outputs.formats = {"qcow2"};
  }

  if (const Value* stages = r.get("stages")) {
    if (!stages->is_sequence()) {
      diags.error(stages->location, "stages must be a list, not " + describe(*stages));
    } else {
      std::set<std::string> names;
      for (const auto& item : stages->items) {
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
              if (!step_value.is_mapping() || step_value.entries.size() != 1) {
                diags.error(step_value.location, "a step must be a mapping with exactly one key, the step kind (" +
                                                   join(step_kinds()) + ")");
                continue;
              }
              const auto& [key, body] = step_value.entries.front();
              const auto& kinds = step_kinds();
              if (std::find(kinds.begin(), kinds.end(), key.scalar) == kinds.end()) {
                diags.error(key.location, "unknown step '" + key.scalar + "' (known: " + join(kinds) + ")" +
                                            suggestion(key.scalar, kinds));
                continue;
              }
              if (auto spec = read_step(key.scalar, body, options, diags)) {
                stage.steps.push_back({key.scalar, std::move(*spec), key.location});
              }
            }
          }
        }
        s.finish();
        recipe.stages.push_back(std::move(stage));
      }
    }
  }
  if (recipe.trust) {
    add_trust_stage(recipe, diags);
  }
  if (recipe.dcos && recipe.layout == "ab") {
    check_agent_data(doc, recipe, diags);
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
