// A DC/OS cluster's genconf/serve tree ("the bundle") as kiln pre-stages it for an
// offline first-boot install. Only what a node reads from its bootstrap_url is staged
// (dcos/dcos gen/build_deploy/bash.py, pkgpanda): dcos_install.sh, the bootstrap
// tarball, the cluster package list and every package the list names. The *.latest
// index files are read at build time to find the ids, never staged.
//
// Validation happens before any image is touched; every failure names the file
// (`kiln: error: FILE: reason`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::dcos {

// The bootstrap_url a pre-staged node needs (no trailing slash: gen/calc.py rejects it).
inline constexpr std::string_view k_offline_bootstrap_url = "file:///opt/dcos_install_tmp";

struct BundleFile {
  std::string path; // relative to the serve root, e.g. "bootstrap/ID.bootstrap.tar.xz"
  std::string sha256;
  std::uint64_t size = 0;
};

struct Bundle {
  std::string bootstrap_id;
  std::string package_list_id;
  std::vector<std::string> packages; // package ids ("name--version"), as listed
  std::vector<BundleFile> files; // what the installer reads, sorted by path
  // sha256 over the ids and every file's path and digest: what a stage key needs.
  std::string digest;
};

// "name--version" -> "packages/name/name--version.tar.xz". Throws Error(subject, ...)
// for an id without "--" or with path characters.
std::string package_path(const std::string& id, const std::string& subject);
std::string bootstrap_path(const std::string& bootstrap_id); // bootstrap/ID.bootstrap.tar.xz
std::string package_list_path(const std::string& package_list_id); // package_lists/ID.package_list.json

// The id in a *.latest file (one word; surrounding white space ignored). Throws
// Error(subject, ...) when it is empty or not an id.
std::string parse_id(const std::string& text, const std::string& subject);
// The package ids of a package_list.json (a JSON array of strings).
std::vector<std::string> parse_package_list(const std::string& text, const std::string& subject);

// What dcos_install.sh says about itself: the bootstrap_url it writes to
// setup-flags/repository-url (else the prefix of its bootstrap tarball URL), the
// bootstrap id of that URL and the cluster package list id it writes to
// setup-flags/cluster-package-list. Empty when not found.
struct InstallScript {
  std::string bootstrap_url;
  std::string bootstrap_id;
  std::string package_list_id;
};
InstallScript parse_install_script(const std::string& text);

// How to make a bundle an offline image can use.
std::string regenerate_hint();

// Reads a tar.xz archive to its end (every member's data), so a truncated or corrupt
// file is caught. Throws Error(subject, reason).
void check_tar_xz(const std::filesystem::path& file, const std::string& subject);

// Validates the serve tree in `dir` and describes it. `label` names the tree in
// errors (the directory, or the URL it came from): errors read "LABEL/FILE: reason".
// Checks: both *.latest ids name files that exist; the package list parses and every
// package it names exists and is a readable tar.xz (as is the bootstrap tarball);
// dcos_install.sh exists, uses bootstrap_url file:///opt/dcos_install_tmp and names
// the same ids.
Bundle validate_bundle(const std::filesystem::path& dir, const std::string& label);
// The same without reading the archives through (what `kiln plan` affords): layout,
// ids, dcos_install.sh and the digest, which equals validate_bundle's.
Bundle describe_bundle(const std::filesystem::path& dir, const std::string& label);

bool is_url(const std::string& bundle);

} // namespace kiln::dcos
