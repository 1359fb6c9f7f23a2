#include "core/recipe/value.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace kiln::recipe {

std::string
Location::str() const
{
  if (line <= 0) {
    return file;
  }
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

void
Diagnostics::error(const Location& location, std::string message)
{
  // One line each, whatever a message quoted.
  std::replace_if(
    message.begin(), message.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  m_items.push_back({location, std::move(message)});
}

void
Diagnostics::checkpoint() const
{
  if (!m_items.empty()) {
    throw RecipeError(m_items);
  }
}

void
Diagnostics::drop_echoes(size_t first, const std::vector<Location>& at)
{
  auto same = [&](const Diagnostic& d) {
    return std::any_of(at.begin(), at.end(), [&](const Location& l) {
      return l.file == d.location.file && l.line == d.location.line && l.column == d.location.column;
    });
  };
  for (size_t i = first; i < m_items.size();) {
    if (same(m_items[i])) {
      m_items.erase(m_items.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

RecipeError::RecipeError(std::vector<Diagnostic> items) : m_items(std::move(items))
{
  std::stable_sort(m_items.begin(), m_items.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.location.file, a.location.line, a.location.column) <
           std::tie(b.location.file, b.location.line, b.location.column);
  });
  // The same problem can be reached twice (a parent read by two children): report it once.
  m_items.erase(std::unique(m_items.begin(), m_items.end(),
                            [](const Diagnostic& a, const Diagnostic& b) { return a.str() == b.str(); }),
                m_items.end());
  for (const auto& item : m_items) {
    if (!m_what.empty()) {
      m_what += '\n';
    }
    m_what += item.str();
  }
}

std::vector<std::string>
RecipeError::lines() const
{
  std::vector<std::string> out;
  for (const auto& item : m_items) {
    out.push_back(item.str());
  }
  return out;
}

const Value*
Value::find(std::string_view key) const
{
  for (const auto& [k, v] : entries) {
    if (k.scalar == key) {
      return &v;
    }
  }
  return nullptr;
}

Value*
Value::find(std::string_view key)
{
  for (auto& [k, v] : entries) {
    if (k.scalar == key) {
      return &v;
    }
  }
  return nullptr;
}

void
Value::set(Value key, Value value)
{
  if (Value* existing = find(key.scalar)) {
    *existing = std::move(value);
  } else {
    entries.emplace_back(std::move(key), std::move(value));
  }
}

Value
Value::make_scalar(std::string text, Location location)
{
  Value v;
  v.kind = Kind::scalar;
  v.scalar = std::move(text);
  v.location = std::move(location);
  return v;
}

Value
Value::make_mapping(Location location)
{
  Value v;
  v.kind = Kind::mapping;
  v.location = std::move(location);
  return v;
}

nlohmann::json
Value::to_json() const
{
  switch (kind) {
    case Kind::null:
      return nullptr;
    case Kind::scalar:
      return scalar;
    case Kind::sequence: {
      auto out = nlohmann::json::array();
      for (const auto& item : items) {
        out.push_back(item.to_json());
      }
      return out;
    }
    case Kind::mapping: {
      auto out = nlohmann::json::object();
      for (const auto& [k, v] : entries) {
        out[k.scalar] = v.to_json();
      }
      return out;
    }
  }
  return nullptr;
}

namespace {

void
emit(YAML::Emitter& out, const Value& value)
{
  switch (value.kind) {
    case Value::Kind::null:
      out << YAML::Null;
      break;
    case Value::Kind::scalar:
      if (value.quoted) {
        out << YAML::DoubleQuoted << value.scalar;
      } else {
        out << value.scalar;
      }
      break;
    case Value::Kind::sequence:
      out << YAML::BeginSeq;
      for (const auto& item : value.items) {
        emit(out, item);
      }
      out << YAML::EndSeq;
      break;
    case Value::Kind::mapping:
      out << YAML::BeginMap;
      for (const auto& [k, v] : value.entries) {
        out << YAML::Key << k.scalar << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}

Location
location_of(const std::string& file, const YAML::Mark& mark)
{
  if (mark.is_null()) {
    return {file, 0, 0};
  }
  return {file, mark.line + 1, mark.column + 1};
}

// What a document may still expand to; aliases count every time they are used.
struct Budget {
  std::size_t nodes = k_max_recipe_nodes;
  int depth = 0;
  bool exceeded = false;
};

Value convert(const YAML::Node& node, const std::string& file, Diagnostics& diags, Budget& budget);

// Converts one child within the budget; past it, reports once and returns null.
Value
convert_child(const YAML::Node& node, const std::string& file, Diagnostics& diags, Budget& budget)
{
  if (budget.exceeded) {
    return {};
  }
  if (budget.nodes == 0 || budget.depth >= k_max_recipe_depth) {
    budget.exceeded = true;
    diags.error(location_of(file, node.Mark()),
                budget.nodes == 0 ? "more than " + std::to_string(k_max_recipe_nodes) +
                                      " nodes (aliases included): refusing to expand further"
                                  : "nested deeper than " + std::to_string(k_max_recipe_depth) + " levels");
    return {};
  }
  --budget.nodes;
  ++budget.depth;
  Value v = convert(node, file, diags, budget);
  --budget.depth;
  return v;
}

Value
convert(const YAML::Node& node, const std::string& file, Diagnostics& diags, Budget& budget)
{
  Value out;
  out.location = location_of(file, node.Mark());
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out.kind = Value::Kind::null;
      break;
    case YAML::NodeType::Scalar:
      out.kind = Value::Kind::scalar;
      out.scalar = node.Scalar();
      out.quoted = node.Tag() == "!";
      break;
    case YAML::NodeType::Sequence:
      out.kind = Value::Kind::sequence;
      for (const auto& item : node) {
        out.items.push_back(convert_child(item, file, diags, budget));
      }
      break;
    case YAML::NodeType::Map: {
      out.kind = Value::Kind::mapping;
      std::set<std::string> seen;
      for (const auto& entry : node) {
        Value key = convert_child(entry.first, file, diags, budget);
        if (budget.exceeded) {
          break;
        }
        if (!key.is_scalar()) {
          diags.error(key.location, "mapping keys must be plain names, not " + describe(key));
          continue;
        }
        if (!seen.insert(key.scalar).second) {
          diags.error(key.location, "duplicate key " + quote_token(key.scalar));
          continue;
        }
        Value value = convert_child(entry.second, file, diags, budget);
        out.entries.emplace_back(std::move(key), std::move(value));
      }
      break;
    }
  }
  return out;
}

} // namespace

std::string
Value::to_yaml() const
{
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, *this);
  return std::string(out.c_str()) + "\n";
}

Value
load_yaml_text(const std::string& text, const std::string& name, Diagnostics& diags)
{
  try {
    YAML::Node root = YAML::Load(text);
    Budget budget;
    Value value = convert_child(root, name, diags, budget);
    if (budget.exceeded) {
      return {};
    }
    if (value.is_null()) {
      value.location = {name, 1, 1};
    }
    return value;
  } catch (const YAML::Exception& e) {
    diags.error(location_of(name, e.mark), e.msg);
    return {};
  }
}

Value
load_yaml_file(const std::filesystem::path& path, Diagnostics& diags)
{
  std::string text;
  try {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > k_max_recipe_bytes) {
      diags.error({path.string(), 0, 0}, "larger than " + std::to_string(k_max_recipe_bytes) + " bytes: not a recipe");
      return {};
    }
    text = util::read_file(path);
  } catch (const Error& e) {
    diags.error({path.string(), 0, 0}, e.reason());
    return {};
  }
  return load_yaml_text(text, path.string(), diags);
}

std::string
describe(const Value& value)
{
  switch (value.kind) {
    case Value::Kind::null:
      return "nothing";
    case Value::Kind::scalar:
      return "a scalar";
    case Value::Kind::sequence:
      return "a list";
    case Value::Kind::mapping:
      return "a mapping";
  }
  return "?";
}

std::string
quote_token(std::string_view text)
{
  constexpr std::size_t k_max = 40;
  std::size_t end = 0;
  // A token is what names and values of a recipe are made of; a ':' after a user name in
  // /etc/shadow is followed by '$', '!' or '*', so the hash is never shown.
  auto token_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-' || c == '/' || c == ':';
  };
  while (end < text.size() && end < k_max && token_char(text[end])) {
    ++end;
  }
  return "'" + std::string(text.substr(0, end)) + (end < text.size() ? "...'" : "'");
}

} // namespace kiln::recipe
