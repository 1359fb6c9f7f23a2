// Boot tests: real A/B images built by kiln, booted in qemu-system-x86_64 (KVM only where
// kiln's probe proved it boots a real kernel, else TCG), asserting on what the serial
// console printed. The fixture (tests/boot/fixture/ab-fixture.yaml) is built once per
// build tree by the ctest fixture fixture.ab_image and shared: every scenario boots a
// qcow2 overlay on it. One boot proves several things where it can: the life of a node
// (first boot, reimage into B, rollback, wipe) is one guest's four boots. Inside the guest,
// kiln-test-agent runs the script the test serves for that boot (boot-N.sh, through
// qemu's guestfwd to a server on 127.0.0.1) and prints KILN-AGENT lines; the stand-in
// DC/OS installer prints "KILN-TEST dcos_install.sh role=R run=N".
//
// Every wait has a time limit; a failure prints the serial console's tail.
#include "core/bundle/bundle.hpp"
#include "core/crypto/sha256.hpp"
#include "core/manifest/manifest.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/gpt.hpp"
#include "core/util/fs.hpp"
#include "image/guestfs/guestfs.hpp"
#include "support/ab_fixture.hpp"
#include "support/pace.hpp"
#include "support/qemu_vm.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>

namespace kiln {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// Every wait's deadline is what the step takes on the reference machine (idle, TCG, at
// most), scaled by this machine's measured pace and a margin for load (support/pace.hpp).
// One boot: firmware, GRUB, kernel, systemd, the agent's line (or, once up, one of its
// steps).
std::chrono::seconds
k_boot()
{
  return test::deadline(60s);
}
// A reimage from inside the guest: a whole slot over HTTP, written and verified.
std::chrono::seconds
k_reimage()
{
  return test::deadline(150s);
}
// GRUB, from its banner to its "kiln: booting slot" line: a few seconds, no disk scan.
std::chrono::seconds
k_grub()
{
  return test::deadline(10s);
}

// The shared A/B fixture (tests/support/ab_fixture), built by the ctest fixture
// fixture.ab_image before any boot test starts.
const test::AbFixture&
fixture()
{
  return test::ab_fixture();
}

// The agent's "status {...}" line as JSON; a line that is not JSON (kiln-node failed)
// fails the test with the console's tail.
json
status_json(test::QemuVm& vm, const std::vector<std::string>& match)
{
  try {
    return json::parse(match.at(1));
  } catch (const json::exception& e) {
    ADD_FAILURE() << "kiln-node status --json printed no JSON: " << match.at(1) << "\n" << vm.tail();
    return json::object();
  }
}

class Boot : public ::testing::Test {
protected:
  void SetUp() override
  {
    test::require_program("qemu-system-x86_64", "qemu-system-x86");
    const test::AbFixture& fx = fixture();
    ASSERT_TRUE(fx.error.empty()) << fx.error;
    www = dir / "www";
    fs::create_directories(www);
    http = std::make_unique<test::HttpServer>(www);
    started = std::chrono::steady_clock::now();
    std::fprintf(stderr, "%s\n", test::pace_line().c_str());
  }

  void TearDown() override
  {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "scenario time: %.0f s (accelerator %s)\n", s, test::vm_accelerator().c_str());
  }

  // Serves a fixture output (or any file) under /files/NAME.
  void serve(const fs::path& file, const std::string& name = {})
  {
    fs::create_symlink(file, www / (name.empty() ? file.filename().string() : name));
  }

  // The script the agent runs at its Nth boot. The agent's helpers: say, slot, status,
  // wait_good, run CMD..., restart (reboot), finish (poweroff).
  void script(int n, const std::string& body)
  {
    test::write_text(www / ("boot-" + std::to_string(n) + ".sh"), body + "\n");
  }

  // A fresh disk: an overlay on the fixture's whole-disk image, `extra` bytes larger (a
  // node's disk is larger than the image: kiln-data grows into the rest at boot).
  fs::path disk(std::uint64_t extra = 0)
  {
    fs::path d = dir / "disk.qcow2";
    test::make_overlay(fixture().out / "ab-fixture.qcow2", d);
    if (extra != 0) {
      util::run_checked({"qemu-img", "resize", "-q", d.string(), "+" + std::to_string(extra)});
    }
    return d;
  }

