// kiln's grub.cfg generator: every branch of the boot-time state machine is present,
// the tries table counts down from 9 to 0, kernel arguments are quoted for GRUB script,
// and GRUB's own parser (grub-script-check, grub-common) accepts the result.
#include "core/slots/grubcfg.hpp"
#include "core/util/error.hpp"
#include "core/util/process.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

using test::error_of;

slots::GrubConfig
config()
{
  slots::GrubConfig c;
  c.partuuid_a = "0b5a6c1e-1111-4a4a-8a8a-000000000004";
  c.partuuid_b = "0b5a6c1e-2222-4b4b-8b8b-000000000005";
  return c;
}

void
has(const std::string& text, const std::string& needle)
{
  EXPECT_NE(text.find(needle), std::string::npos) << "missing: " << needle;
}

// The text between two markers, for checks that must hold inside one block.
std::string
between(const std::string& text, const std::string& from, const std::string& to)
{
  size_t a = text.find(from);
  size_t b = text.find(to, a == std::string::npos ? 0 : a + from.size());
  EXPECT_NE(a, std::string::npos) << from;
  EXPECT_NE(b, std::string::npos) << to;
  if (a == std::string::npos || b == std::string::npos) {
    return {};
  }
  return text.substr(a, b - a);
}

void
script_check(const std::string& cfg)
{
  test::ScratchDir dir;
  test::write_text(dir / "grub.cfg", cfg);
  auto r = util::run({test::require_program("grub-script-check", "grub-common"), (dir / "grub.cfg").string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << cfg;
}

TEST(GrubCfg, FindsTheDiskAtRuntimeAndLoadsKilnBootsEnvExplicitly)
{
  std::string cfg = slots::make_grub_cfg(config());
  has(cfg, "regexp --set=1:kiln_disk '^([^,()]+),' \"$root\"\n");
  has(cfg, "regexp --set=1:kiln_disk '^\\(([^,()]+),' \"$prefix\"\n");
  has(cfg, "set kiln_env=\"(${kiln_disk},gpt3)/grub/grubenv\"\n");
  has(cfg, "load_env --file \"$kiln_env\" kiln_order kiln_A_state kiln_A_tries kiln_B_state kiln_B_tries\n");
  // Defaults come before the load, so a missing block reads as "nothing bootable".
  EXPECT_LT(cfg.find("set kiln_A_state=empty\n"), cfg.find("load_env"));
  EXPECT_LT(cfg.find("set kiln_order=\"A B\"\n"), cfg.find("load_env"));
  has(cfg, "insmod xfs\n");
  has(cfg, "export kiln_disk\n");
  // No GRUB disk name is hard-coded except as the last resort after both regexps.
  EXPECT_EQ(cfg.find("(hd0"), std::string::npos);
}

// GRUB drives the serial port itself only under a BIOS. Under UEFI the firmware's console
// is the serial console already, and a second driver of the same UART beside the
// firmware's is no part of kiln's boot path.
TEST(GrubCfg, OnlyABiosGrubDrivesTheSerialPortItself)
{
  std::string cfg = slots::make_grub_cfg(config());
  std::string pc = between(cfg, "if [ \"$grub_platform\" = \"pc\" ]; then\n", "fi\n");
  has(pc, "  serial --unit=0 --speed=115200\n");
  has(pc, "  terminal_input console serial\n");
  has(pc, "  terminal_output console serial\n");
  // Nowhere else: outside that block no command mentions the serial terminal.
  std::string outside;
  std::string rest = cfg;
  rest.erase(cfg.find(pc), pc.size());
  for (const std::string& line : test::lines(rest)) {
    if (line.rfind("#", 0) != 0) {
      outside += line + "\n";
    }
  }
  EXPECT_EQ(outside.find("serial"), std::string::npos) << outside;
  EXPECT_EQ(outside.find("terminal_"), std::string::npos) << outside;
  script_check(cfg);
}

TEST(GrubCfg, EverySlotHasEveryBranchAndTheTriesTable)
{
  std::string cfg = slots::make_grub_cfg(config());
  for (std::string s : {"A", "B"}) {
    std::string block = between(cfg, "    if [ \"$kiln_slot\" = \"" + s + "\" ]; then\n", "      fi\n    fi\n");
    has(block, "if [ \"$kiln_" + s + "_state\" = \"good\" ]; then\n        set kiln_pick=" + s + "\n");
    has(block, "elif [ \"$kiln_" + s + "_state\" = \"trial\" ]; then\n");
    // "9" -> "8" ... "1" -> "0", each choosing the slot.
    for (int n = 9; n >= 1; --n) {
      has(block, std::string(n == 9 ? "if" : "elif") + " [ \"$kiln_" + s + "_tries\" = \"" + std::to_string(n) +
                   "\" ]; then\n          set kiln_" + s + "_tries=" + std::to_string(n - 1) +
                   "\n          set kiln_pick=" + s + "\n");
    }
    // "0" (or garbage) turns the slot bad, saved; a decrement is saved before booting.
    has(block, "else\n          # No tries left: the slot never confirmed itself.\n          set kiln_" + s +
                 "_state=bad\n          save_env --file \"$kiln_env\" kiln_" + s + "_state\n");
    has(block, "if [ \"$kiln_pick\" = \"" + s +
                 "\" ]; then\n"
                 "          # Saved before booting: a crash or hang of this try still counts.\n"
                 "          save_env --file \"$kiln_env\" kiln_" +
                 s + "_tries\n");
    // The last-resort walk picks a non-empty slot without touching the block.
    has(cfg, "        if [ \"$kiln_" + s + "_state\" != \"empty\" ]; then\n          set kiln_pick=" + s + "\n");
    has(cfg, "menuentry \"kiln slot " + s + "\" --id kiln-" + s + " {\n");
  }
  // The walk only considers a slot while nothing is chosen yet.
  has(cfg, "for kiln_slot in $kiln_order; do\n  if [ -z \"$kiln_pick\" ]; then\n");
  has(cfg, "set default=\"kiln-$kiln_pick\"\n");
  has(cfg, "if [ -z \"$kiln_pick\" ]; then\n  set kiln_pick=A\nfi\n");
  // Three save_env per slot at most (bad, tries), and nothing else is ever saved.
  size_t saves = 0;
  for (size_t at = cfg.find("save_env"); at != std::string::npos; at = cfg.find("save_env", at + 1)) {
    ++saves;
  }
  EXPECT_EQ(saves, 4u);
  script_check(cfg);
}

TEST(GrubCfg, KernelCommandLinePerSlot)
{
  slots::GrubConfig c = config();
  c.panic = 7;
  c.kernel_args = {"net.ifnames=0", "quiet"};
  EXPECT_EQ(slots::kernel_cmdline(c, 'A'), "root=PARTUUID=0b5a6c1e-1111-4a4a-8a8a-000000000004 ro kiln.slot=A panic=7 "
                                           "console=tty0 console=ttyS0,115200 net.ifnames=0 quiet");
  std::string cfg = slots::make_grub_cfg(c);
  has(cfg, "  linux (${kiln_disk},gpt5)/boot/vmlinuz root=PARTUUID=0b5a6c1e-2222-4b4b-8b8b-000000000005 ro kiln.slot=B "
           "panic=7 console=tty0 console=ttyS0,115200 net.ifnames=0 quiet\n"
           "  initrd (${kiln_disk},gpt5)/boot/initrd.img\n");
  has(cfg,
      "  linux (${kiln_disk},gpt4)/boot/vmlinuz root=PARTUUID=0b5a6c1e-1111-4a4a-8a8a-000000000004 ro kiln.slot=A ");
  EXPECT_EQ(cfg.find("linuxefi"), std::string::npos);
  EXPECT_EQ(slots::make_grub_cfg(config()).find("panic=10 "), slots::make_grub_cfg(config()).find("panic="));
}

TEST(GrubCfg, QuotesArgumentsGrubWouldInterpret)
{
  EXPECT_EQ(slots::grub_quote("console=ttyS0,115200"), "console=ttyS0,115200");
  EXPECT_EQ(slots::grub_quote("a=$x"), "'a=$x'");
  EXPECT_EQ(slots::grub_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(slots::grub_quote("x;reboot"), "'x;reboot'");
  EXPECT_EQ(slots::grub_quote("{}"), "'{}'");
  slots::GrubConfig c = config();
  c.kernel_args = {"dcos=$role", "note=it's", "a;b"};
  std::string cfg = slots::make_grub_cfg(c);
  has(cfg, " 'dcos=$role' 'note=it'\\''s' 'a;b'\n");
  script_check(cfg);

  for (std::string bad : std::vector<std::string>{"", "two words", "tab\there", "nl\n"}) {
    c.kernel_args = {bad};
    EXPECT_EQ(error_of([&] { slots::make_grub_cfg(c); }).subject().rfind("kernel argument", 0), 0u) << bad;
  }
  c.kernel_args = {};
  c.partuuid_b.clear();
  EXPECT_NE(std::string(error_of([&] { slots::make_grub_cfg(c); }).what()).find("no partition GUID for slot B"),
            std::string::npos);
}

TEST(GrubCfg, RedHatEfiCommandsAndExt4Slots)
{
  slots::GrubConfig c = config();
  c.efi_linux_commands = true;
  c.root_fs = "ext4";
  std::string cfg = slots::make_grub_cfg(c);
  has(cfg, "  if [ \"$grub_platform\" = \"efi\" ]; then\n    linuxefi (${kiln_disk},gpt4)/boot/vmlinuz root=PARTUUID=");
  has(cfg, "    initrdefi (${kiln_disk},gpt4)/boot/initrd.img\n  else\n    linux (${kiln_disk},gpt4)/boot/vmlinuz ");
  EXPECT_EQ(cfg.find("insmod xfs"), std::string::npos);
  script_check(cfg);
  c.root_fs = "btrfs";
  EXPECT_NE(std::string(error_of([&] { slots::make_grub_cfg(c); }).what()).find("xfs or ext4"), std::string::npos);
}

TEST(GrubCfg, EspStubHandsOverToKilnBoot)
{
  std::string stub = slots::make_esp_stub_cfg();
  has(stub, "set root=\"${kiln_disk},gpt3\"\n");
  has(stub, "configfile \"($root)/grub/grub.cfg\"\n");
  script_check(stub);
}

// EL7's GRUB looks for $prefix/grub.cfg with $prefix=(hdN,gpt3)/grub2: the stub keeps
// $prefix (its modules live there) and loads kiln's /grub/grub.cfg from that partition.
TEST(GrubCfg, PrefixStubLoadsKilnsGrubCfgFromThePrefixPartition)
{
  std::string stub = slots::make_prefix_stub_cfg();
  has(stub, "regexp --set=1:kiln_prefix_dev '^\\(([^()]+)\\)' \"$prefix\"\n");
  has(stub, "configfile \"(${kiln_prefix_dev})/grub/grub.cfg\"\n");
  EXPECT_EQ(stub.find("set prefix"), std::string::npos) << stub;
  script_check(stub);
}

} // namespace
} // namespace kiln
