// A synthetic genconf/serve tree with the real layout (dcos.md 1.2): *.latest ids,
// bootstrap/ID.bootstrap.tar.xz, package_lists/ID.package_list.json, packages/NAME/ID.tar.xz
// (tiny, real tar.xz files made with tar -J) and a dcos_install.sh stand-in that
// records its arguments and environment instead of installing, then exits with a
// chosen status (a failed preflight) or, like the real script, restarts journald and
// enables and starts dcos-setup.service (with --no-block for --no-block-dcos-setup),
// through the fake systemctl of tests/support/fake-systemd only. Its text carries what
// a generated script carries about itself: the repository-url and cluster-package-list
// setup flags and the bootstrap tarball URL.
#pragma once

#include "core/dcos/checks.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace kiln::test {

struct ServeTreeOptions {
  std::string bootstrap_url = "file:///opt/dcos_install_tmp";
  int exit_status = 0;
  std::vector<std::string> packages = {"dcos-config--setup_0d1e2f3a4b5c", "dcos-metadata--setup_0d1e2f3a4b5c",
                                       "mesos--1.11.0-2b7c1e9", "marathon--1.10.6-e8d1a3b"};
  std::string salt; // changes every id and file, for "a changed bundle"
};

struct ServeTree {
  std::filesystem::path dir;
  std::string bootstrap_id;
  std::string package_list_id;
  std::vector<std::string> packages;
};

// Writes the tree into `dir` (created).
ServeTree make_serve_tree(const std::filesystem::path& dir, const ServeTreeOptions& options = {});

// Where the stand-in records, relative to $KILN_ROOT (empty on a node).
inline constexpr const char* k_install_record = "/var/log/kiln-test/dcos-install.record";

// The names of the checks that failed, in order.
std::vector<std::string> failed_checks(const std::vector<dcos::CheckResult>& results);
// Every result as `kiln verify` prints it, one line each (for a failing test's message).
std::string check_lines(const std::vector<dcos::CheckResult>& results);

} // namespace kiln::test