  test::VmOptions vm_options(const std::string& name, std::vector<fs::path> disks)
  {
    test::VmOptions o;
    o.name = name;
    o.dir = dir.path();
    o.disks = std::move(disks);
    o.forwards = {{"10.0.2.100", 80, http->port()}};
    o.limit = test::deadline(400s);
    // Under UEFI, OVMF mirrors GRUB's console to the serial port: a GRUB that stops between
    // its banner and its choice fails the wait at once, with the guest CPU's state.
    o.stages = {{"GRUB", "Welcome to GRUB!", "kiln: booting slot", k_grub()}};
    return o;
  }

  // Waits for the agent's line "boot n=N slot=S ..." and returns the slot.
  std::string booted(test::QemuVm& vm, int n)
  {
    auto m = vm.expect("KILN-AGENT boot n=" + std::to_string(n) + " slot=([AB]?) ", k_boot());
    return m.at(1);
  }

  json status(test::QemuVm& vm) { return status_json(vm, vm.expect("KILN-AGENT status (.*)\n", k_boot())); }

  void confirmed(test::QemuVm& vm, const std::string& slot)
  {
    vm.expect("KILN-AGENT confirmed slot=" + slot, k_boot());
  }

  test::ScratchDir dir;
  fs::path www;
  std::unique_ptr<test::HttpServer> http;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// The agent's `run df -B1M --output=size /var/lib/kiln-data` line: kiln-data's size in MiB.
const char* const k_data_size = "run df -B1M --output=size /var/lib/kiln-data";
const char* const k_data_size_line = "KILN-AGENT run df -B1M --output=size /var/lib/kiln-data rc=0 1M-blocks *(\\d+)";
// The fixture's kiln-data in the image (ab-fixture.yaml: data_size 512M).
constexpr long k_fixture_data_mib = 512;

int
count(const std::string& text, const std::string& regex)
{
  const std::regex re(regex);
  return static_cast<int>(std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator()));
}

// Scenario 1 (and the checks scenario 6 repeats on a PXE-installed disk): slot A boots,
// the first-boot unit runs once with the role from the kernel command line, mark-good
// confirms A; the second boot does not install again.
void
expect_first_boots(test::QemuVm& vm)
{
  // Boot 1.
  EXPECT_EQ(vm.expect("KILN-AGENT boot n=1 slot=([AB]?) ", k_boot()).at(1), "A") << vm.tail();
  std::string boot1 = vm.console();
  // The recipe's default role is master; kiln.dcos_role=slave_public is on the command line.
  EXPECT_EQ(count(boot1, "KILN-TEST dcos_install.sh role=slave_public run=1"), 1) << vm.tail();
  EXPECT_EQ(count(boot1, "KILN-TEST dcos_install.sh"), 1) << vm.tail();
  vm.expect("KILN-AGENT confirmed slot=A", k_boot());
  json s = status_json(vm, vm.expect("KILN-AGENT status (.*)\n", k_boot()));
  EXPECT_EQ(s["booted"], "A") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["dcos"]["installed"], true) << s.dump();
  EXPECT_EQ(s["dcos"]["failed"], false) << s.dump();
  vm.expect("KILN-AGENT reboot", k_boot());
  size_t boot2_start = vm.cursor();
  // Boot 2: no second install.
  auto boot2_line = vm.expect("KILN-AGENT boot n=2 slot=([AB]?) uptime=\\S+ dcos-runs=(\\d+)", k_boot());
  EXPECT_EQ(boot2_line.at(1), "A") << vm.tail();
  EXPECT_EQ(boot2_line.at(2), "1") << vm.tail(); // the stand-in installer ran once in all
  vm.expect("KILN-AGENT confirmed slot=A", k_boot());
  s = status_json(vm, vm.expect("KILN-AGENT status (.*)\n", k_boot()));
  vm.expect("KILN-AGENT poweroff", k_boot());
  EXPECT_EQ(vm.wait_for_exit(k_boot()), 0);
  std::string boot2 = vm.console().substr(boot2_start);
  EXPECT_EQ(count(boot2, "KILN-TEST dcos_install.sh"), 0) << vm.tail();
  EXPECT_EQ(s["booted"], "A") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["dcos"]["installed"], true) << s.dump();
}

const char* const k_last_boot = "wait_good; status; finish";

