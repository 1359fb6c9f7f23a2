// kiln's grubenv reader/writer against the real grub-editenv (grub-common): values,
// escaping and the exact bytes must agree, and failed atomic updates must leave the
// old block in place.
#include "core/grubenv/grubenv.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

namespace kiln {
namespace {

using test::error_of;
using test::ScratchDir;
namespace fs = std::filesystem;

std::string
editenv()
{
  return test::require_program("grub-editenv", "grub-common");
}

std::string
editenv_run(std::vector<std::string> args)
{
  args.insert(args.begin(), editenv());
  return util::run_checked(args).out;
}

size_t
count_entries(const fs::path& dir)
{
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(Grubenv, RoundTripKeepsOrderValuesAndComments)
{
  grubenv::Env env;
  env.add_comment(grubenv::k_editenv_warning);
  env.set("ORDER", "A B");
  env.set("A_OK", "1");
  env.set("weird", "back\\slash\nnew line\\\n=#end\\");
  env.set("empty", "");
  std::string block = grubenv::serialize(env);
  ASSERT_EQ(block.size(), grubenv::k_default_size);
  EXPECT_TRUE(block.starts_with("# GRUB Environment Block\n# WARNING:"));
  EXPECT_EQ(block.back(), '#');

  grubenv::Env back = grubenv::parse(block, "mem");
  EXPECT_EQ(back, env);
  EXPECT_EQ(grubenv::serialize(back), block);
  ASSERT_EQ(back.entries().size(), 4u);
  EXPECT_EQ(back.entries()[0].name, "ORDER");
  EXPECT_EQ(back.entries()[2].value, "back\\slash\nnew line\\\n=#end\\");
  EXPECT_EQ(back.get("empty"), "");
  EXPECT_EQ(back.get("missing"), std::nullopt);
  EXPECT_EQ(back.comments(), std::vector<std::string>{std::string(grubenv::k_editenv_warning)});
}

TEST(Grubenv, WorkedExampleLayout)
{
  // reimage.md 1.2: RAUC-style variables, no warning line, padding from byte 65.
  grubenv::Env env;
  env.set("ORDER", "A B");
  env.set("A_OK", "1");
  env.set("A_TRY", "0");
  env.set("B_OK", "1");
  env.set("B_TRY", "0");
  std::string block = grubenv::serialize(env);
  EXPECT_EQ(block.substr(0, 65), "# GRUB Environment Block\nORDER=A B\nA_OK=1\nA_TRY=0\nB_OK=1\nB_TRY=0\n");
  EXPECT_EQ(block.substr(65), std::string(1024 - 65, '#'));
}

TEST(Grubenv, SetReplacesInPlaceUnsetRemoves)
{
  grubenv::Env env;
  env.set("a", "1");
  env.set("b", "2");
  env.set("c", "3");
  env.set("a", "longer value");
  EXPECT_TRUE(env.unset("b"));
  EXPECT_FALSE(env.unset("b"));
  EXPECT_EQ(env.body(), "a=longer value\nc=3\n");
  env.set("b", "4");
  EXPECT_EQ(env.body(), "a=longer value\nc=3\nb=4\n");
}

TEST(Grubenv, InvalidNamesAndValuesAreRefused)
{
  grubenv::Env env;
  EXPECT_EQ(error_of([&] { env.set("", "x"); }).reason(), "invalid variable name \"\": empty name");
  EXPECT_EQ(error_of([&] { env.set("a=b", "x"); }).reason(), "invalid variable name \"a=b\": name contains '='");
  EXPECT_EQ(error_of([&] { env.set("#a", "x"); }).reason(),
            "invalid variable name \"#a\": name starts with '#' (GRUB would read the line as a comment)");
  EXPECT_EQ(error_of([&] { env.set("a\nb", "x"); }).reason(),
            "invalid variable name \"a\\nb\": name contains a newline");
  EXPECT_THROW(env.set("a", std::string("x\0y", 3)), Error);
  EXPECT_THROW(env.add_comment("no hash"), Error);
  EXPECT_TRUE(env.entries().empty());
}

TEST(Grubenv, GrubEditenvReadsWhatKilnWrites)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  grubenv::Env env;
  env.set("ORDER", "A B");
  env.set("A_OK", "1");
  env.set("A_TRY", "0");
  env.set("cmdline", "root=/dev/sda2 quiet");
  grubenv::write_atomic(file, env);
  EXPECT_EQ(fs::file_size(file), 1024u);
  EXPECT_EQ(editenv_run({file.string(), "list"}), "ORDER=A B\nA_OK=1\nA_TRY=0\ncmdline=root=/dev/sda2 quiet\n");
}

TEST(Grubenv, KilnReadsWhatGrubEditenvWrites)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  editenv_run({file.string(), "create"});
  editenv_run({file.string(), "set", "a=b", "c=d"});
  grubenv::Env env = grubenv::read(file, 1024);
  ASSERT_EQ(env.entries().size(), 2u);
  EXPECT_EQ(env.get("a"), "b");
  EXPECT_EQ(env.get("c"), "d");
  EXPECT_EQ(env.comments(), std::vector<std::string>{std::string(grubenv::k_editenv_warning)});
  // Re-serializing what was read reproduces the file exactly.
  EXPECT_EQ(grubenv::serialize(env, 1024), test::read_text(file));
}

TEST(Grubenv, BytesIdenticalToGrubEditenv)
{
  ScratchDir dir;
  fs::path theirs = dir / "theirs";
  editenv_run({theirs.string(), "create"});
  editenv_run({theirs.string(), "set", "a=b", "c=d"});

  fs::path ours = dir / "ours";
  grubenv::update(ours, [](grubenv::Env& env) {
    env.set("a", "b");
    env.set("c", "d");
  });
  EXPECT_EQ(test::read_text(ours), test::read_text(theirs));

  // The same edits on both sides keep them identical: replace with a longer and a
  // shorter value, unset, append.
  editenv_run({theirs.string(), "set", "a=a much longer value", "new=1"});
  editenv_run({theirs.string(), "unset", "c"});
  editenv_run({theirs.string(), "set", "a=x"});
  grubenv::update(ours, [](grubenv::Env& env) {
    env.set("a", "a much longer value");
    env.set("new", "1");
    env.unset("c");
    env.set("a", "x");
  });
  EXPECT_EQ(test::read_text(ours), test::read_text(theirs));
}

TEST(Grubenv, EscapingMatchesGrubEditenv)
{
  ScratchDir dir;
  const std::vector<std::pair<std::string, std::string>> vars = {
    {"bs", "C:\\path\\to"}, {"nl", "line one\nline two"}, {"both", "a\\\nb\\"}, {"trail", "x\n"}};
  fs::path theirs = dir / "theirs";
  editenv_run({theirs.string(), "create"});
  std::vector<std::string> args = {theirs.string(), "set"};
  std::string listing;
  for (const auto& [name, value] : vars) {
    args.push_back(name + "=" + value);
    listing += name + "=" + value + "\n";
  }
  editenv_run(args);

  grubenv::Env env = grubenv::read(theirs);
  for (const auto& [name, value] : vars) {
    EXPECT_EQ(env.get(name), value) << name;
  }

  fs::path ours = dir / "ours";
  grubenv::Env mine;
  mine.add_comment(grubenv::k_editenv_warning);
  for (const auto& [name, value] : vars) {
    mine.set(name, value);
  }
  grubenv::write_atomic(ours, mine);
  EXPECT_EQ(test::read_text(ours), test::read_text(theirs));
  EXPECT_EQ(editenv_run({ours.string(), "list"}), listing);
  EXPECT_NE(test::read_text(ours).find("bs=C:\\\\path\\\\to\nnl=line one\\\nline two\n"), std::string::npos);
}

TEST(Grubenv, KeepsExistingSizeAndNeverGrows)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  test::write_text(file, std::string(grubenv::k_signature) + std::string(2048 - 25, '#'));
  grubenv::Env env;
  env.set("x", "1");
  grubenv::write_atomic(file, env);
  EXPECT_EQ(fs::file_size(file), 2048u);
  EXPECT_EQ(grubenv::read(file, 2048).get("x"), "1");
  grubenv::write_in_place(file, env);
  EXPECT_EQ(fs::file_size(file), 2048u);
  EXPECT_EQ(editenv_run({file.string(), "list"}), "x=1\n");
}

