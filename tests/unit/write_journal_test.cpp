// How kiln-node starts a slot write (core/node/write_journal): the comparison only for a
// rewrite of the image the slot holds, a resume only of the same bundle's journal, and
// the journal file that records the synced progress, refused whole when damaged.
#include "core/node/write_journal.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using node::JournalFile;
using node::WriteJournal;
using node::WriteMode;
namespace fs = std::filesystem;

const std::string k_new(64, 'a');
const std::string k_old(64, 'b');

slots::SlotEnv
slot(const std::string& state, const std::string& digest)
{
  slots::SlotEnv s;
  s.slot = 'B';
  s.state = state;
  s.digest = digest;
  return s;
}

TEST(WritePlan, TheSlotIsComparedOnlyWhenItHoldsThisVeryImage)
{
  const std::uint64_t mapped = 300u << 20;
  // A first write, another image, or an empty slot: written straight, never read.
  EXPECT_EQ(node::plan_write(slot("empty", ""), std::nullopt, k_new, mapped).mode, WriteMode::straight);
  EXPECT_EQ(node::plan_write(slot("good", k_old), std::nullopt, k_new, mapped).mode, WriteMode::straight);
  EXPECT_EQ(node::plan_write(slot("empty", k_new), std::nullopt, k_new, mapped).mode, WriteMode::straight);
  // The grubenv says the slot holds this bundle: a rewrite compares and writes nothing.
  for (const char* state : {"good", "trial", "bad"}) {
    EXPECT_EQ(node::plan_write(slot(state, k_new), std::nullopt, k_new, mapped).mode, WriteMode::compare) << state;
  }
}

TEST(WritePlan, OnlyTheSameBundlesJournalResumesAndNeverPastItsData)
{
  const std::uint64_t mapped = 300u << 20;
  node::WritePlan p = node::plan_write(slot("empty", ""), WriteJournal{k_new, 128u << 20}, k_new, mapped);
  EXPECT_EQ(p.mode, WriteMode::resume);
  EXPECT_EQ(p.resume_from, 128u << 20);
  // Another bundle's journal says nothing about this one's bytes.
  p = node::plan_write(slot("empty", ""), WriteJournal{k_old, 128u << 20}, k_new, mapped);
  EXPECT_EQ(p.mode, WriteMode::straight);
  EXPECT_EQ(p.resume_from, 0u);
  // A journal left beside a slot the grubenv says holds this bundle (the switch happened,
  // the journal's removal failed): the record wins, the slot is compared.
  p = node::plan_write(slot("trial", k_new), WriteJournal{k_new, 128u << 20}, k_new, mapped);
  EXPECT_EQ(p.mode, WriteMode::compare);
  // A journal that claims more than the data is held to the data.
  p = node::plan_write(slot("empty", ""), WriteJournal{k_new, 1ull << 40}, k_new, mapped);
  EXPECT_EQ(p.resume_from, mapped);
}

TEST(WriteJournalFile, RecordsReadsBackAndRefusesWhatIsDamaged)
{
  test::ScratchDir dir;
  JournalFile journal(dir.path(), 'B');
  EXPECT_EQ(journal.path(), dir / "kiln-write-B");
  EXPECT_FALSE(journal.read());
  journal.record({k_new, 268435456});
  EXPECT_EQ(test::read_text(journal.path()), "kiln-write 1\ndigest=" + k_new + "\nbytes=268435456\n");
  std::optional<WriteJournal> j = journal.read();
  ASSERT_TRUE(j);
  EXPECT_EQ(j->digest, k_new);
  EXPECT_EQ(j->bytes, 268435456u);
  EXPECT_FALSE(JournalFile(dir.path(), 'A').read()); // each slot its own

  const std::vector<std::string> damaged = {
    "",
    "kiln-write 2\ndigest=" + k_new + "\nbytes=1\n",
    "kiln-write 1\ndigest=" + k_new + "\nbytes=1", // torn: no final newline
    "kiln-write 1\ndigest=" + k_new + "\nbytes=\n",
    "kiln-write 1\ndigest=" + k_new + "\nbytes=12x\n",
    "kiln-write 1\ndigest=" + k_new + "\nbytes=-1\n",
    "kiln-write 1\ndigest=" + std::string(64, 'G') + "\nbytes=1\n",
    "kiln-write 1\ndigest=" + k_new.substr(1) + "\nbytes=1\n",
    "kiln-write 1\ndigest=" + k_new + "\nbytes=99999999999999999999999\n",
    "kiln-write 1\ndigest=" + k_new + "\nbytes=1\n" + std::string(600, '\n'), // past the size bound
  };
  for (const auto& text : damaged) {
    test::write_text(journal.path(), text);
    EXPECT_FALSE(journal.read()) << text;
  }
  journal.remove();
  EXPECT_FALSE(fs::exists(journal.path()));
  journal.remove(); // nothing to remove is not an error
  EXPECT_TRUE(journal.try_remove());
  journal.record({k_new, 1});
  EXPECT_TRUE(journal.try_remove());
  EXPECT_FALSE(fs::exists(journal.path()));
  // What cannot be removed: remove() names it, try_remove() says so.
  fs::create_directories(journal.path() / "x");
  EXPECT_FALSE(journal.try_remove());
  Error e = test::error_of([&] { journal.remove(); });
  EXPECT_EQ(e.subject(), journal.path().string());
  EXPECT_TRUE(e.reason().starts_with("cannot remove: ")) << e.reason();
}

} // namespace
} // namespace kiln
