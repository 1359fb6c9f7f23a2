#include "core/manifest/diff.hpp"

#include <map>

namespace kiln::manifest {

namespace {

// Two name -> value maps compared: every name whose value differs or that one side lacks.
void
compare(const std::string& section, const std::map<std::string, std::string>& a,
        const std::map<std::string, std::string>& b, std::vector<Difference>& out)
{
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      out.push_back({section, ia->first, ia->second, ""});
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      out.push_back({section, ib->first, "", ib->second});
      ++ib;
    } else {
      if (ia->second != ib->second) {
        out.push_back({section, ia->first, ia->second, ib->second});
      }
      ++ia;
      ++ib;
    }
  }
}

std::map<std::string, std::string>
fields(const Manifest& m)
{
  return {{"name", m.name},
          {"version", std::to_string(m.version)},
          {"kiln_version", m.kiln_version},
          {"libguestfs_version", m.libguestfs_version},
          {"recipe.name", m.recipe_name},
          {"recipe.digest", m.recipe_digest}};
}

std::map<std::string, std::string>
stages(const Manifest& m)
{
  std::map<std::string, std::string> out;
  for (const auto& s : m.stages) {
    out[s.name] = s.key;
  }
  return out;
}

std::map<std::string, std::string>
inputs(const Manifest& m)
{
  std::map<std::string, std::string> out;
  for (const auto& in : m.inputs) {
    out[in.kind + " " + in.source] = in.sha256.empty() ? "(unpinned)" : in.sha256;
  }
  return out;
}

std::map<std::string, std::string>
packages(const Manifest& m)
{
  std::map<std::string, std::string> out;
  for (const auto& p : m.packages) {
    out[p.name + (p.arch.empty() ? "" : "." + p.arch)] = p.version;
  }
  return out;
}

std::map<std::string, std::string>
files(const Manifest& m)
{
  std::map<std::string, std::string> out;
  for (const auto& f : m.files) {
    out[f.name] = f.sha256 + " (" + std::to_string(f.size) + " bytes)";
  }
  return out;
}

} // namespace

std::vector<Difference>
diff_manifests(const Manifest& a, const Manifest& b)
{
  std::vector<Difference> out;
  compare("field", fields(a), fields(b), out);
  compare("stage", stages(a), stages(b), out);
  compare("input", inputs(a), inputs(b), out);
  compare("package", packages(a), packages(b), out);
  compare("file", files(a), files(b), out);
  return out;
}

nlohmann::json
to_json(const Difference& d)
{
  auto side = [](const std::string& v) { return v.empty() ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"section", d.section}, {"name", d.name}, {"a", side(d.a)}, {"b", side(d.b)}};
}

} // namespace kiln::manifest
