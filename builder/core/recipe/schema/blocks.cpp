#include "core/recipe/schema/blocks.hpp"

#include "core/crypto/signing.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/recipe/schema/reader.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"

#include <filesystem>
#include <regex>
#include <set>

namespace kiln::recipe::detail {

namespace fs = std::filesystem;

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
  ab.tries = r.number("tries", 1, 9).value_or(3);
  ab.panic = r.number("panic", 1, 3600).value_or(10);
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
      fs::path p = beside_recipe(*s, node->location);
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
  if (recipe.layout != Layout::ab) {
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
        fs::path p = beside_recipe(*s, b->location);
        if (!fs::is_directory(p)) {
          diags.error(b->location, "bundle: no such directory '" + p.string() + "' (the cluster's genconf/serve)");
        }
        dcos.bundle = p.string();
      }
    }
  }
  dcos.role = dcos::parse_role(r.one_of("role", dcos::roles(), true).value_or("")).value_or(dcos::Role::slave);
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
  const dcos::Role role = recipe.dcos->role;
  // A role the recipe misspelt has its own error; this check needs the role it gave.
  const Value* dcos_value = doc.find("dcos");
  const Value* role_value = dcos_value != nullptr && dcos_value->is_mapping() ? dcos_value->find("role") : nullptr;
  const bool role_given = role_value != nullptr && role_value->is_scalar() && dcos::parse_role(role_value->scalar);
  if (!role_given || role == dcos::Role::master || ab.grow_data) {
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
                       std::to_string(k_dcos_agent_min_data >> 30) + "G DC/OS " + dcos::role_name(role) +
                       " nodes need free under /var: give data_size: " + std::to_string(k_dcos_agent_min_data >> 30) +
                       "G or more, or grow_data: true");
}

} // namespace kiln::recipe::detail