TEST(Grubenv, OverflowIsRefusedWithSizes)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  grubenv::Env env;
  env.set("a", "1");
  grubenv::write_atomic(file, env);
  std::string before = test::read_text(file);

  env.set("big", std::string(1000, 'v')); // 25 + 4 + 1005 = 1034 bytes
  Error e = error_of([&] { grubenv::write_atomic(file, env); });
  EXPECT_EQ(e.subject(), file.string());
  EXPECT_EQ(e.reason(), "the environment needs 1034 bytes but the block has 1024 (GRUB environment blocks never grow)");
  EXPECT_THROW(grubenv::write_in_place(file, env), Error);
  EXPECT_EQ(test::read_text(file), before);
  EXPECT_EQ(count_entries(dir.path()), 1u);

  // Exactly full is fine: no padding at all.
  grubenv::Env full;
  full.set("v", std::string(1024 - 25 - 3, 'f'));
  EXPECT_EQ(grubenv::serialize(full).back(), '\n');
  EXPECT_EQ(grubenv::parse(grubenv::serialize(full), "mem"), full);
}

TEST(Grubenv, BadHeaderIsRefused)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  test::write_text(file, "# GRUB Environment Blok\n" + std::string(1000, '#'));
  Error e = error_of([&] { grubenv::read(file); });
  EXPECT_EQ(e.subject(), file.string());
  EXPECT_EQ(e.reason(), "not a GRUB environment block: it does not start with the line \"# GRUB Environment Block\"");
  EXPECT_EQ(error_of([] { grubenv::parse("", "empty"); }).what(),
            std::string("empty: not a GRUB environment block: it does not start with the line \"# GRUB Environment "
                        "Block\""));
  // Neither writer replaces a file that is not an environment block.
  grubenv::Env env;
  env.set("a", "1");
  EXPECT_THROW(grubenv::write_atomic(file, env), Error);
  EXPECT_THROW(grubenv::write_in_place(file, env), Error);
  EXPECT_EQ(test::read_text(file), "# GRUB Environment Blok\n" + std::string(1000, '#'));
}

