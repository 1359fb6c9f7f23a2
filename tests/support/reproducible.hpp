// Reproducible builds (README, "Reproducible builds"), checked the way a user would: one
// recipe built twice cold, in two caches, with the same SOURCE_DATE_EPOCH, must give the
// same bytes in every output and the same manifest. Shared by the plain-image test and
// the A/B disk test (tests/guestfs/reproducible*_test.cpp).
#pragma once

#include <filesystem>
#include <string>

namespace kiln::test {

// The bootstrap tar the A/B fixture's base was made from (KILN_TEST_CACHE/bootstrap/KEY.tar),
// found through `kiln plan` of a recipe with the fixture's base; `scratch` holds that recipe.
// A recipe with `base: {path: THIS}` starts from the same input in every build, without a
// second mmdebstrap.
std::filesystem::path ab_fixture_bootstrap_tar(const std::filesystem::path& scratch);

struct TwiceResult {
  std::string build_log; // the first build's standard error (what it said it did)
  std::size_t outputs = 0; // files each build wrote
};

// Builds `recipe` twice with the fixture's SOURCE_DATE_EPOCH (ab_fixture_env), into scratch/cache1 and
// scratch/cache2 (each removed once built: CI machines have little disk) and
// scratch/out1, scratch/out2, and adds a test failure for every output whose digest
// differs, for differing manifests (scratch/outN/NAME.manifest.json) and for a build that
// fails. On a difference, what `kiln diff` says of the two raw images (NAME.raw) is part
// of the failure.
TwiceResult build_twice_and_compare(const std::filesystem::path& recipe, const std::filesystem::path& scratch,
                                    const std::string& name);

} // namespace kiln::test