// A node's life in one guest, four boots: the fresh image boots A and installs DC/OS
// once; a reimage from inside writes B, which boots and is confirmed; a rollback returns
// to A, which does not install again; a wipe makes the next boot install again.
TEST_F(Boot, NodeLifeFirstBootReimageRollbackAndWipe)
{
  serve(fixture().out / "ab-fixture.kbundle");
  // Boot 1 also leaves a mark of this node's identity in /var/lib/dcos (on kiln-data):
  // B sees it after the reimage, the wipe removes it.
  script(1, "wait_good; status\n" + std::string(k_data_size) +
              "\n"
              "run sh -c 'echo kiln-node-identity-1 > /var/lib/dcos/kiln-test-identity'\n"
              "run kiln-node reimage --json http://10.0.2.100/files/ab-fixture.kbundle\n"
              "status; restart");
  script(2, "wait_good; status\n"
            "run cat /var/lib/dcos/kiln-test-identity /var/lib/dcos/mesos-slave-common\n"
            "run kiln-node rollback --json\n"
            "status; restart");
  script(3, "wait_good; status\n"
            "run kiln-node wipe --dcos --json\n"
            "run ls -A /var/lib/dcos\n"
            "status; restart");
  script(4, k_last_boot);
  // The node's disk is 1 GiB larger than the image: kiln-grow-data.service grows kiln-data
  // (partition and XFS) into it at the first boot.
  test::QemuVm vm(vm_options("life", {disk(1ull << 30)}));

  // Boot 1: slot A (SeaBIOS, through GRUB's BIOS core.img and EL7's /grub2 prefix), the
  // first-boot install once, with the role from the kernel command line (the recipe's
  // default is master; kiln.dcos_role=slave_public wins).
  auto boot1_line = vm.expect("KILN-AGENT boot n=1 slot=([AB]?) [^\n]* firmware=(\\w+)", k_boot());
  EXPECT_EQ(boot1_line.at(1), "A") << vm.tail();
  EXPECT_EQ(boot1_line.at(2), "bios") << vm.tail();
  confirmed(vm, "A");
  std::string boot1 = vm.console();
  EXPECT_EQ(count(boot1, "KILN-TEST dcos_install.sh role=slave_public run=1"), 1) << vm.tail();
  EXPECT_EQ(count(boot1, "KILN-TEST dcos_install.sh"), 1) << vm.tail();
  json s = status(vm);
  EXPECT_EQ(s["booted"], "A") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["dcos"]["installed"], true) << s.dump();
  EXPECT_EQ(s["dcos"]["failed"], false) << s.dump();
  long data_mib = std::stol(vm.expect(k_data_size_line, k_boot()).at(1));
  EXPECT_GT(data_mib, k_fixture_data_mib + 900) << "kiln-data did not grow into the larger disk\n" << vm.tail();
  vm.expect("KILN-AGENT run sh -c [^\n]*kiln-test-identity rc=0", k_boot());
  // The reimage into B, from the guest, over HTTP.
  vm.expect("KILN-AGENT run kiln-node reimage [^\n]* rc=0 ", k_reimage());
  s = status(vm);
  EXPECT_EQ(s["booted"], "A") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["state"], "trial") << s.dump();
  EXPECT_EQ(s["next_boot"]["slot"], "B") << s.dump();
  vm.expect("KILN-AGENT reboot", k_boot());

  // Boot 2: B boots and is confirmed; then a rollback.
  EXPECT_EQ(booted(vm, 2), "B") << vm.tail();
  confirmed(vm, "B");
  s = status(vm);
  EXPECT_EQ(s["booted"], "B") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["state"], "good") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["name"], "ab-fixture") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["digest"], s["slots"]["A"]["digest"]) << s.dump(); // the same image
  // The node's DC/OS state is on kiln-data: slot B sees what A left (its identity and the
  // seeded agent attributes).
  vm.expect("KILN-AGENT run cat /var/lib/dcos/kiln-test-identity /var/lib/dcos/mesos-slave-common rc=0 "
            "kiln-node-identity-1MESOS_ATTRIBUTES=kiln_fixture:true",
            k_boot());
  EXPECT_EQ(s["next_boot"]["slot"], "B") << s.dump();
  vm.expect("KILN-AGENT run kiln-node rollback [^\n]* rc=0 ", k_boot());
  s = status(vm);
  EXPECT_EQ(s["booted"], "B") << s.dump();
  EXPECT_EQ(s["next_boot"]["slot"], "A") << s.dump();
  vm.expect("KILN-AGENT reboot", k_boot());

  // Boot 3: A again, and it does not install DC/OS a second time; then a wipe.
  size_t boot3_start = vm.cursor();
  auto boot3 = vm.expect("KILN-AGENT boot n=3 slot=([AB]?) uptime=\\S+ dcos-runs=(\\d+)", k_boot());
  EXPECT_EQ(boot3.at(1), "A") << vm.tail();
  EXPECT_EQ(boot3.at(2), "1") << vm.tail(); // the stand-in installer ran once on A in all
  confirmed(vm, "A");
  s = status(vm);
  EXPECT_EQ(s["booted"], "A") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["state"], "good") << s.dump();
  EXPECT_EQ(s["dcos"]["installed"], true) << s.dump();
  EXPECT_EQ(count(vm.console().substr(boot3_start), "KILN-TEST dcos_install.sh"), 0) << vm.tail();
  vm.expect("KILN-AGENT run kiln-node wipe --dcos --json rc=0 ", k_boot());
  // wipe --dcos empties /var/lib/dcos (a mountpoint on kiln-data, kept).
  vm.expect("KILN-AGENT run ls -A /var/lib/dcos rc=0 \r?\n", k_boot());
  s = status(vm);
  EXPECT_EQ(s["dcos"]["installed"], false) << s.dump();
  vm.expect("KILN-AGENT reboot", k_boot());

  // Boot 4: the first-boot install runs again (the installer's line comes before the
  // agent's boot line on the console).
  size_t boot4_start = vm.cursor();
  vm.expect("KILN-TEST dcos_install.sh role=slave_public run=2", k_boot());
  EXPECT_EQ(booted(vm, 4), "A");
  confirmed(vm, "A");
  s = status(vm);
  vm.expect("KILN-AGENT poweroff", k_boot());
  EXPECT_EQ(vm.wait_for_exit(k_boot()), 0);
  EXPECT_EQ(count(vm.console().substr(boot4_start), "KILN-TEST dcos_install.sh"), 1) << vm.tail();
  EXPECT_EQ(s["dcos"]["installed"], true) << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
}