TEST(Grubenv, WrongSizeIsRefused)
{
  std::string block = grubenv::serialize(grubenv::Env{}, 512);
  Error e = error_of([&] { grubenv::parse(block, "env", 1024); });
  EXPECT_EQ(e.what(), std::string("env: wrong size: the block is 512 bytes, expected 1024"));
  EXPECT_NO_THROW(grubenv::parse(block, "env", 512));
  EXPECT_THROW(grubenv::serialize(grubenv::Env{}, 10), Error); // smaller than the signature
}

TEST(Grubenv, BrokenRecordsAreRefused)
{
  std::string sig(grubenv::k_signature);
  auto reason = [](const std::string& block) { return error_of([&] { grubenv::parse(block, "env"); }).reason(); };
  EXPECT_EQ(reason(sig + "novalue\n###"), "broken block: record at offset 25 has no '='");
  EXPECT_EQ(reason(sig + "a=1\n=2\n###"), "broken block: record at offset 29: empty name");
  EXPECT_EQ(reason(sig + "a=1###"), "broken block: byte 27 before the '#' padding is not a newline (unterminated "
                                    "last line)");
  EXPECT_EQ(reason(sig + "a=1\nxyz"), "broken block: byte 31 before the '#' padding is not a newline (unterminated "
                                      "last line)");
  EXPECT_EQ(reason(sig + "a=1\\\n###"), "broken block: record at offset 25 is not terminated by a newline");
  EXPECT_EQ(reason(sig + "a=1\na=2\n#"), "broken block: variable a is set twice (second at offset 29)");
}

