#include "core/crypto/sha256.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/parallel.hpp"
#include "core/util/process.hpp"
#include "core/util/version.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace kiln {
namespace {

using test::ScratchDir;
namespace fs = std::filesystem;

TEST(AtomicFile, AppearsOnlyOnCommit)
{
  ScratchDir dir;
  fs::path target = dir / "out.txt";
  {
    util::AtomicFile f(target, 0600);
    f.write("hello");
    EXPECT_FALSE(fs::exists(target));
    EXPECT_TRUE(fs::exists(f.temp_path()));
    f.commit();
  }
  EXPECT_EQ(test::read_text(target), "hello");
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicFile, AbandonedLeavesNothing)
{
  ScratchDir dir;
  fs::path target = dir / "out.txt";
  test::write_text(target, "old");
  {
    util::AtomicFile f(target);
    f.write("half written");
  }
  EXPECT_EQ(test::read_text(target), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(ReadFile, MissingFileNamesPath)
{
  try {
    util::read_file("/nonexistent/kiln");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "/nonexistent/kiln");
    EXPECT_EQ(e.reason(), "No such file or directory");
  }
}

TEST(ReadFile, WithinALimitOnlyARegularFileThatFits)
{
  ScratchDir dir;
  test::write_text(dir / "small", "0123456789");
  EXPECT_EQ(util::read_file_within(dir / "small", 10), "0123456789");
  EXPECT_EQ(util::read_file_within(dir / "small", 9), std::nullopt);
  test::write_text(dir / "empty", "");
  EXPECT_EQ(util::read_file_within(dir / "empty", 0), "");
  EXPECT_EQ(util::read_file_within(dir / "missing", 100), std::nullopt);
  EXPECT_EQ(util::read_file_within(dir.path(), 1 << 20), std::nullopt); // a directory
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(util::read_file_within(dir / "fifo", 100), std::nullopt); // refused, not waited on
}

TEST(ParallelFor, EveryIndexOnceAtMostJobsAtATimeAndTheLowestFailureThrown)
{
  std::vector<std::atomic<int>> seen(40);
  std::atomic<int> running = 0;
  std::atomic<int> most = 0;
  util::parallel_for(seen.size(), 3, [&](std::size_t i) {
    int now = ++running;
    int m = most.load();
    while (now > m && !most.compare_exchange_weak(m, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ++seen[i];
    --running;
  });
  for (const auto& s : seen) {
    EXPECT_EQ(s.load(), 1);
  }
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 2); // side by side, not one after the other

  // Two calls fail: the lower index is the one thrown, after every started call ended;
  // nothing starts after a failure.
  std::atomic<int> started = 0;
  std::atomic<int> ended = 0;
  Error e = test::error_of([&] {
    util::parallel_for(100, 2, [&](std::size_t i) {
      ++started;
      std::this_thread::sleep_for(std::chrono::milliseconds(i == 1 ? 20 : 1));
      ++ended;
      if (i == 1 || i == 2) {
        throw Error("job " + std::to_string(i), "failed");
      }
    });
  });
  EXPECT_EQ(e.subject(), "job 1");
  EXPECT_EQ(started.load(), ended.load());
  EXPECT_LT(started.load(), 10);
  util::parallel_for(0, 0, [](std::size_t) { FAIL() << "no work, no call"; });
}

TEST(Sha256, KnownVectors)
{
  EXPECT_EQ(crypto::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(crypto::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_TRUE(crypto::is_sha256_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  EXPECT_FALSE(crypto::is_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
  EXPECT_FALSE(crypto::is_sha256_hex("abc"));
}

TEST(Sha256, TreeDigestSeesContentModeAndNames)
{
  ScratchDir dir;
  test::write_text(dir / "t/a/file", "x");
  std::string d1 = crypto::sha256_tree(dir / "t");
  EXPECT_EQ(crypto::sha256_tree(dir / "t"), d1);
  test::write_text(dir / "t/a/file", "y");
  std::string d2 = crypto::sha256_tree(dir / "t");
  EXPECT_NE(d2, d1);
  fs::permissions(dir / "t/a/file", fs::perms::owner_all);
  std::string d3 = crypto::sha256_tree(dir / "t");
  EXPECT_NE(d3, d2);
  fs::rename(dir / "t/a/file", dir / "t/a/other");
  std::string d4 = crypto::sha256_tree(dir / "t");
  EXPECT_NE(d4, d3);
  // A symlink is recorded under its own name, with its target.
  fs::create_symlink("other", dir / "t/a/link");
  std::string d5 = crypto::sha256_tree(dir / "t");
  EXPECT_NE(d5, d4);
  fs::remove(dir / "t/a/link");
  fs::create_symlink("elsewhere", dir / "t/a/link");
  EXPECT_NE(crypto::sha256_tree(dir / "t"), d5);
}

TEST(Process, CapturesOutputAndStatus)
{
  util::RunOptions options;
  options.stdin_data = "in";
  auto r = util::run({"sh", "-c", "cat; echo out; echo err >&2; exit 3"}, options);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "inout\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.tail(), "err");
}

TEST(Process, OutputPastItsBoundIsReadAndDropped)
{
  util::RunOptions options;
  options.max_output = 1000;
  // 64 MiB on stdout and on stderr: the child runs to its end (nothing blocks it) and
  // a thousand bytes of each are kept.
  auto r = util::run({"sh", "-c", "head -c 67108864 /dev/zero; head -c 67108864 /dev/zero >&2; exit 4"}, options);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.out, std::string(1000, '\0'));
  EXPECT_EQ(r.err.size(), 1000u);
}

TEST(Process, MissingProgramIsAnError)
{
  EXPECT_THROW(util::run({"kiln-no-such-program"}), Error);
  EXPECT_THROW(util::run_checked({"false"}), Error);
}

} // namespace
} // namespace kiln

TEST(Version, OrdersAsRpmDoes)
{
  using kiln::util::rpm_version_compare;
  // CentOS 7's updated kernel is newer than the release's: "83" against "el".
  EXPECT_GT(rpm_version_compare("3.10.0-1160.83.1.el7.x86_64", "3.10.0-1160.el7.x86_64"), 0);
  EXPECT_LT(rpm_version_compare("3.10.0-1160.el7.x86_64", "3.10.0-1160.83.1.el7.x86_64"), 0);
  EXPECT_GT(rpm_version_compare("3.10.0-1160.102.1.el7", "3.10.0-1160.83.1.el7"), 0); // numbers, not text
  EXPECT_EQ(rpm_version_compare("1.010", "1.10"), 0); // leading zeros
  EXPECT_EQ(rpm_version_compare("1.2", "1_2"), 0); // separators only separate
  EXPECT_GT(rpm_version_compare("1.2.1", "1.2"), 0); // more segments: newer
  EXPECT_GT(rpm_version_compare("1.2b", "1.2a"), 0);
  EXPECT_GT(rpm_version_compare("6.1.0-18-amd64", "6.1.0-13-amd64"), 0); // Debian's kernels
  EXPECT_GT(rpm_version_compare("/boot/vmlinuz-6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-9-amd64"), 0);
}
