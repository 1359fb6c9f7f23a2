// Boots disk images in qemu-system-x86_64 for the boot tests: one RAII qemu process
// (killed when the object dies), disks as qcow2 overlays on a shared fixture image (so
// every scenario starts clean without a rebuild), the serial console in a log file, no
// display, KVM only when kiln's own probe says it works (else TCG), and user networking
// with restrict=on whose only ways out are guestfwd addresses relayed to servers on
// 127.0.0.1. Waiting on the console is by regular expression with a time limit; every
// failure (time limit, qemu gone) throws BootFailure carrying the serial log's tail, so
// a failed boot test always shows what the guest printed.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <vector>

namespace kiln::test {

namespace fs = std::filesystem;

// A boot that did not do what the test waited for. what() holds the reason, then the
// tail of the serial console and of qemu's own output.
class BootFailure : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A guest address whose TCP connections go to 127.0.0.1:host_port on the host.
struct GuestForward {
  std::string guest_ip = "10.0.2.100";
  int guest_port = 80;
  int host_port = 0;
};

// A stretch of the boot that must end soon once it has begun: when the console shows
// `start` and then, for longer than `limit`, no `end` after it, every wait fails at once
// naming the stage (e.g. GRUB stopped between "Welcome to GRUB!" and its "kiln: booting
// slot" line) instead of after the wait's whole timeout. Both are literal text.
struct ConsoleStage {
  std::string name;
  std::string start;
  std::string end;
  std::chrono::seconds limit{60};
};

struct VmOptions {
  std::string name = "vm"; // names the log files in `dir`
  fs::path dir; // serial log and qemu log go here
  std::vector<fs::path> disks; // qcow2 files, attached as virtio disks in order
  int memory_mb = 1024;
  int cpus = 1;
  bool no_reboot = false; // a guest reboot ends qemu instead of rebooting in place
  std::vector<GuestForward> forwards; // the guest's only network destinations
  bool network = true; // a virtio NIC on restricted user networking
  std::optional<fs::path> tftp_root; // qemu's built-in TFTP server serves this directory
  std::string bootfile; // DHCP boot file name (with tftp_root)
  bool boot_network_once = false; // -boot once=n: PXE first, the disk on later boots
  bool uefi = false; // OVMF (Debian's ovmf) instead of SeaBIOS; the first disk boots
  std::optional<fs::path> bios; // a firmware image of the test's own (-bios) instead
  std::chrono::seconds limit{900}; // every wait fails once the run is this old
  std::vector<ConsoleStage> stages; // watched during every wait
};

// qemu-img create -f qcow2 -b BASE OVERLAY: a throwaway disk on top of a fixture image.
void make_overlay(const fs::path& base, const fs::path& overlay);
// A blank qcow2 disk of `bytes`.
void make_blank_disk(const fs::path& path, std::uint64_t bytes);

// "kvm" or "tcg": kiln's accelerator decision (gfs::probe_acceleration: a real kernel
// booted under KVM and TCG side by side), remembered in the tests' cache.
std::string vm_accelerator();

class QemuVm {
public:
  explicit QemuVm(VmOptions options);
  ~QemuVm(); // SIGTERM, then SIGKILL; never throws
  QemuVm(const QemuVm&) = delete;
  QemuVm& operator=(const QemuVm&) = delete;

  // Waits until the console, from the current cursor on, matches `regex` (ECMAScript,
  // matched against text with \r removed); moves the cursor past the match and returns
  // the match and its groups. Throws BootFailure when `timeout` passes, the run's limit
  // passes, or qemu exits first.
  std::vector<std::string> expect(const std::string& regex, std::chrono::seconds timeout);
  // The same, but returns nullopt instead of throwing when qemu exits before a match
  // (a time limit still throws).
  std::optional<std::vector<std::string>> expect_or_exit(const std::string& regex, std::chrono::seconds timeout);
  // Waits for qemu to exit (a guest poweroff, or a reboot with no_reboot); returns its exit
  // status. Throws BootFailure after `timeout`.
  int wait_for_exit(std::chrono::seconds timeout);
  bool running();

  // The console text so far (\r removed), and from the cursor on.
  std::string console() const;
  std::string console_since_cursor() const;
  size_t cursor() const { return m_cursor; }
  // The last `lines` lines of the console and of qemu's own output, for failure messages.
  std::string tail(size_t lines = 60) const;
  const fs::path& serial_log() const { return m_serial; }
  // Seconds since qemu started.
  double elapsed() const;
  // An HMP command's answer through qemu's QMP socket ("info registers"), or a line saying
  // why there is none. Every read has a deadline.
  std::string monitor(const std::string& command) const;

private:
  [[noreturn]] void fail(const std::string& why) const;
  // Fails when a stage has been open (its start seen, its end not) for longer than its limit.
  void check_stages(const std::string& text);
  bool reap(); // true once qemu has exited (status in m_status)

  VmOptions m_options;
  fs::path m_serial;
  fs::path m_qemu_log;
  fs::path m_qmp; // qemu's QMP socket (empty: none)
  pid_t m_pid = -1;
  int m_status = -1;
  size_t m_cursor = 0;
  std::chrono::steady_clock::time_point m_start;
  // Per stage: the console offset of the start that opened it (npos: closed) and when
  // that start was first seen.
  std::vector<std::pair<size_t, std::chrono::steady_clock::time_point>> m_open;
};

} // namespace kiln::test
