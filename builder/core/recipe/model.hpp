// The typed recipe: what `kiln build` executes, after `extends`, variables and
// validation. Every local path here is absolute (resolved against the file that
// named it); every remote input carries its sha256 unless the user allowed otherwise.
#pragma once

#include "core/dcos/role.hpp"
#include "core/recipe/value.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kiln::recipe {

struct BaseImage {
  enum class Kind { url, bootstrap, path };
  Kind kind = Kind::url;
  std::vector<std::string> urls; // url first, then mirrors, tried in order
  std::optional<std::string> sha256; // required for url unless --allow-unpinned
  std::optional<std::uint64_t> size; // url: the download's size in bytes, pinned (else fetch's --max-size bound)
  std::string format; // qcow2 | raw | tar (path only)
  std::string path; // kind == path
  std::string suite; // kind == bootstrap
  std::string mirror;
  std::string variant;
  std::vector<std::string> packages;
  Location location;
};

struct FileStep {
  std::string path;
  std::optional<std::string> content;
  std::optional<std::string> source; // local file to upload
  unsigned mode = 0644;
  std::string owner = "root";
  std::string group = "root";
};

struct OverlayStep {
  std::string name;
  std::string source; // absolute directory on the build host
  std::string dest = "/";
  std::string owner = "root";
  std::string group = "root";
};

struct EditStep {
  std::string path;
  std::map<std::string, std::string> set; // KEY=VALUE lines, replaced or appended
  std::string separator = "=";
  std::optional<std::string> match; // regex of whole lines to replace
  std::optional<std::string> line; // replacement (and the line appended when nothing matches)
  // `each:` given: `line` is a template and these are its expansions, one per item ({}
  // replaced by the item), in order. With `match` they replace the first matching line as
  // a block and every other matching line goes; without a match they are appended.
  std::vector<std::string> lines;
};

struct DeleteStep {
  std::vector<std::string> paths;
};

struct UnitStep {
  std::string name;
  std::optional<std::string> content;
  std::optional<std::string> source;
};

struct SystemdStep {
  std::vector<std::string> enable;
  std::vector<std::string> disable;
  std::vector<std::string> mask;
};

struct GroupStep {
  std::string name;
  std::optional<std::uint32_t> gid;
  bool system = false;
};

struct UserStep {
  std::string name;
  std::optional<std::uint32_t> uid;
  std::optional<std::string> group;
  std::vector<std::string> groups;
  std::optional<std::string> home;
  std::string shell = "/bin/bash";
  bool system = false;
};

struct SelinuxStep {
  std::string mode; // enforcing | permissive | disabled
  bool relabel = true;
};

struct Repo {
  std::string name;
  std::string baseurl;
  bool gpgcheck = true;
  std::optional<std::string> gpgkey;
};

struct PackagesStep {
  std::vector<std::string> install;
  std::vector<std::string> remove;
  std::vector<Repo> repos;
  std::vector<std::string> files; // local .rpm/.deb files, installed offline
  bool network = false;
};

struct RunStep {
  std::string command;
};

struct FirstbootStep {
  std::string name;
  std::optional<std::string> script;
  std::optional<std::string> source;
  std::vector<std::string> after;
};

using StepSpec = std::variant<FileStep, OverlayStep, EditStep, DeleteStep, UnitStep, SystemdStep, GroupStep, UserStep,
                              SelinuxStep, PackagesStep, RunStep, FirstbootStep>;

struct Step {
  std::string kind; // the recipe key: file, overlay, edit, ...
  StepSpec spec;
  Location location;
};

struct Stage {
  std::string name;
  std::vector<Step> steps;
  Location location;
};

// The output formats kiln writes (image/formats/outputs.hpp).
enum class OutputFormat { qcow2, raw, vmdk, vhd, pxe };
// The recipe's and the command line's spelling ("qcow2", ...).
const char* format_name(OutputFormat format);
// nullopt for a name kiln does not know.
std::optional<OutputFormat> parse_format(std::string_view name);
std::vector<std::string> format_names(const std::vector<OutputFormat>& formats);