// The same node under UEFI: OVMF boots the ESP's removable path EFI/BOOT/BOOTX64.EFI
// (GRUB with EL7's /grub2 prefix, the fixture's grub2-install). A bad image reimaged into
// B panics at every try; once its tries are spent GRUB marks B bad and boots A with no
// help from outside (save_env through the firmware's disk driver). Then a good image
// reimaged into B boots B, and mark-good confirms it.
TEST_F(Boot, UefiBadSlotFallsBackToAThenAGoodReimageBootsB)
{
  serve(fixture().bad, "bad.kbundle");
  serve(fixture().out / "ab-fixture.kbundle");
  script(1, "wait_good\n"
            "run kiln-node reimage --json http://10.0.2.100/files/bad.kbundle\n"
            "status; restart");
  script(2, "status\n"
            "run kiln-node reimage --json http://10.0.2.100/files/ab-fixture.kbundle\n"
            "status; restart");
  script(3, k_last_boot);
  test::VmOptions o = vm_options("uefi", {disk()});
  o.uefi = true;
  test::QemuVm vm(o);
  auto firmware = [&](int n) {
    auto m = vm.expect("KILN-AGENT boot n=" + std::to_string(n) + " slot=([AB]?) [^\n]* firmware=(\\w+)", k_boot());
    EXPECT_EQ(m.at(2), "uefi") << vm.tail();
    return m.at(1);
  };

  // Boot 1: A under UEFI; a bad image into B.
  EXPECT_EQ(firmware(1), "A") << vm.tail();
  confirmed(vm, "A");
  vm.expect("KILN-AGENT run kiln-node reimage [^\n]* rc=0 ", k_reimage());
  json s = status(vm);
  EXPECT_EQ(s["slots"]["B"]["state"], "trial") << s.dump();
  const json& t = s["slots"]["B"]["tries"];
  unsigned tries = t.is_number() ? t.get<unsigned>() : static_cast<unsigned>(std::stoul(t.get<std::string>()));
  EXPECT_GE(tries, 2u) << "the fixture's slots get more than one try: " << s.dump();
  vm.expect("KILN-AGENT reboot", k_boot());
  size_t reboot_at = vm.cursor();
  // B's kernel panics at every try (its init is /bin/false); panic=N reboots it.
  for (unsigned i = 0; i < tries; ++i) {
    vm.expect("Kernel panic - not syncing", k_boot());
  }

  // Boot 2: back on A, B is bad; a good image into B.
  EXPECT_EQ(firmware(2), "A") << vm.tail();
  EXPECT_EQ(count(vm.console().substr(reboot_at), "Kernel panic - not syncing"), static_cast<int>(tries)) << vm.tail();
  s = status(vm);
  EXPECT_EQ(s["booted"], "A") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["state"], "bad") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["next_boot"]["slot"], "A") << s.dump();
  vm.expect("KILN-AGENT run kiln-node reimage [^\n]* rc=0 ", k_reimage());
  s = status(vm);
  EXPECT_EQ(s["slots"]["B"]["state"], "trial") << s.dump();
  EXPECT_EQ(s["next_boot"]["slot"], "B") << s.dump();
  vm.expect("KILN-AGENT reboot", k_boot());

  // Boot 3: B under UEFI, confirmed.
  EXPECT_EQ(firmware(3), "B") << vm.tail();
  // GRUB printed through the firmware's console alone (which OVMF mirrors to the serial
  // port), once per start: it never drove the UART itself beside the firmware.
  EXPECT_EQ(count(vm.console(), "kiln: booting slot [AB]"), count(vm.console(), "Welcome to GRUB!")) << vm.tail();
  EXPECT_EQ(count(vm.console(), "kiln: booting slot [AB]kiln: booting slot"), 0) << vm.tail();
  confirmed(vm, "B");
  s = status(vm);
  vm.expect("KILN-AGENT poweroff", k_boot());
  EXPECT_EQ(vm.wait_for_exit(k_boot()), 0);
  EXPECT_EQ(s["booted"], "B") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["state"], "good") << s.dump();
  EXPECT_EQ(s["slots"]["A"]["state"], "good") << s.dump();
  EXPECT_EQ(s["slots"]["B"]["name"], "ab-fixture") << s.dump();
}

