// THE A/B fixture image (tests/boot/fixture/ab-fixture.yaml), built by kiln once per build
// tree and shared by every test that needs an A/B image: the boot tests and the guestfs
// tests of the A/B layout. The ctest test "fixture.ab_image" builds it (tests/fixtures);
// the tests that use it require that ctest fixture, so they start once it is there, and
// ab_fixture() in them only finds the finished directory. Its outputs live in a directory
// keyed by everything that decides them (the resolved plan, kiln and kiln-node), so a
// second run of the same tree reuses them and a new kiln builds afresh.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kiln::test {

struct AbFixture {
  std::filesystem::path out; // ab-fixture.{raw,raw.bmap,qcow2,kbundle,vmlinuz,initrd,ipxe,manifest.json[.sig]},
    // build.json (what `kiln build --json` printed)
  std::filesystem::path bad; // ab-fixture-bad.kbundle: slot A with /usr/sbin/init -> /bin/false, signed
  std::filesystem::path key; // the signing key (tests/fixtures/ab-keys/release.key)
  std::filesystem::path trust; // its public key, the one the image trusts
  std::filesystem::path recipe;
  std::vector<std::string> sets; // the --set arguments the fixture is built with
  std::string error; // why it could not be built (every test using it then fails with it)
};

// Builds (or finds) the fixture; computed once per process.
const AbFixture& ab_fixture();

// The fixture recipe's `base:` block and `size:` line, verbatim: the base key is made of
// both (recipe/plan.cpp), so a recipe that starts with them has the fixture's base disk
// (and its bootstrap tar) in the shared test cache, and nothing is bootstrapped twice.
std::string ab_fixture_base_and_size();

// The environment of every kiln run on the fixture's recipe or its base: SOURCE_DATE_EPOCH
// pinned to k_fixture_epoch, so the fixture is made from the same bytes every time (its
// bootstrap tar, its ext4 and FAT file systems; not its XFS slots: README, "Reproducible
// builds"). The epoch is part of a bootstrapped base's key: a run without it would
// bootstrap another base.
inline constexpr long k_fixture_epoch = 1700000000; // 2023-11-14 22:13:20 UTC
std::map<std::string, std::string> ab_fixture_env();

// The cache the fixture's layers live in (KILN_TEST_CACHE): a variant of the recipe built
// with the same sets in this cache reuses its stages.
std::filesystem::path ab_fixture_cache();

} // namespace kiln::test
