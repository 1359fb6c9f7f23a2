// The DC/OS version a slot runs (/opt/mesosphere/etc/dcos-version.json in its root file
// system) and the rule rollback applies to it: DC/OS does not support downgrades, and
// the Mesos checkpoint on the shared kiln-data partition would be read by an older Mesos.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::node {

// "version" of ROOT/opt/mesosphere/etc/dcos-version.json; nullopt when the file does not
// exist (no DC/OS installed in that root). Throws Error(path, ...) for a file that is not
// such a document.
std::optional<std::string> read_dcos_version(const std::filesystem::path& root);

// The numeric dotted prefix of a version: "2.10.0" -> {2, 10, 0}; a suffix after it
// ("2.2.0-beta1", "1.13.0-rc2") is ignored, so a pre-release counts as its release.
// Throws Error(text, ...) when the text does not start with a number.
std::vector<unsigned long> version_numbers(const std::string& text);

// <0, 0, >0 as version a is older than, equal to, newer than b, component by component
// (a missing component counts as 0: "2.2" == "2.2.0"; "2.10.0" > "2.9.3").
int compare_dcos_versions(const std::string& a, const std::string& b);

} // namespace kiln::node
