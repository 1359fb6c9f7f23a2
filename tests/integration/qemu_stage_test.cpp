// The boot tests' watch on a stage of the boot (support/qemu_vm: ConsoleStage), with a
// real qemu: a firmware of a few bytes made here prints GRUB's banner on the serial port
// and then halts for ever, as GRUB did when it hung between its banner and its choice
// of slot (issue: the UEFI boot test's hang). The wait fails once the stage is older than
// its limit, long before the wait's own timeout, and says where the guest's CPU is.
#include "core/util/fs.hpp"
#include "support/qemu_vm.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A 64 KiB BIOS image: at the reset vector a far jump to F000:0000, which prints `text`
// on COM1 (port 0x3f8, byte by byte) and halts with interrupts off.
fs::path
make_firmware(const fs::path& path, const std::string& text)
{
  std::string rom(64 * 1024, '\0');
  const unsigned char code[] = {
    0xfa, // cli
    0xb8, 0x00, 0xf0, // mov ax, 0xf000
    0x8e, 0xd8, // mov ds, ax
    0xbe, 0x20, 0x00, // mov si, 0x0020 (the text)
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xac, // next: lodsb
    0x84, 0xc0, // test al, al
    0x74, 0x03, // jz halt
    0xee, // out dx, al
    0xeb, 0xf8, // jmp next
    0xf4, // halt: hlt
    0xeb, 0xfd, // jmp halt
  };
  rom.replace(0, sizeof code, reinterpret_cast<const char*>(code), sizeof code);
  rom.replace(0x20, text.size(), text);
  const unsigned char reset[] = {0xea, 0x00, 0x00, 0x00, 0xf0}; // jmp far f000:0000
  rom.replace(0xfff0, sizeof reset, reinterpret_cast<const char*>(reset), sizeof reset);
  test::write_text(path, rom);
  return path;
}

class qemu_stage : public ::testing::Test {
protected:
  void SetUp() override { test::require_program("qemu-system-x86_64", "qemu-system-x86"); }

  test::VmOptions options(const std::string& text)
  {
    test::VmOptions o;
    o.name = "stage";
    o.dir = dir.path();
    o.network = false;
    o.bios = make_firmware(dir / "rom.bin", text);
    o.stages = {{"GRUB", "Welcome to GRUB!", "kiln: booting slot", 2s}};
    return o;
  }

  test::ScratchDir dir;
};

TEST_F(qemu_stage, a_stage_that_stops_fails_the_wait_at_once_with_the_cpu_state)
{
  test::QemuVm vm(options("Welcome to GRUB!\n"));
  vm.expect("Welcome to GRUB", 120s); // the firmware ran
  const auto start = std::chrono::steady_clock::now();
  try {
    vm.expect("KILN-AGENT boot", 600s);
    FAIL() << "the wait ended without the stage's failure";
  } catch (const test::BootFailure& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("GRUB stopped making progress: \"Welcome to GRUB!\""), std::string::npos) << what;
    EXPECT_NE(what.find("no \"kiln: booting slot\" after it within 2 s"), std::string::npos) << what;
    // The console's tail, then the monitor's answer: the halted CPU's registers.
    const size_t console = what.find("---- serial console");
    ASSERT_NE(console, std::string::npos) << what;
    EXPECT_NE(what.find("Welcome to GRUB!", console), std::string::npos) << what;
    EXPECT_NE(what.find("---- guest CPU (qemu monitor) ----\nVM status: running"), std::string::npos) << what;
    EXPECT_NE(what.find("EIP=00000015"), std::string::npos) << what; // at the hlt loop
    EXPECT_NE(what.find("HLT=1"), std::string::npos) << what;
  }
  // Well before the wait's own 600 s: the stage's 2 s, the polls and the monitor.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300s);
}

TEST_F(qemu_stage, a_stage_that_ends_is_no_failure)
{
  test::QemuVm vm(options("Welcome to GRUB!\nkiln: booting slot A\n"));
  EXPECT_EQ(vm.expect("kiln: booting slot ([AB])", 120s).at(1), "A");
  // Closed: a later wait on it times out on its own terms, not the stage's.
  try {
    vm.expect("KILN-AGENT boot", 5s);
    FAIL() << "matched a line the firmware never printed";
  } catch (const test::BootFailure& e) {
    EXPECT_NE(std::string(e.what()).find("no /KILN-AGENT boot/ on the console within 5 s"), std::string::npos)
      << e.what();
  }
}

} // namespace
} // namespace kiln
