#include "core/manifest/sbom.hpp"

#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>
#include <tuple>

namespace kiln::manifest {

namespace {

using nlohmann::json;

bool
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

// YYYY-MM-DDThh:mm:ssZ, digits where the pattern has letters.
bool
is_spdx_time(std::string_view text)
{
  static constexpr std::string_view pattern = "dddd-dd-ddTdd:dd:ddZ";
  if (text.size() != pattern.size()) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (pattern[i] == 'd' ? !is_digit(text[i]) : text[i] != pattern[i]) {
      return false;
    }
  }
  return true;
}

// purl percent-encoding: everything outside the unreserved set.
std::string
purl_encode(std::string_view text)
{
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '.' || c == '-' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 15]);
    }
  }
  return out;
}

} // namespace

std::string
spdx_id_part(std::string_view name)
{
  std::string out(name);
  for (auto& c : out) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-')) {
      c = '-';
    }
  }
  return out;
}

std::string
package_url(const Package& package, const std::string& distro)
{
  std::string version = package.version;
  std::string epoch;
  std::string type_namespace;
  if (distro == "rpm") {
    type_namespace = "rpm/centos";
    std::size_t colon = version.find(':');
    if (colon != std::string::npos && colon > 0 &&
        std::all_of(version.begin(), version.begin() + static_cast<std::ptrdiff_t>(colon), is_digit)) {
      epoch = version.substr(0, colon);
      version.erase(0, colon + 1);
    }
  } else if (distro == "deb") {
    type_namespace = "deb/debian"; // a deb epoch stays in the version, encoded
  } else {
    throw Error("sbom", "unknown package flavour '" + distro + "' (rpm or deb)");
  }
  std::string purl = "pkg:" + type_namespace + "/" + purl_encode(package.name) + "@" + purl_encode(version);
  purl += "?arch=" + purl_encode(package.arch); // qualifiers sorted by key
  if (!epoch.empty()) {
    purl += "&epoch=" + epoch;
  }
  return purl;
}

std::string
spdx_time(std::int64_t seconds)
{
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) {
    throw Error("sbom", "time out of range: " + std::to_string(seconds));
  }
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json
make_sbom(const std::vector<Package>& packages, const SbomOptions& options)
{
  if (options.name.empty()) {
    throw Error("sbom", "document name must not be empty");
  }
  if (!crypto::is_sha256_hex(options.digest)) {
    throw Error("sbom", "namespace digest is not a sha256 digest: '" + options.digest + "'");
  }
  if (!is_spdx_time(options.created)) {
    throw Error("sbom", "creation time must be YYYY-MM-DDThh:mm:ssZ: '" + options.created + "'");
  }
  if (options.kiln_version.empty()) {
    throw Error("sbom", "kiln version must not be empty");
  }
  if (options.distro != "rpm" && options.distro != "deb") {
    throw Error("sbom", "unknown package flavour '" + options.distro + "' (rpm or deb)");
  }

  std::vector<Package> sorted = packages;
  std::sort(sorted.begin(), sorted.end(), [](const Package& a, const Package& b) {
    return std::tie(a.name, a.version, a.arch) < std::tie(b.name, b.version, b.arch);
  });

  json doc = json::object();
  doc["spdxVersion"] = "SPDX-2.3";
  doc["dataLicense"] = "CC0-1.0";
  doc["SPDXID"] = "SPDXRef-DOCUMENT";
  doc["name"] = options.name;
  doc["documentNamespace"] = "https://kiln.invalid/spdx/" + options.digest;
  doc["creationInfo"] = {{"created", options.created},
                         {"creators", json::array({"Tool: kiln-" + options.kiln_version})}};
  json list = json::array();
  json relationships = json::array();
  std::set<std::string> used;
  for (const auto& p : sorted) {
    if (p.name.empty() || p.version.empty() || p.arch.empty()) {
      throw Error("sbom", "package with an empty name, version or arch: '" + p.name + "'");
    }
    std::string id = "SPDXRef-Package-" + spdx_id_part(p.name);
    if (used.count(id) != 0) {
      id += "-" + spdx_id_part(p.arch);
    }
    std::string base = id;
    for (int n = 2; used.count(id) != 0; ++n) {
      id = base + "-" + std::to_string(n);
    }
    used.insert(id);
    list.push_back({{"SPDXID", id},
                    {"name", p.name},
                    {"versionInfo", p.version},
                    {"downloadLocation", "NOASSERTION"},
                    {"filesAnalyzed", false},
                    {"licenseConcluded", "NOASSERTION"},
                    {"licenseDeclared", "NOASSERTION"},
                    {"copyrightText", "NOASSERTION"},
                    {"externalRefs", json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                                                   {"referenceType", "purl"},
                                                   {"referenceLocator", package_url(p, options.distro)}}})}});
    relationships.push_back(
      {{"spdxElementId", "SPDXRef-DOCUMENT"}, {"relationshipType", "DESCRIBES"}, {"relatedSpdxElement", id}});
  }
  doc["packages"] = std::move(list);
  doc["relationships"] = std::move(relationships);
  return doc;
}

} // namespace kiln::manifest
