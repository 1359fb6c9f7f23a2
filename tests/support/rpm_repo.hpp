// Tiny noarch RPMs and a yum/dnf repository of them, made here with the real rpmbuild and
// createrepo_c (no CentOS mirror is reachable): the test fixture of the packages step's
// rpm path. Like every fixture, the same bytes in every run (README, "Reproducible
// builds"): rpmbuild takes its build time and file times from SOURCE_DATE_EPOCH and a
// fixed build host, and the repository's metadata its revision and times from the same
// moment, with the packages' file times set to it (createrepo_c records them).
#pragma once

#include <filesystem>
#include <string>

namespace kiln::test {

// The fixed moment of the fixture's packages and metadata (2023-11-14 22:13:20 UTC).
inline constexpr long k_rpm_fixture_epoch = 1700000000;

// NAME-VERSION-1.noarch.rpm, built under `top` (rpmbuild's _topdir), installing
// /usr/share/NAME/version holding "NAME-VERSION\n". Returns its path.
std::filesystem::path build_rpm(const std::filesystem::path& top, const std::string& name, const std::string& version);

// createrepo_c's metadata for the RPMs in `repo` (repodata/), pinned to the fixture's moment.
void publish_rpm_repo(const std::filesystem::path& repo);

} // namespace kiln::test
