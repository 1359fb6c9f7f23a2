#include "core/fleet/cluster.hpp"

#include "core/recipe/schema/reader.hpp"
#include "core/recipe/value.hpp"

#include <arpa/inet.h>

#include <regex>
#include <set>

namespace kiln::fleet {

namespace fs = std::filesystem;
using recipe::Diagnostics;
using recipe::Value;
using recipe::detail::MapReader;

std::string
to_string(Role role)
{
  switch (role) {
    case Role::master:
      return "master";
    case Role::agent:
      return "agent";
    case Role::agent_public:
      return "agent_public";
  }
  return "agent";
}

std::string
Action::str() const
{
  return kind == Kind::wipe ? "wipe" : "reimage " + bundle_url;
}

const Node*
Cluster::find(const std::string& host) const
{
  for (const auto& n : nodes) {
    if (n.host == host) {
      return &n;
    }
  }
  return nullptr;
}

bool
parse_duration(const std::string& text, Millis& out)
{
  static const std::regex re("([0-9]{1,7})(ms|s|m|h)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    return false;
  }
  const long long n = std::stoll(m[1].str());
  const std::string unit = m[2].str();
  const long long factor = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 3600000;
  out = Millis(n * factor);
  return true;
}

std::string
expand(const std::string& pattern, const Node& node)
{
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 6, "{host}") == 0) {
      out += node.host;
      i += 6;
    } else if (pattern.compare(i, 9, "{address}") == 0) {
      out += node.address;
      i += 9;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

namespace {

// A duration field: "30s", "5m", "2h", "500ms", within [low, high].
void
read_duration(MapReader& r, const std::string& key, Millis& out, Millis low, Millis high)
{
  const Value* v = r.get(key);
  if (v == nullptr) {
    return;
  }
  Millis d{};
  if (!v->is_scalar() || !parse_duration(v->scalar, d) || d < low || d > high) {
    r.diags().error(v->location, key + " must be a duration such as 30s, 5m or 2h (ms, s, m, h), from " +
                                   std::to_string(low.count()) + " ms to " + std::to_string(high.count() / 3600000) +
                                   " h, not " +
                                   (v->is_scalar() ? recipe::quote_token(v->scalar) : recipe::describe(*v)));
    return;
  }
  out = d;
}

// A command line template: one line, not empty, bounded.
std::optional<std::string>
read_command(MapReader& r, const std::string& key)
{
  auto s = r.string(key);
  if (s && (s->empty() || s->size() > 4096 || s->find_first_of("\n\r") != std::string::npos)) {
    r.diags().error(r.get(key)->location, key + " must be one non-empty line of at most 4096 characters");
    return std::nullopt;
  }
  return s;
}

bool
valid_ip(const std::string& text)
{
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, text.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

bool
valid_host(const std::string& text)
{
  static const std::regex re("[A-Za-z0-9]([A-Za-z0-9.-]{0,252})");
  return std::regex_match(text, re);
}

void
read_master(const Value& v, Cluster& c, Diagnostics& diags)
{
  MapReader r(v, "master", diags);
  if (auto url = r.string("url", true)) {
    static const std::regex re("https?://[^\\s/?#]+(/[^\\s?#]*)?");
    if (!std::regex_match(*url, re)) {
      diags.error(r.get("url")->location, "url must be an http:// or https:// URL of the operator API, such as "
                                          "https://MASTER/mesos/api/v1, not " +
                                            recipe::quote_token(*url));
    } else {
      c.api_url = *url;
    }
  }
  if (auto f = r.local_file("token_file")) {
    c.token_file = *f;
  }
  if (auto f = r.local_file("ca_file")) {
    c.ca_file = *f;
  }
  if (auto s = read_command(r, "metrics_url")) {
    c.metrics_url = *s;
  }
  if (auto s = read_command(r, "zookeeper")) {
    c.zookeeper = *s;
  }
  if (auto s = read_command(r, "exhibitor_url")) {
    c.exhibitor_url = *s;
  }
  r.finish();
}

void
read_transport(const Value& v, Cluster& c, Diagnostics& diags)
{
  MapReader r(v, "transport", diags);
  if (auto s = read_command(r, "command")) {
    c.transport = *s;
  }
  if (auto s = read_command(r, "node_command")) {
    c.node_command = *s;
  }
  if (auto s = read_command(r, "reboot_command")) {
    c.reboot_command = *s;
  }
  if (auto s = read_command(r, "boot_id_command")) {
    c.boot_id_command = *s;
  }
  r.finish();
}

void
read_action(const Value& v, Cluster& c, Diagnostics& diags)
{
  MapReader r(v, "action", diags);
  auto url = r.string("reimage");
  auto wipe = r.boolean("wipe");
  r.finish();
  if (!r.ok()) {
    return;
  }
  if (url.has_value() == (wipe.value_or(false))) {
    diags.error(v.location, "action must be either 'reimage: BUNDLE_URL' or 'wipe: true'");
    return;
  }
  if (url) {
    static const std::regex re("(https?|file)://\\S+|/\\S+");
    if (!std::regex_match(*url, re)) {
      diags.error(
        r.get("reimage")->location,
        "reimage must be the bundle's URL as the nodes reach it (http, https, file, or an absolute path), not " +
          recipe::quote_token(*url));
    }
    c.action = {Action::Kind::reimage, *url};
  } else {
    c.action = {Action::Kind::wipe, {}};
  }
}

void
read_limits(const Value& v, Cluster& c, Diagnostics& diags)
{
  using namespace std::chrono;
  MapReader r(v, "limits", diags);
  if (auto n = r.number("agents_at_once", 1, 1000)) {
    c.limits.agents_at_once = *n;
  }
  read_duration(r, "drain_grace", c.limits.drain_grace, Millis(0), hours(24));
  read_duration(r, "poll", c.limits.poll, milliseconds(10), minutes(10));
  if (const Value* d = r.get("deadlines")) {
    MapReader dr(*d, "deadlines", diags);
    auto& dl = c.limits.deadlines;
    for (auto [key, field] :
         {std::pair{"drain", &dl.drain}, std::pair{"command", &dl.command}, std::pair{"boot", &dl.boot},
          std::pair{"rejoin", &dl.rejoin}, std::pair{"master", &dl.master}}) {
      read_duration(dr, key, *field, milliseconds(100), hours(48));
    }
    dr.finish();
  }
  r.finish();
}

void
read_nodes(const Value& v, Cluster& c, Diagnostics& diags)
{
  if (!v.is_sequence() || v.items.empty()) {
    diags.error(v.location, "nodes must be a non-empty list of {host, address, role}");
    return;
  }
  if (v.items.size() > 10000) {
    diags.error(v.location, "nodes: more than 10000 nodes");
    return;
  }
  std::set<std::string> hosts, addresses;
  for (const auto& item : v.items) {
    MapReader r(item, "node", diags);
    Node n;
    auto host = r.string("host", true);
    auto address = r.string("address", true);
    auto role = r.one_of("role", {"master", "agent", "agent_public"}, true);
    r.finish();
    if (host) {
      if (!valid_host(*host)) {
        diags.error(r.get("host")->location,
                    "host must be a host name (letters, digits, '.', '-'), not " + recipe::quote_token(*host));
      } else if (!hosts.insert(*host).second) {
        diags.error(r.get("host")->location, "host " + *host + " is listed twice");
      }
      n.host = *host;
    }
    if (address) {
      if (!valid_ip(*address)) {
        diags.error(r.get("address")->location,
                    "address must be the node's IP address, not " + recipe::quote_token(*address));
      } else if (!addresses.insert(*address).second) {
        diags.error(r.get("address")->location, "address " + *address + " is listed twice");
      }
      n.address = *address;
    }
    if (role) {
      n.role = *role == "master" ? Role::master : *role == "agent" ? Role::agent : Role::agent_public;
    }
    c.nodes.push_back(n);
  }
}

} // namespace

Cluster
load_cluster(const fs::path& path)
{
  Diagnostics diags;
  Value doc = recipe::load_yaml_file(path, diags);
  diags.checkpoint();
  Cluster c;
  c.file = path;
  MapReader r(doc, "the cluster file", diags);
  if (auto name = r.string("name")) {
    c.name = *name;
  }
  if (const Value* v = r.require("master")) {
    read_master(*v, c, diags);
  }
  if (const Value* v = r.get("transport")) {
    read_transport(*v, c, diags);
  }
  if (const Value* v = r.require("action")) {
    read_action(*v, c, diags);
  }
  if (const Value* v = r.get("limits")) {
    read_limits(*v, c, diags);
  }
  if (const Value* v = r.require("nodes")) {
    read_nodes(*v, c, diags);
  }
  if (const Value* v = r.get("state")) {
    if (auto s = r.as_string(*v, "state")) {
      c.state_file = recipe::detail::beside_recipe(*s, v->location);
    }
  }
  r.finish();
  diags.checkpoint();
  if (c.state_file.empty()) {
    fs::path p = fs::absolute(path).lexically_normal();
    c.state_file = p.parent_path() / (p.stem().string() + ".state.json");
  }
  return c;
}

} // namespace kiln::fleet
