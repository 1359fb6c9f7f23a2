// Bad bundles are refused by `kiln build` before any image is touched: the error names
// the file, the cache gets no layer, and the base is never made (no mmdebstrap, no
// appliance). Local trees and trees served over HTTP (127.0.0.1) alike.
#include "support/dcos_fixture.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kiln {
namespace {

namespace fs = std::filesystem;

void
write_recipe(const fs::path& dir, const std::string& bundle)
{
  test::write_text(dir / "recipe.yaml", "name: refused\n"
                                        "base:\n  bootstrap: {suite: bookworm, variant: minbase}\n"
                                        "size: 1G\n"
                                        "stages:\n  - name: s\n    steps:\n      - file: {path: /etc/x, content: x}\n"
                                        "dcos: {bundle: '" +
                                          bundle + "', role: slave}\n");
}

util::RunResult
build(const fs::path& dir)
{
  return test::run_kiln({"build", (dir / "recipe.yaml").string(), "-o", (dir / "out").string(), "--cache",
                         (dir / "cache").string(), "--json"});
}

void
expect_untouched(const fs::path& dir)
{
  std::error_code ec;
  EXPECT_TRUE(!fs::exists(dir / "cache/layers") || fs::is_empty(dir / "cache/layers"));
  EXPECT_TRUE(!fs::exists(dir / "cache/bootstrap") || fs::is_empty(dir / "cache/bootstrap"));
  EXPECT_FALSE(fs::exists(dir / "out/refused.qcow2"));
}

TEST(DcosBundleRefusal, LocalOnlineBundleIsRefusedBeforeAnyImage)
{
  test::ScratchDir dir;
  test::ServeTreeOptions o;
  o.bootstrap_url = "http://10.1.1.8:8080";
  test::make_serve_tree(dir / "serve", o);
  write_recipe(dir.path(), "serve");
  util::RunResult r = build(dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("kiln: error: " + (dir / "serve").string() +
                       "/dcos_install.sh: generated with bootstrap_url http://10.1.1.8:8080"),
            std::string::npos)
    << r.err;
  EXPECT_NE(r.err.find("dcos_generate_config.sh --genconf"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("appliance"), std::string::npos) << r.err;
  expect_untouched(dir.path());
}

TEST(DcosBundleRefusal, LocalIncompleteBundleNamesTheMissingPackage)
{
  test::ScratchDir dir;
  test::ServeTree t = test::make_serve_tree(dir / "serve");
  fs::path gone = dir / "serve" / ("packages/mesos/" + t.packages[2] + ".tar.xz");
  write_recipe(dir.path(), "serve");
  // plan sees it too (the digest needs every file)...
  fs::remove(gone);
  util::RunResult p = test::run_kiln({"plan", (dir / "recipe.yaml").string()});
  EXPECT_NE(p.err.find("kiln: error: " + gone.string() + ": missing"), std::string::npos) << p.err;
  // ...and build, without touching an image.
  util::RunResult r = build(dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("kiln: error: " + gone.string() + ": missing"), std::string::npos) << r.err;
  expect_untouched(dir.path());
}

TEST(DcosBundleRefusal, CorruptPackageFoundOnlyByReadingThrough)
{
  test::ScratchDir dir;
  test::ServeTree t = test::make_serve_tree(dir / "serve");
  fs::path bad = dir / "serve" / ("packages/marathon/" + t.packages[3] + ".tar.xz");
  fs::resize_file(bad, fs::file_size(bad) - 12);
  write_recipe(dir.path(), "serve");
  // plan (no read-through) accepts it; build reads every archive and refuses.
  EXPECT_EQ(test::run_kiln({"plan", (dir / "recipe.yaml").string()}).exit_code, 0);
  util::RunResult r = build(dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("kiln: error: " + bad.string() + ": not a readable tar.xz"), std::string::npos) << r.err;
  expect_untouched(dir.path());
}

TEST(DcosBundleRefusal, UrlBundleIsFetchedThenRefusedNamingTheUrl)
{
  test::ScratchDir dir;
  test::ServeTree t = test::make_serve_tree(dir / "serve");
  fs::remove(dir / "serve" / ("packages/marathon/" + t.packages[3] + ".tar.xz"));
  test::HttpServer server(dir / "serve");
  write_recipe(dir.path(), server.url("/files"));
  util::RunResult r = build(dir.path());
  EXPECT_EQ(r.exit_code, 1);
  std::string missing = server.url("/files/packages/marathon/" + t.packages[3] + ".tar.xz");
  EXPECT_NE(r.err.find("kiln: error: " + missing), std::string::npos) << r.err;
  EXPECT_GT(server.count("/files/packages/marathon/" + t.packages[3] + ".tar.xz"), 0);
  // The installer's inputs were asked for; the index files that nodes never read too
  // (kiln needs the ids), nothing else.
  EXPECT_EQ(server.count("/files/cluster-package-info.json"), 0);
  expect_untouched(dir.path());

  // Fetched again, the server is only asked whether each file changed (the cache's ETag
  // and Last-Modified): what did not change comes back 304, without its body.
  EXPECT_EQ(build(dir.path()).exit_code, 1);
  const std::string list = "/files/cluster-package-list.latest";
  std::vector<nlohmann::json> asked;
  for (const auto& q : server.requests()) {
    if (q["path"] == list) {
      asked.push_back(q);
    }
  }
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_TRUE(asked[0]["if_none_match"].is_null());
  EXPECT_EQ(asked[0]["status"], 200);
  EXPECT_TRUE(asked[1]["if_none_match"].is_string());
  EXPECT_EQ(asked[1]["status"], 304);
  expect_untouched(dir.path());
}

TEST(DcosBundleRefusal, UrlBundleWithOnlineBootstrapUrl)
{
  test::ScratchDir dir;
  test::ServeTreeOptions o;
  o.bootstrap_url = "http://10.1.1.8:8080";
  test::make_serve_tree(dir / "serve", o);
  test::HttpServer server(dir / "serve");
  write_recipe(dir.path(), server.url("/files"));
  util::RunResult r = build(dir.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("kiln: error: " + server.url("/files") + "/dcos_install.sh: generated with bootstrap_url"),
            std::string::npos)
    << r.err;
  expect_untouched(dir.path());
}

} // namespace
} // namespace kiln