// Sets or clears FS_IMMUTABLE_FL; false when the file system or capabilities do not allow it.
bool
set_immutable(const fs::path& path, bool on)
{
  util::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  int flags = 0;
  if (!fd || ::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) {
    return false;
  }
  flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  return ::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) == 0;
}

TEST(Grubenv, FailedRenameLeavesOldBlock)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  grubenv::Env env;
  env.set("A_TRY", "0");
  grubenv::write_atomic(file, env);
  std::string before = test::read_text(file);

  // An immutable target makes rename(2) fail even for root, after the new block
  // was written and synced to the temporary file.
  if (!set_immutable(file, true)) {
    GTEST_SKIP() << "cannot set the immutable flag here";
  }
  env.set("A_TRY", "1");
  Error e = error_of([&] { grubenv::write_atomic(file, env); });
  ASSERT_TRUE(set_immutable(file, false));
  EXPECT_EQ(e.subject(), file.string());
  EXPECT_TRUE(e.reason().starts_with("rename failed: ")) << e.reason();
  EXPECT_EQ(test::read_text(file), before);
  EXPECT_EQ(grubenv::read(file).get("A_TRY"), "0");
  EXPECT_EQ(count_entries(dir.path()), 1u) << "temporary file left behind";
}

TEST(Grubenv, RenameOntoDirectoryFailsCleanly)
{
  ScratchDir dir;
  fs::path target = dir / "grubenv";
  test::write_text(target / "keep", "old");
  grubenv::Env env;
  env.set("a", "1");
  Error e = error_of([&] { grubenv::write_atomic(target, env, 1024); });
  EXPECT_TRUE(e.reason().starts_with("rename failed: ")) << e.reason();
  EXPECT_EQ(test::read_text(target / "keep"), "old");
  EXPECT_EQ(count_entries(dir.path()), 1u) << "temporary file left behind";
}

TEST(Grubenv, AtomicWriteFollowsSymlink)
{
  ScratchDir dir;
  fs::create_directories(dir / "efi");
  fs::path real = dir / "efi/grubenv";
  editenv_run({real.string(), "create"});
  fs::create_symlink("efi/grubenv", dir / "grubenv");
  grubenv::update(dir / "grubenv", [](grubenv::Env& env) { env.set("B_OK", "1"); });
  EXPECT_TRUE(fs::is_symlink(dir / "grubenv"));
  EXPECT_EQ(editenv_run({real.string(), "list"}), "B_OK=1\n");
}

TEST(Grubenv, InPlaceKeepsInodeAndMatchesAtomic)
{
  ScratchDir dir;
  fs::path file = dir / "grubenv";
  editenv_run({file.string(), "create"});
  editenv_run({file.string(), "set", "A_OK=1", "A_TRY=1"});
  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);

  grubenv::Env env = grubenv::update(
    file, [](grubenv::Env& e) { e.set("A_TRY", "0"); }, grubenv::WriteMode::in_place);
  struct stat after {};
  ASSERT_EQ(::stat(file.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(editenv_run({file.string(), "list"}), "A_OK=1\nA_TRY=0\n");

  fs::path atomic = dir / "atomic";
  grubenv::write_atomic(atomic, env);
  EXPECT_EQ(test::read_text(atomic), test::read_text(file));

  // In place never creates a file.
  EXPECT_THROW(grubenv::write_in_place(dir / "missing", env), Error);
  EXPECT_FALSE(fs::exists(dir / "missing"));
}

} // namespace
} // namespace kiln