TEST_F(Boot, PxeInstallerWritesABlankDiskThatThenBoots)
{
  const fs::path out = fixture().out;
  for (const char* name :
       {"ab-fixture.raw", "ab-fixture.raw.bmap", "ab-fixture.manifest.json", "ab-fixture.manifest.json.sig"}) {
    serve(out / name);
  }
  fs::path tftp = dir / "tftp";
  fs::create_directories(tftp);
  for (const char* name : {"ab-fixture.vmlinuz", "ab-fixture.initrd", "ab-fixture.ipxe"}) {
    fs::create_symlink(out / name, tftp / name);
  }
  // What an operator's DHCP boot script does: say where the image is, chain kiln's.
  test::write_text(tftp / "boot.ipxe", "#!ipxe\n"
                                       "set kiln_install_url http://10.0.2.100/files/ab-fixture.raw\n"
                                       "set kiln_install_disk /dev/vda\n"
                                       "chain ab-fixture.ipxe\n");
  script(2, k_last_boot);
  // The blank disk is 1 GiB larger than the image: kiln-node install moves the backup GPT
  // to its end and grows kiln-data's partition, the first boot grows the file system.
  script(1, "wait_good; " + std::string(k_data_size) + "; status; restart");
  fs::path blank = dir / "blank.qcow2";
  test::make_blank_disk(blank, fs::file_size(out / "ab-fixture.raw") + (1ull << 30));
  test::VmOptions o = vm_options("pxe", {blank});
  o.tftp_root = tftp;
  o.bootfile = "boot.ipxe";
  o.boot_network_once = true;
  test::QemuVm vm(o);
  vm.expect("kiln-installer: installing http://10.0.2.100/files/ab-fixture.raw on /dev/vda", k_boot());
  vm.expect("kiln-installer: installed http://10.0.2.100/files/ab-fixture.raw on /dev/vda", k_reimage());
  expect_first_boots(vm);
  std::smatch m;
  const std::string console = vm.console();
  ASSERT_TRUE(std::regex_search(console, m, std::regex(k_data_size_line))) << vm.tail();
  EXPECT_GT(std::stol(m[1]), k_fixture_data_mib + 900) << "kiln-data did not grow into the larger disk";
}

} // namespace
} // namespace kiln
