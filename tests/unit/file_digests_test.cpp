// Local inputs hashed once (core/crypto/file_digests): a digest comes from the store while
// the file's stat is unchanged, and is computed again after any change (content, a
// touch, a replacement with the same bytes); a file changed within the racy window is
// never remembered; a damaged store is ignored; the planner hashes through it.
#include "core/crypto/file_digests.hpp"
#include "core/crypto/sha256.hpp"
#include "core/recipe/loader.hpp"
#include "core/recipe/plan.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include <fcntl.h>
#include <sys/stat.h>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using crypto::CachedDigests;

// Sets a file's modification time well in the past (so it is not racily clean).
void
age(const fs::path& path, long seconds_ago = 3600)
{
  struct timespec times[2];
  ::clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= seconds_ago;
  times[1] = times[0];
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

class file_digests : public ::testing::Test {
protected:
  void SetUp() override
  {
    test::write_text(m_file, "base image bytes\n");
    age(m_file);
  }
  // ctime follows every metadata change and cannot be set back: wait out the racy window
  // after a change so that the new state may be remembered.
  static void settle() { ::sleep(CachedDigests::k_racy_seconds); }

  test::ScratchDir m_dir;
  fs::path m_file = m_dir / "base.qcow2";
  fs::path m_store = m_dir / "cache/digests/files.json";
};

TEST_F(file_digests, a_file_is_hashed_once_across_runs)
{
  settle();
  {
    CachedDigests d(m_store);
    EXPECT_EQ(d.sha256(m_file), crypto::sha256_file(m_file));
    EXPECT_EQ(d.sha256(m_file), crypto::sha256_file(m_file));
    EXPECT_EQ(d.hashed(), 1u);
    d.save();
  }
  CachedDigests again(m_store);
  EXPECT_EQ(again.sha256(m_file), crypto::sha256_file(m_file));
  EXPECT_EQ(again.hashed(), 0u);
}

TEST_F(file_digests, a_change_of_content_size_time_or_inode_hashes_again)
{
  settle();
  CachedDigests first(m_store);
  first.sha256(m_file);
  first.save();

  // Same size, other bytes, the old modification time put back: ctime still moved.
  test::write_text(m_file, "BASE IMAGE BYTES\n");
  age(m_file);
  CachedDigests second(m_store);
  EXPECT_EQ(second.sha256(m_file), crypto::sha256_file(m_file));
  EXPECT_EQ(second.hashed(), 1u);

  // The same bytes in a new file renamed over it: a new inode.
  test::write_text(m_dir / "new", "BASE IMAGE BYTES\n");
  fs::rename(m_dir / "new", m_file);
  CachedDigests third(m_store);
  third.sha256(m_file);
  EXPECT_EQ(third.hashed(), 1u);
}

TEST_F(file_digests, a_file_changed_just_now_is_not_remembered)
{
  // "Just now" is within 2 s of the hash. On a loaded machine the write and the hash may
  // be further apart than that, and then remembering is right: such a try says nothing
  // and is made again (each try is a new file, so a remembered one cannot carry over).
  for (int attempt = 0; attempt < 5; ++attempt) {
    fs::remove(m_store);
    const std::time_t before = std::time(nullptr);
    test::write_text(m_file, "written a moment ago, try " + std::to_string(attempt) + "\n"); // ctime, mtime: now
    CachedDigests d(m_store);
    EXPECT_EQ(d.sha256(m_file), crypto::sha256_file(m_file));
    d.save();
    const bool just_now = std::time(nullptr) - before < 2;
    CachedDigests again(m_store);
    again.sha256(m_file);
    if (just_now) {
      EXPECT_EQ(again.hashed(), 1u);
      return;
    }
  }
  FAIL() << "the machine never wrote and hashed a file within 2 s in 5 tries";
}

TEST_F(file_digests, a_damaged_store_is_ignored_and_a_missing_file_is_an_error)
{
  test::write_text(m_store, "{\"version\": 1, \"files\": {\"x\": ");
  CachedDigests d(m_store);
  EXPECT_EQ(d.sha256(m_file), crypto::sha256_file(m_file));
  EXPECT_EQ(d.hashed(), 1u);
  EXPECT_THROW(d.sha256(m_dir / "absent"), Error);
}

TEST_F(file_digests, the_planner_hashes_a_base_image_through_it)
{
  settle();
  test::write_text(m_dir / "r.yaml", "name: demo\nbase:\n  path: " + m_file.string() +
                                       "\n  format: qcow2\nstages: [{name: s, steps: [{file: {path: /etc/x, "
                                       "content: x}}]}]\n");
  recipe::Recipe r = recipe::load_recipe(m_dir / "r.yaml");
  CachedDigests d(m_store);
  recipe::PlanOptions options;
  options.digests = &d;
  recipe::Plan first = recipe::make_plan(r, options);
  recipe::Plan second = recipe::make_plan(r, options);
  EXPECT_EQ(d.hashed(), 1u);
  EXPECT_EQ(first.base_key, second.base_key);
  EXPECT_EQ(first.base_key, recipe::make_plan(r).base_key); // the same key as hashing directly
}

} // namespace
} // namespace kiln
