// The RPM fixture (support/rpm_repo.hpp) is the same bytes every time: two packages and a
// repository made twice, in two places at two moments, are identical file for file. Real
// rpmbuild and createrepo_c.
#include "core/crypto/sha256.hpp"
#include "support/rpm_repo.hpp"
#include "support/test_support.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <map>
#include <thread>

namespace kiln {
namespace {

namespace fs = std::filesystem;

// Every file beneath `dir`, by relative path, with its digest.
std::map<std::string, std::string>
digests(const fs::path& dir)
{
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) {
      out[fs::relative(e.path(), dir).string()] = crypto::sha256_file(e.path());
    }
  }
  return out;
}

TEST(RpmRepoFixture, MadeTwiceIsTheSameBytes)
{
  test::ScratchDir dir;
  for (const char* n : {"one", "two"}) {
    const fs::path repo = dir / n / "repo";
    fs::create_directories(repo);
    for (const auto& [name, version] : {std::pair{"kiln-hello", "1.0"}, std::pair{"kiln-loose", "2.1"}}) {
      fs::path rpm = test::build_rpm(dir / n / "rpmbuild", name, version);
      fs::copy_file(rpm, repo / rpm.filename());
    }
    test::publish_rpm_repo(repo);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // another second on the clock
  }
  std::map<std::string, std::string> one = digests(dir / "one/repo");
  EXPECT_EQ(one, digests(dir / "two/repo"));
  EXPECT_EQ(one.count("kiln-hello-1.0-1.noarch.rpm"), 1u);
  EXPECT_EQ(one.count("repodata/repomd.xml"), 1u);
  EXPECT_GE(one.size(), 5u); // two packages, repomd.xml and its primary, filelists, other
}

} // namespace
} // namespace kiln
