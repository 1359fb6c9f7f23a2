// The checks of `kiln verify`: DC/OS's installer preflight (dcos_install.sh check_all),
// run offline against an image's file system, plus what that preflight misses (its
// port check is broken, it accepts Docker 1.6, it never looks at live-restore or the
// staged bundle). Every check is a pure function of an FsView and the options, so it
// is tested on plain directory trees. Output mimics the installer:
//   Checking NAME: PASS (detail)   /   Checking NAME: FAIL (reason)
#pragma once

#include "core/dcos/role.hpp"
#include "core/dcos/view.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::dcos {

struct VerifyOptions {
  Role role = Role::slave;
  std::optional<std::string> version; // DC/OS version ("2.2.1", "1.12.x"); unknown: strictest
};

struct CheckResult {
  std::string name;
  bool pass = false;
  std::string detail;
};

// Runs every check for the role, asking `view` each question once (CachingView): the
// image must not change while they run. Throws UsageError for an unknown version.
std::vector<CheckResult> run_checks(FsView& view, const VerifyOptions& options);

std::string format_line(const CheckResult& result);
nlohmann::json to_json(const std::vector<CheckResult>& results);
bool all_pass(const std::vector<CheckResult>& results);

// The ports the role's DC/OS services bind (dcos.md 4.1, 4.2), for the version (all
// versions' ports when unknown).
std::vector<int> role_ports(Role role, const std::optional<std::string>& version);
// Well-known units that listen on DC/OS ports, unit -> ports.
const std::map<std::string, std::vector<int>>& listening_units();

// systemd state as the symlinks in /etc/systemd/system say (no systemctl offline):
// enabled = a *.wants/ or *.requires/ link names it (or an alias of it) and it is not
// masked; masked = /etc/systemd/system/UNIT links to /dev/null.
bool unit_masked(FsView& view, const std::string& unit);
bool unit_enabled(FsView& view, const std::string& unit);

} // namespace kiln::dcos
