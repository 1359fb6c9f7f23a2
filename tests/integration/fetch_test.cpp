// kiln fetch and the download cache against a real HTTP server on loopback.
#include "core/crypto/sha256.hpp"
#include "core/fetch/cache.hpp"
#include "core/util/error.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <thread>

namespace kiln::fetch {
namespace {

namespace fs = std::filesystem;
using test::HttpServer;
using test::ScratchDir;

// Deterministic, incompressible-looking payload.
std::string
payload(size_t size)
{
  std::string out;
  out.reserve(size);
  std::uint32_t x = 12345;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    out.push_back(static_cast<char>(x >> 24));
  }
  return out;
}

// Every regular file under the cache, as paths relative to it.
std::vector<std::string>
cache_files(const fs::path& root)
{
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && e.path().extension() != ".lock") {
      out.push_back(fs::relative(e.path(), root).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

class Fetch : public ::testing::Test {
protected:
  ScratchDir dir;
  std::string data = payload(300 * 1024);
  std::string digest = crypto::sha256_hex(data);
  fs::path cache_dir = dir / "cache";

  void SetUp() override { test::write_text(dir / "www/base.img", data); }

  FetchOptions options(const std::vector<std::string>& urls) const
  {
    FetchOptions o;
    o.urls = urls;
    o.sha256 = digest;
    o.backoff = std::chrono::milliseconds(10);
    return o;
  }
};

TEST_F(Fetch, DownloadsVerifiesAndPrintsThePath)
{
  HttpServer server(dir / "www");
  auto r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest, "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path printed = test::lines(r.out).at(0);
  EXPECT_EQ(printed, fs::canonical(cache_dir) / "blobs/sha256" / digest.substr(0, 2) / digest);
  EXPECT_EQ(test::read_text(printed), data);
  EXPECT_EQ(r.err, ""); // not a terminal: no progress output
  EXPECT_EQ(cache_files(cache_dir), std::vector<std::string>{"blobs/sha256/" + digest.substr(0, 2) + "/" + digest});
}

TEST_F(Fetch, SecondCallIsACacheHitWithoutARequest)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/files/base.img");
  ASSERT_EQ(test::run_kiln({"fetch", url, "--sha256", digest, "--cache", cache_dir.string()}).exit_code, 0);
  auto r = test::run_kiln({"fetch", url, "--sha256", digest, "--cache", cache_dir.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["cache_hit"].get<bool>());
  EXPECT_EQ(server.count("/files/base.img"), 1);
}

// An unpinned URL is fetched again only when it changed: the cache keeps the server's
// ETag and Last-Modified, asks with If-None-Match / If-Modified-Since, and reuses its
// blob on 304. A record it cannot use means a plain request.
TEST_F(Fetch, AnUnpinnedUrlIsDownloadedAgainOnlyWhenItChanged)
{
  HttpServer server(dir / "www");
  const std::string path = "/files/base.img";
  auto fetch = [&] {
    auto r = test::run_kiln({"fetch", server.url(path), "--allow-unpinned", "--cache", cache_dir.string(), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  };
  nlohmann::json first = fetch();
  EXPECT_FALSE(first["cache_hit"].get<bool>());
  EXPECT_EQ(first["sha256"], digest);
  nlohmann::json again = fetch();
  EXPECT_TRUE(again["cache_hit"].get<bool>());
  EXPECT_EQ(again["path"], first["path"]);
  nlohmann::json log = server.requests();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(log[0]["if_none_match"].is_null());
  EXPECT_TRUE(log[1]["if_none_match"].is_string()); // sent
  EXPECT_FALSE(log[1]["if_modified_since"].is_null());
  EXPECT_EQ(log[1]["status"], 304);

  // Changed on the server: downloaded, the new content under its own digest.
  const std::string changed = data + "and more";
  test::write_text(dir / "www/base.img", changed);
  nlohmann::json third = fetch();
  EXPECT_FALSE(third["cache_hit"].get<bool>());
  EXPECT_EQ(third["sha256"], crypto::sha256_hex(changed));
  log = server.requests();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_FALSE(log[2]["if_none_match"].is_null());
  EXPECT_EQ(log[2]["status"], 200);

  // A damaged record: a plain request.
  for (const auto& e : fs::directory_iterator(cache_dir / "urls")) {
    test::write_text(e.path(), "{\"url\": ");
  }
  EXPECT_FALSE(fetch()["cache_hit"].get<bool>());
  log = server.requests();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_TRUE(log[3]["if_none_match"].is_null());
  EXPECT_EQ(log[3]["status"], 200);
}

TEST_F(Fetch, CacheFromEnvironment)
{
  HttpServer server(dir / "www");
  auto r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest},
                          {{"KILN_CACHE", (dir / "envcache").string()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::lines(r.out).at(0).rfind(fs::canonical(dir / "envcache").string(), 0), 0u);
}

TEST_F(Fetch, WrongDigestLeavesNothingInTheCache)
{
  HttpServer server(dir / "www");
  std::string wrong = crypto::sha256_hex("something else");
  auto r = test::run_kiln(
    {"fetch", server.url("/files/base.img"), "--sha256", wrong, "--cache", cache_dir.string(), "--retry-delay", "10"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln: error: " + server.url("/files/base.img") + ": sha256 mismatch: expected " + wrong + ", got " +
                     digest + "\n");
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(cache_files(cache_dir).empty());
}

TEST_F(Fetch, NotFoundIsNotRetried)
{
  HttpServer server(dir / "www");
  auto r = test::run_kiln({"fetch", server.url("/files/missing.img"), "--sha256", digest, "--cache", cache_dir.string(),
                           "--retry-delay", "10"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln: error: " + server.url("/files/missing.img") + ": HTTP 404\n");
  EXPECT_EQ(server.count("/files/missing.img"), 1);
  EXPECT_TRUE(cache_files(cache_dir).empty());
}

TEST_F(Fetch, ServerErrorsAreRetriedWithBackoff)
{
  HttpServer server(dir / "www");
  Cache cache(cache_dir);
  auto o = options({server.url("/status/503/base.img")});
  o.attempts = 3;
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(cache.fetch(o), Error);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(server.count("/status/503/base.img"), 3);
  EXPECT_GE(waited, std::chrono::milliseconds(10 + 20)); // two back-off sleeps, doubling
}

TEST_F(Fetch, DroppedConnectionResumesWithARangeRequest)
{
  HttpServer server(dir / "www");
  Cache cache(cache_dir);
  const std::string path = "/drop/100000/base.img";
  FetchResult result = cache.fetch(options({server.url(path)}));
  EXPECT_EQ(test::read_text(result.path), data);
  auto log = server.requests();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(log[0]["range"].is_null());
  // The retry asks only for what is missing; how much arrived before the cut is up to TCP.
  std::string range = log[1]["range"];
  ASSERT_EQ(range.rfind("bytes=", 0), 0u) << range;
  auto from = std::stoul(range.substr(6));
  EXPECT_GT(from, 0u);
  EXPECT_LE(from, 100000u);
}

TEST_F(Fetch, ServerIgnoringRangeRestartsCleanly)
{
  HttpServer server(dir / "www");
  Cache cache(cache_dir);
  // A stale partial from an earlier, interrupted run.
  fs::create_directories(cache_dir / "partial");
  test::write_text(cache_dir / "partial" / (digest + ".part"), data.substr(0, 5000));
  FetchResult result = cache.fetch(options({server.url("/norange/base.img")}));
  EXPECT_EQ(test::read_text(result.path), data);
  EXPECT_EQ(server.requests()[0]["range"], "bytes=5000-");
}

TEST_F(Fetch, CorruptPartialIsDiscardedAndFetchedAgain)
{
  HttpServer server(dir / "www");
  Cache cache(cache_dir);
  fs::create_directories(cache_dir / "partial");
  test::write_text(cache_dir / "partial" / (digest + ".part"), std::string(5000, 'x'));
  FetchResult result = cache.fetch(options({server.url("/files/base.img")}));
  EXPECT_EQ(test::read_text(result.path), data);
  auto log = server.requests();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0]["range"], "bytes=5000-");
  EXPECT_TRUE(log[1]["range"].is_null());
}

TEST_F(Fetch, FailingMirrorFallsThroughToAWorkingOne)
{
  HttpServer server(dir / "www");
  auto r = test::run_kiln({"fetch", server.url("/status/500/base.img"), "--mirror", server.url("/files/nope.img"),
                           "--mirror", server.url("/files/base.img"), "--sha256", digest, "--cache", cache_dir.string(),
                           "--retries", "1", "--retry-delay", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_text(test::lines(r.out).at(0)), data);
  EXPECT_EQ(server.count("/status/500/base.img"), 2); // one retry
  EXPECT_EQ(server.count("/files/nope.img"), 1); // 404: straight to the next mirror
  EXPECT_EQ(server.count("/files/base.img"), 1);
}

TEST_F(Fetch, AllMirrorsFailingIsOneLine)
{
  HttpServer server(dir / "www");
  auto r = test::run_kiln({"fetch", server.url("/status/404/a"), "--mirror", server.url("/status/403/b"), "--sha256",
                           digest, "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  auto err = test::lines(r.err);
  ASSERT_EQ(err.size(), 2u) << r.err;
  // A plain notice when switching mirrors, then the one error line.
  EXPECT_EQ(err[0], "kiln: " + server.url("/status/404/a") + ": HTTP 404; trying the next mirror");
  EXPECT_EQ(err[1], "kiln: error: " + server.url("/status/404/a") + ": every source failed: " +
                      server.url("/status/404/a") + ": HTTP 404; " + server.url("/status/403/b") + ": HTTP 403");
}

TEST_F(Fetch, ConcurrentFetchesShareOneDownload)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/slow/20/base.img"); // ~19 chunks of 16 KiB: about 0.4 s
  util::RunOptions o;
  std::vector<std::string> argv{KILN_BIN, "fetch", url, "--sha256", digest, "--cache", cache_dir.string()};
  util::RunResult a, b;
  std::thread ta([&] { a = util::run(argv, o); });
  std::thread tb([&] { b = util::run(argv, o); });
  ta.join();
  tb.join();
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(test::read_text(test::lines(a.out).at(0)), data);
  EXPECT_EQ(server.count("/slow/20/base.img"), 1);
  EXPECT_EQ(cache_files(cache_dir).size(), 1u);
}

TEST_F(Fetch, UnpinnedIsRefusedUnlessAllowed)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/files/base.img");
  auto r = test::run_kiln({"fetch", url, "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "kiln: error: " + url +
              ": no sha256 given: pin the input with --sha256, or pass --allow-unpinned to accept it unverified\n");
  EXPECT_EQ(server.count("/files/base.img"), 0);
  r = test::run_kiln({"fetch", url, "--cache", cache_dir.string(), "--allow-unpinned", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["sha256"], digest);
}

TEST_F(Fetch, BadDigestArgumentIsUsageError)
{
  auto r = test::run_kiln({"fetch", "http://127.0.0.1:1/x", "--sha256", "XYZ", "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "kiln: error: http://127.0.0.1:1/x: sha256 must be 64 lower-case hex digits, not 'XYZ'\n");
}

TEST_F(Fetch, InterruptedDownloadLeavesNeitherBlobNorPartial)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/slow/100/base.img"); // about 2 s in all
  util::RunOptions o;
  util::Child child({KILN_BIN, "fetch", url, "--sha256", digest, "--cache", cache_dir.string()}, o);
  fs::path partial = cache_dir / "partial" / (digest + ".part");
  for (int i = 0; i < 200 && !(fs::exists(partial) && fs::file_size(partial) > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(partial));
  child.kill(SIGTERM);
  EXPECT_EQ(child.wait(), 143); // 128 + SIGTERM, as shells report it
  EXPECT_EQ(cache_files(cache_dir), std::vector<std::string>{}); // no blob, no partial
  auto r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest, "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_text(test::lines(r.out).at(0)), data);
  EXPECT_TRUE(server.requests().back()["range"].is_null());
}

TEST_F(Fetch, PartialOfAKilledProcessResumesWhileWithinTheBound)
{
  HttpServer server(dir / "www");
  fs::path partial = cache_dir / "partial" / (digest + ".part");
  test::write_text(partial, data.substr(0, 1000)); // what SIGKILL leaves behind
  auto r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest, "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.requests().back()["range"], "bytes=1000-");
  // A partial past the pinned size is garbage: dropped, fetched from the start.
  fs::remove_all(cache_dir);
  test::write_text(partial, std::string(data.size() + 1, 'x'));
  r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest, "--size", std::to_string(data.size()),
                      "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(server.requests().back()["range"].is_null());
  EXPECT_EQ(test::read_text(test::lines(r.out).at(0)), data);
}

TEST_F(Fetch, EndlessBodyStopsAtMaxSizeAndLeavesNothing)
{
  HttpServer server(dir / "www");
  auto start = std::chrono::steady_clock::now();
  auto r = test::run_kiln(
    {"fetch", server.url("/endless/base.img"), "--sha256", digest, "--max-size", "4M", "--cache", cache_dir.string()});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln: error: " + server.url("/endless/base.img") + ": larger than 4194304 bytes\n");
  EXPECT_EQ(cache_files(cache_dir), std::vector<std::string>{});
  EXPECT_EQ(server.count("/endless/base.img"), 1); // not retried: the bound is no transient failure
}

TEST_F(Fetch, DefaultMaxSizeIs64GiB)
{
  EXPECT_EQ(FetchOptions{}.max_size, 64ULL << 30);
}

TEST_F(Fetch, PinnedSizeRefusesOtherSizes)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/files/base.img");
  auto r = test::run_kiln(
    {"fetch", url, "--sha256", digest, "--size", std::to_string(data.size() - 1), "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln: error: " + url + ": larger than " + std::to_string(data.size() - 1) + " bytes\n");
  r = test::run_kiln(
    {"fetch", url, "--sha256", digest, "--size", std::to_string(data.size() + 1), "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln: error: " + url + ": " + std::to_string(data.size()) + " bytes, expected " +
                     std::to_string(data.size() + 1) + "\n");
  EXPECT_EQ(cache_files(cache_dir), std::vector<std::string>{});
}

// A recipe pins its base's size beside its digest: `kiln build` enforces it while
// fetching, before any appliance starts, and `kiln plan` shows it.
TEST_F(Fetch, RecipePinnedSizeIsEnforcedByBuild)
{
  HttpServer server(dir / "www");
  const std::string url = server.url("/files/base.img");
  const std::string pinned = std::to_string(data.size() - 1);
  test::write_text(dir / "r.yaml", "name: pinned\nbase: {url: '" + url + "', sha256: " + digest + ", size: " + pinned +
                                     ", format: raw}\n");
  auto p = test::run_kiln({"plan", (dir / "r.yaml").string(), "--json"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(nlohmann::json::parse(p.out)["base"]["size"], data.size() - 1) << p.out;
  auto r =
    test::run_kiln({"build", (dir / "r.yaml").string(), "-o", (dir / "out").string(), "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("kiln: error: " + url + ": larger than " + pinned + " bytes"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("appliance"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out/pinned.qcow2"));
  EXPECT_EQ(server.count("/files/base.img"), 1);
  // A size that is no size is the recipe's error, with its place.
  test::write_text(dir / "bad.yaml", "name: pinned\nbase: {url: '" + url + "', sha256: " + digest + ", size: lots}\n");
  p = test::run_kiln({"plan", (dir / "bad.yaml").string()});
  EXPECT_EQ(p.exit_code, 2);
  EXPECT_NE(p.err.find("bad.yaml:2:"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("size must be a size such as 4G"), std::string::npos) << p.err;
}

TEST_F(Fetch, TrickleTimesOutAndReleasesTheLock)
{
  HttpServer server(dir / "www");
  std::string slow = server.url("/trickle/400/base.img"); // 2.5 B/s
  auto start = std::chrono::steady_clock::now();
  auto r = test::run_kiln(
    {"fetch", slow, "--sha256", digest, "--stall-timeout", "2", "--retries", "0", "--cache", cache_dir.string()});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "kiln: error: " + slow + ": slower than 1024 bytes/s for 2 s\n");
  EXPECT_LT(took, std::chrono::seconds(15));
  EXPECT_EQ(cache_files(cache_dir), std::vector<std::string>{});
  // The digest's lock is free again: a second fetch does not wait for anything.
  r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest, "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Fetch, CorruptBlobIsNotAHit)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/files/base.img");
  auto size = std::to_string(data.size());
  auto r = test::run_kiln({"fetch", url, "--sha256", digest, "--size", size, "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path blob = test::lines(r.out).at(0);
  // A truncated blob fails the size check of a pinned input and is fetched again.
  fs::resize_file(blob, 100);
  r = test::run_kiln({"fetch", url, "--sha256", digest, "--size", size, "--cache", cache_dir.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out)["cache_hit"].get<bool>());
  EXPECT_EQ(test::read_text(blob), data);
  // Same size, other bytes: only a rehash finds it (--verify-cache, or the cache's marker).
  std::string bad = data;
  bad[10] ^= 1;
  test::write_text(blob, bad);
  r = test::run_kiln({"fetch", url, "--sha256", digest, "--cache", cache_dir.string(), "--json"});
  EXPECT_TRUE(nlohmann::json::parse(r.out)["cache_hit"].get<bool>()); // unchecked by default
  r = test::run_kiln({"fetch", url, "--sha256", digest, "--cache", cache_dir.string(), "--json", "--verify-cache"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out)["cache_hit"].get<bool>());
  EXPECT_EQ(test::read_text(blob), data);
  test::write_text(blob, bad);
  test::write_text(cache_dir / "verify-on-hit", "");
  r = test::run_kiln({"fetch", url, "--sha256", digest, "--cache", cache_dir.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out)["cache_hit"].get<bool>());
  EXPECT_EQ(test::read_text(blob), data);
}

TEST_F(Fetch, CacheVerifyRemovesCorruptBlobs)
{
  HttpServer server(dir / "www");
  test::write_text(dir / "www/other.img", "other");
  auto r = test::run_kiln({"fetch", server.url("/files/base.img"), "--sha256", digest, "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path blob = test::lines(r.out).at(0);
  r = test::run_kiln(
    {"fetch", server.url("/files/other.img"), "--sha256", crypto::sha256_hex("other"), "--cache", cache_dir.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_kiln({"cache", "verify", "--cache", cache_dir.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "2 blob(s) checked, 0 corrupt\n");
  std::string bad = data;
  bad[0] ^= 1;
  test::write_text(blob, bad);
  r = test::run_kiln({"cache", "verify", "--cache", cache_dir.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["checked"], 2);
  EXPECT_EQ(j["removed"], nlohmann::json::array({blob.string()}));
  EXPECT_FALSE(fs::exists(blob));
  EXPECT_TRUE(fs::exists(cache_dir / "blobs" / "sha256"));
}

TEST_F(Fetch, TlsCertificatesAreVerified)
{
  auto gen = util::run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", (dir / "key.pem").string(), "-out", (dir / "cert.pem").string(), "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  HttpServer server(dir / "www", {"--tls-cert", (dir / "cert.pem").string(), "--tls-key", (dir / "key.pem").string()});
  std::string url = server.url("/files/base.img");
  auto r = test::run_kiln({"fetch", url, "--sha256", digest, "--cache", cache_dir.string(), "--retries", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("kiln: error: " + url + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("certificate"), std::string::npos) << r.err;
  // The same server is accepted once its certificate is trusted.
  r = test::run_kiln(
    {"fetch", url, "--sha256", digest, "--cache", cache_dir.string(), "--ca-file", (dir / "cert.pem").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(Fetch, ProgressOnlyOnATerminal)
{
  HttpServer server(dir / "www");
  std::string url = server.url("/slow/20/base.img");
  // script(1) gives kiln a pseudo-terminal; everything it prints comes back on stdout.
  std::string command =
    std::string(KILN_BIN) + " fetch " + url + " --sha256 " + digest + " --cache " + (dir / "tty-cache").string();
  util::RunOptions tty;
  tty.env["TERM"] = "xterm";
  auto r = util::run({"script", "-qec", command, "/dev/null"}, tty);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\r\033[Kfetch " + url + ": "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(100%)"), std::string::npos) << r.out;
  // Not a terminal: the same download prints the path and nothing else.
  auto plain = test::run_kiln({"fetch", url, "--sha256", digest, "--cache", (dir / "plain-cache").string()});
  ASSERT_EQ(plain.exit_code, 0);
  EXPECT_EQ(plain.err, "");
}

TEST_F(Fetch, FileUrls)
{
  Cache cache(cache_dir);
  FetchResult result = cache.fetch(options({"file://" + (dir / "www/base.img").string()}));
  EXPECT_EQ(test::read_text(result.path), data);
  EXPECT_FALSE(result.cache_hit);
  EXPECT_TRUE(cache.fetch(options({"file:///nonexistent"})).cache_hit);
}

} // namespace
} // namespace kiln::fetch