struct Outputs {
  std::string name; // file name stem; defaults to the recipe name
  std::vector<OutputFormat> formats; // in the order the recipe gives them
  bool compress = false; // qcow2 compression
};

// kiln-data's size when `ab:` gives no data_size.
inline constexpr std::uint64_t k_default_data_size = 4ull << 30;
// DC/OS wants at least 20 GB free under /var on agents (dcos.md 5.2): a DC/OS agent's
// kiln-data (docker, mesos, logs) must be able to reach it.
inline constexpr std::uint64_t k_dcos_agent_min_data = 20ull << 30;

// `ab:` -- the A/B whole-disk layout (with `layout: ab`). Sizes in bytes.
struct AbLayout {
  std::uint64_t esp_size = 128ull << 20;
  std::uint64_t boot_size = 256ull << 20;
  std::uint64_t slot_size = 0; // each root slot; 0: derived from the root file system
  std::uint64_t data_size = 0; // 0: k_default_data_size
  std::string root_fs = "xfs"; // xfs | ext4, for the slots
  std::string data_fs = "xfs"; // xfs | ext4, for kiln-data
  unsigned tries = 3; // boot tries of a newly written slot (1..9)
  unsigned panic = 10; // panic=N on the kernel command line
  std::vector<std::string> kernel_args;
  // kiln-data grows to the end of the disk (at first boot and in `kiln-node install`), so
  // data_size is only its size in the image. false: it stays data_size on every disk.
  bool grow_data = true;
  // Another kiln-node artifact (node_artifact.hpp), absolute; unset: the one of the kiln
  // that builds (found at plan time).
  std::optional<std::string> node;
  Location location;
};

// `dcos:` -- a DC/OS node: the cluster's genconf/serve tree pre-staged for an offline
// first-boot install, and the checks of `kiln verify`.
struct DcosSpec {
  std::string bundle; // genconf/serve: absolute local directory or http(s) URL
  dcos::Role role = dcos::Role::slave; // the default role
  std::optional<std::string> version; // DC/OS version, for verify's version-dependent checks
  Location location;
};

// `trust:` -- the keys an image trusts for its next reimage (/etc/kiln/trust.d).
struct TrustSpec {
  std::vector<std::string> keys; // absolute paths of Ed25519 public keys (PEM)
  std::optional<std::string> revoked; // absolute path of a revocation list
  Location location;
};

// How the image's disk is laid out: one root file system, or the A/B node layout
// (slots/abi.hpp) with its slot bundle.
enum class Layout { plain, ab };
// "plain" | "ab": the recipe's spelling, shown by `kiln plan`.
const char* layout_name(Layout layout);

struct Recipe {
  std::string name;
  std::string description;
  // The image's monotonic version (`version:`), written into its manifests and signed;
  // kiln-node refuses a bundle older than the highest a node installed. 0: none.
  std::uint32_t version = 0;
  std::string file; // the recipe file given on the command line (absolute)
  std::vector<std::string> chain; // the extends chain, the given file first
  BaseImage base;
  std::uint64_t size = 0; // disk size in bytes; 0 keeps the base's size
  bool network = false; // appliance network for all steps
  std::vector<Stage> stages;
  bool sysprep = true;
  bool trim = true;
  Layout layout = Layout::plain;
  AbLayout ab; // used with Layout::ab
  std::optional<DcosSpec> dcos;
  std::optional<TrustSpec> trust;
  Outputs outputs;
  std::optional<std::string> signing_key;
  std::map<std::string, std::string> vars; // final variable values
  Value tree; // the resolved document, for `kiln plan`
};

// Every recipe key that names a step, in documentation order.
const std::vector<std::string>& step_kinds();
// Every output format kiln knows.
const std::vector<std::string>& output_formats();

} // namespace kiln::recipe
