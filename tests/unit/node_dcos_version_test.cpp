// kiln-node's DC/OS version rule for rollback: dcos-version.json read from a root,
// versions compared by their numeric dotted prefix.
#include "core/node/dcos_version.hpp"
#include "core/util/error.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using node::compare_dcos_versions;

TEST(NodeDcosVersion, ComponentsCompareAsNumbers)
{
  EXPECT_GT(compare_dcos_versions("2.10.0", "2.9.3"), 0);
  EXPECT_LT(compare_dcos_versions("1.13.9", "2.0.0"), 0);
  EXPECT_LT(compare_dcos_versions("2.1.0", "2.2.1"), 0);
  EXPECT_EQ(compare_dcos_versions("2.2.1", "2.2.1"), 0);
  EXPECT_EQ(compare_dcos_versions("2.2", "2.2.0"), 0); // a missing component is 0
}

TEST(NodeDcosVersion, ASuffixCountsAsItsNumericPrefix)
{
  EXPECT_EQ(compare_dcos_versions("2.2.0-beta1", "2.2.0"), 0);
  EXPECT_LT(compare_dcos_versions("2.1.0-rc2", "2.2.0-beta1"), 0);
  EXPECT_EQ(node::version_numbers("1.13.0-dev.2"), (std::vector<unsigned long>{1, 13, 0}));
  EXPECT_THROW(node::version_numbers("beta"), Error);
  EXPECT_THROW(node::version_numbers(""), Error);
}

TEST(NodeDcosVersion, ReadFromTheRootOrAbsent)
{
  test::ScratchDir dir;
  EXPECT_FALSE(node::read_dcos_version(dir.path()).has_value());
  test::write_text(dir / "opt/mesosphere/etc/dcos-version.json",
                   R"({"version": "2.2.1", "dcos-image-commit": "abc", "bootstrap-id": "def"})");
  EXPECT_EQ(node::read_dcos_version(dir.path()), "2.2.1");
  test::write_text(dir / "opt/mesosphere/etc/dcos-version.json", R"({"commit": "abc"})");
  EXPECT_THROW(node::read_dcos_version(dir.path()), Error);
}

} // namespace
} // namespace kiln
