#include "support/reproducible.hpp"

#include "support/ab_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kiln::test {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path
ab_fixture_bootstrap_tar(const fs::path& scratch)
{
  write_text(scratch / "probe.yaml", "name: probe\n" + ab_fixture_base_and_size() +
                                       "stages:\n  - name: none\n    steps: [{file: {path: /x, content: x}}]\n");
  util::RunResult r = run_kiln({"plan", "--json", (scratch / "probe.yaml").string()}, ab_fixture_env());
  EXPECT_TRUE(r.ok()) << r.err;
  return ab_fixture_cache() / "bootstrap" / (json::parse(r.out).at("base_key").get<std::string>() + ".tar");
}

TwiceResult
build_twice_and_compare(const fs::path& recipe, const fs::path& scratch, const std::string& name)
{
  TwiceResult result;
  std::vector<json> builds;
  for (const std::string n : {"1", "2"}) {
    util::RunResult r = run_kiln({"build", "--json", recipe.string(), "--cache", (scratch / ("cache" + n)).string(),
                                  "-o", (scratch / ("out" + n)).string()},
                                 ab_fixture_env());
    fs::remove_all(scratch / ("cache" + n)); // its layers: a few GiB no longer needed
    if (!r.ok()) {
      ADD_FAILURE() << "build " << n << " failed: " << r.err;
      return result;
    }
    if (n == "1") {
      result.build_log = r.err;
    }
    builds.push_back(json::parse(r.out));
  }
  const json& one = builds[0].at("outputs");
  const json& two = builds[1].at("outputs");
  result.outputs = one.size();
  EXPECT_EQ(one.size(), two.size());
  bool same = one.size() == two.size();
  for (std::size_t i = 0; i < std::min(one.size(), two.size()); ++i) {
    EXPECT_EQ(one[i].at("name"), two[i].at("name"));
    EXPECT_EQ(one[i].at("sha256"), two[i].at("sha256")) << one[i].at("name");
    same = same && one[i].at("sha256") == two[i].at("sha256");
  }
  const std::string manifest = name + ".manifest.json";
  EXPECT_EQ(read_text(scratch / "out1" / manifest), read_text(scratch / "out2" / manifest));
  if (!same) {
    // What differs inside, for whoever reads the failure.
    util::RunResult d =
      run_kiln({"diff", "--cache", (scratch / "diff-cache").string(), (scratch / "out1" / (name + ".raw")).string(),
                (scratch / "out2" / (name + ".raw")).string()});
    ADD_FAILURE() << "kiln diff of the two raw images:\n" << d.out.substr(0, 4000) << d.err.substr(0, 2000);
  }
  return result;
}

} // namespace kiln::test
