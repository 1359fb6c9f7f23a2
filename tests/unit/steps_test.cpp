// The pure text logic behind the edit and systemd steps (no appliance needed).
#include "image/steps/text_edit.hpp"
#include "image/steps/units.hpp"

#include <gtest/gtest.h>

namespace kiln::steps {
namespace {

TEST(SetKeyValue, ReplacesFirstAssignmentIncludingCommentedOnes)
{
  EXPECT_EQ(set_key_value("A=1\nSELINUX=enforcing\nB=2\n", "SELINUX", "permissive", "="),
            "A=1\nSELINUX=permissive\nB=2\n");
  EXPECT_EQ(set_key_value("# SELINUX=enforcing\n", "SELINUX", "permissive", "="), "SELINUX=permissive\n");
  EXPECT_EQ(set_key_value("X=1\nX=2\n", "X", "3", "="), "X=3\nX=2\n");
}

TEST(SetKeyValue, AppendsWhenAbsentAndHonoursSeparator)
{
  EXPECT_EQ(set_key_value("A=1\n", "B", "2", "="), "A=1\nB=2\n");
  EXPECT_EQ(set_key_value("", "B", "2", "="), "B=2\n");
  EXPECT_EQ(set_key_value("Port 22\n", "Port", "2222", " "), "Port 2222\n");
  // A longer key with the same prefix is another key.
  EXPECT_EQ(set_key_value("SELINUXTYPE=targeted\n", "SELINUX", "permissive", "="),
            "SELINUXTYPE=targeted\nSELINUX=permissive\n");
}

TEST(ReplaceLines, EveryMatchOrAppend)
{
  EXPECT_EQ(replace_lines("pool a\nserver b\nx\n", "^(pool|server) ", "pool c iburst"),
            "pool c iburst\npool c iburst\nx\n");
  EXPECT_EQ(replace_lines("x\n", "^pool ", "pool c"), "x\npool c\n");
}

TEST(ReplaceBlock, FirstMatchBecomesTheBlockOthersGo)
{
  const std::vector<std::string> servers{"server a iburst", "server b iburst"};
  EXPECT_EQ(replace_block("# c\nserver 0.pool iburst\nx\nserver 1.pool iburst\npool p\n", "^(server|pool) ", servers),
            "# c\nserver a iburst\nserver b iburst\nx\n");
  EXPECT_EQ(replace_block("x\n", "^server ", servers), "x\nserver a iburst\nserver b iburst\n");
  EXPECT_EQ(append_missing("x\nserver a iburst", servers), "x\nserver a iburst\nserver b iburst\n");
  EXPECT_EQ(append_missing("", servers), "server a iburst\nserver b iburst\n");
}

TEST(UnitInstallSection, ReadsOnlyInstallKeys)
{
  auto install = unit_install_section("[Unit]\nWantedBy=not-this.target\n"
                                      "[Service]\nExecStart=/bin/true\n"
                                      "[Install]\n# comment\nWantedBy=multi-user.target graphical.target\n"
                                      "WantedBy = extra.target\nAlias=foo.service\nAlso=bar.socket\n");
  EXPECT_EQ(install["WantedBy"], (std::vector<std::string>{"multi-user.target", "graphical.target", "extra.target"}));
  EXPECT_EQ(install["Alias"], std::vector<std::string>{"foo.service"});
  EXPECT_EQ(install["Also"], std::vector<std::string>{"bar.socket"});
  EXPECT_TRUE(unit_install_section("[Service]\nExecStart=x\n").empty());
}

} // namespace
} // namespace kiln::steps
