#include "image/guestfs/guestfs.hpp"

#include "image/guestfs/appliance_watchdog.hpp"
#include "core/util/term.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

#include <guestfs.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace kiln::gfs {

namespace {

// ---------------------------------------------------------------------------------------
// Small owning types for libguestfs results.

struct CloseHandle {
  void operator()(guestfs_h* g) const noexcept { guestfs_close(g); }
};
using HandlePtr = std::unique_ptr<guestfs_h, CloseHandle>;

struct FreeString {
  void operator()(char* p) const noexcept { std::free(p); }
};
using StringPtr = std::unique_ptr<char, FreeString>;

struct FreeStringList {
  void operator()(char** list) const noexcept
  {
    for (char** p = list; *p != nullptr; ++p) {
      std::free(*p);
    }
    std::free(list);
  }
};
using StringListPtr = std::unique_ptr<char*, FreeStringList>;

struct FreeStatns {
  void operator()(struct guestfs_statns* s) const noexcept { guestfs_free_statns(s); }
};
struct FreeVersion {
  void operator()(struct guestfs_version* v) const noexcept { guestfs_free_version(v); }
};

std::vector<std::string>
to_vector(char** list)
{
  StringListPtr owner(list);
  std::vector<std::string> out;
  for (char** p = list; *p != nullptr; ++p) {
    out.emplace_back(*p);
  }
  return out;
}

// A libguestfs "hash": a flat list of key, value, key, value, ...
std::map<std::string, std::string>
to_map(char** list)
{
  StringListPtr owner(list);
  std::map<std::string, std::string> out;
  for (char** p = list; p[0] != nullptr && p[1] != nullptr; p += 2) {
    out[p[0]] = p[1];
  }
  return out;
}

std::string
strip(std::string_view text)
{
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) {
    return {};
  }
  size_t end = text.find_last_not_of(" \t\r\n");
  return std::string(text.substr(begin, end + 1 - begin));
}

// Drops control characters and ANSI escape sequences (the appliance's console colours its
// messages).
std::string
printable(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    if (u == 0x1b) {
      if (i + 1 < text.size() && text[i + 1] == '[') {
        // CSI: parameters and intermediates up to a final byte in 0x40..0x7e.
        i += 2;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) {
          ++i;
        }
      } else {
        ++i; // a two-byte escape
      }
      continue;
    }
    if (u == '\t') {
      out += ' ';
    } else if (u >= 0x20 && u != 0x7f) {
      out += c;
    }
  }
  return out;
}

std::vector<std::string>
split_lines(std::string_view text)
{
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      nl = text.size();
    }
    std::string line = strip(printable(text.substr(start, nl - start)));
    if (!line.empty()) {
      out.push_back(std::move(line));
    }
    start = nl + 1;
  }
  return out;
}

bool
starts_with(std::string_view text, std::string_view prefix)
{
  return text.substr(0, prefix.size()) == prefix;
}

bool
contains_nocase(std::string_view text, std::string_view word)
{
  auto it = std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}

// The generic advice libguestfs appends to launch failures says nothing about the cause.
bool
is_boilerplate(std::string_view line)
{
  static constexpr std::string_view k_noise[] = {
    "Do:",
    "export LIBGUESTFS_DEBUG",
    "and run the command again",
    "http://libguestfs.org/guestfs-faq",
    "https://libguestfs.org/guestfs-faq",
    "You can also run 'libguestfs-test-tool'",
    "into a bug report or message",
  };
  for (std::string_view noise : k_noise) {
    if (starts_with(line, noise)) {
      return true;
    }
  }
  return false;
}

// libguestfs's last error, reduced to one line: boilerplate dropped, at most a few lines
// joined with "; ", bounded in length.
std::string
one_line(const char* message)
{
  if (message == nullptr || *message == '\0') {
    return "unknown error";
  }
  std::string out;
  size_t kept = 0;
  for (const std::string& line : split_lines(message)) {
    if (is_boilerplate(line)) {
      continue;
    }
    if (kept == 4) {
      out += "; ...";
      break;
    }
    out += (kept == 0 ? "" : "; ") + line;
    ++kept;
  }
  if (out.size() > 400) {
    out.resize(400);
    out += "...";
  }
  return out.empty() ? "unknown error" : out;
}

std::string
subject_of(std::string_view op, const std::string& subject)
{
  std::string s = "guestfs ";
  s += op;
  if (!subject.empty()) {
    s += " " + subject;
  }
  return s;
}

} // namespace

// ---------------------------------------------------------------------------------------
// Handle

struct Handle::Impl {
  struct Drive {
    std::string path;
    std::string format;
    bool readonly = false;
  };

  HandleOptions options;
  std::vector<Drive> drives;
  Accel accel = Accel::tcg;
  bool force_tcg = false;
  bool launching = false;               // the launch arms its own deadline
  mutable ApplianceWatchdog watchdog;   // deadlines and signals: kills the appliance's qemu
  std::string partial_line;             // an appliance message without its newline yet
  std::deque<std::string> recent_lines; // the last appliance lines, for launch errors
  HandlePtr g;                          // last member: closed first, while the rest is alive

  explicit Impl(HandleOptions opts) : options(std::move(opts)) {}

  // --- errors ---------------------------------------------------------------------------

  [[noreturn]] void fail(std::string_view op, const std::string& subject) const
  {
    // A call the watchdog cut short failed because of that, whatever libguestfs says.
    switch (watchdog.fired()) {
    case ApplianceWatchdog::Fired::interrupt:
      throw Error("interrupted", "stopped by a signal during guestfs " + std::string(op) + "; the appliance was stopped",
                  util::interrupted_exit_code());
    case ApplianceWatchdog::Fired::deadline:
      throw Error(subject_of(op, subject), watchdog.fired_reason() + "; the appliance was stopped");
    case ApplianceWatchdog::Fired::no:
      break;
    }
    throw Error(subject_of(op, subject), one_line(guestfs_last_error(g.get())));
  }
  void check(int rc, std::string_view op, const std::string& subject = {}) const
  {
    watchdog.disarm();
    if (rc == -1) {
      fail(op, subject);
    }
  }
  std::string take_string(char* p, std::string_view op, const std::string& subject = {}) const
  {
    watchdog.disarm();
    if (p == nullptr) {
      fail(op, subject);
    }
    StringPtr owner(p);
    return std::string(p);
  }
  std::vector<std::string> take_list(char** p, std::string_view op, const std::string& subject = {}) const
  {
    watchdog.disarm();
    if (p == nullptr) {
      fail(op, subject);
    }
    return to_vector(p);
  }
  std::map<std::string, std::string> take_map(char** p, std::string_view op, const std::string& subject = {}) const
  {
    watchdog.disarm();
    if (p == nullptr) {
      fail(op, subject);
    }
    return to_map(p);
  }
  bool take_bool(int rc, std::string_view op, const std::string& subject) const
  {
    watchdog.disarm();
    if (rc == -1) {
      fail(op, subject);
    }
    return rc != 0;
  }

  // --- events ---------------------------------------------------------------------------

  void emit(const std::string& line)
  {
    if (options.log) {
      options.log(line);
    }
  }

  void remember(const std::string& line)
  {
    recent_lines.push_back(line);
    if (recent_lines.size() > 40) {
      recent_lines.pop_front();
    }
  }

  void on_event(uint64_t event, std::string_view buf, const uint64_t* array, size_t array_len)
  {
    if (event == GUESTFS_EVENT_ENTER) {
      // Every API call starts here: its deadline runs until the wrapper checks its result.
      if (!launching) {
        watchdog.arm("guestfs " + std::string(buf), options.call_timeout);
      }
      return;
    }
    if (event == GUESTFS_EVENT_PROGRESS) {
      if (options.progress && array_len >= 4) {
        options.progress(array[2], array[3]);
      }
      return;
    }
    if (event == GUESTFS_EVENT_APPLIANCE) {
      // Appliance output arrives in arbitrary chunks: forward whole lines only.
      partial_line.append(buf);
      size_t nl;
      while ((nl = partial_line.find('\n')) != std::string::npos) {
        std::string line = strip(printable(std::string_view(partial_line).substr(0, nl)));
        partial_line.erase(0, nl + 1);
        if (!line.empty()) {
          remember(line);
          emit(line);
        }
      }
      return;
    }
    // Library messages and warnings are whole messages.
    for (const std::string& line : split_lines(buf)) {
      emit(event == GUESTFS_EVENT_WARNING ? "warning: " + line : line);
    }
  }

  void flush_partial_line()
  {
    std::string line = strip(printable(partial_line));
    partial_line.clear();
    if (!line.empty()) {
      remember(line);
      emit(line);
    }
  }

  static void callback(guestfs_h*, void* opaque, uint64_t event, int, int, const char* buf, size_t buf_len,
                       const uint64_t* array, size_t array_len)
  {
    // Called from inside libguestfs (C): nothing may escape.
    try {
      static_cast<Impl*>(opaque)->on_event(event, std::string_view(buf != nullptr ? buf : "", buf != nullptr ? buf_len : 0),
                                           array, array_len);
    } catch (...) {
    }
  }

  // --- setup ----------------------------------------------------------------------------

  // A fresh, configured handle (drives not added yet). `this` is heap-pinned by the
  // unique_ptr in Handle, so it is a stable opaque for the callbacks.
  void create()
  {
    g.reset(guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT));
    if (!g) {
      throw Error("guestfs create", "cannot create a libguestfs handle: " + errno_text(errno));
    }
    guestfs_set_error_handler(g.get(), nullptr, nullptr);
    if (const char* hv = std::getenv("LIBGUESTFS_HV"); hv != nullptr && *hv != '\0') {
      // The one environment setting kiln honours: another qemu (the probe uses it too).
      check(guestfs_set_hv(g.get(), hv), "set_hv", hv);
    }
    const uint64_t events = GUESTFS_EVENT_APPLIANCE | GUESTFS_EVENT_LIBRARY | GUESTFS_EVENT_WARNING |
                            GUESTFS_EVENT_PROGRESS | GUESTFS_EVENT_ENTER;
    watchdog.set_qemu_pid(0);
    if (guestfs_set_event_callback(g.get(), &Impl::callback, events, 0, this) == -1) {
      fail("set_event_callback", {});
    }
    check(guestfs_set_network(g.get(), options.network ? 1 : 0), "set_network");
    if (options.memsize_mb > 0) {
      check(guestfs_set_memsize(g.get(), options.memsize_mb), "set_memsize", std::to_string(options.memsize_mb));
    }
    if (options.smp > 0) {
      check(guestfs_set_smp(g.get(), options.smp), "set_smp", std::to_string(options.smp));
    }
  }

  void add_drive_to_handle(const Drive& d)
  {
    struct guestfs_add_drive_opts_argv optargs{};
    optargs.bitmask = GUESTFS_ADD_DRIVE_OPTS_READONLY_BITMASK;
    optargs.readonly = d.readonly ? 1 : 0;
    if (!d.format.empty()) {
      optargs.bitmask |= GUESTFS_ADD_DRIVE_OPTS_FORMAT_BITMASK;
      optargs.format = d.format.c_str();
    }
    if (!d.readonly) {
      // Lets trim() hand freed blocks back to the image where the format supports it.
      optargs.bitmask |= GUESTFS_ADD_DRIVE_OPTS_DISCARD_BITMASK;
      optargs.discard = "besteffort";
    }
    check(guestfs_add_drive_opts_argv(g.get(), d.path.c_str(), &optargs), "add_drive", d.path);
  }

  void set_force_tcg()
  {
    char force[] = "force_tcg";
    char* settings[] = {force, nullptr};
    check(guestfs_set_backend_settings(g.get(), settings), "set_backend_settings", "force_tcg");
  }

  std::string drives_subject() const
  {
    std::string s;
    for (const auto& d : drives) {
      s += (s.empty() ? "" : ",") + d.path;
    }
    return s;
  }

  // The last few appliance lines, joined, for a launch error.
  std::string appliance_tail(size_t count) const
  {
    std::string out;
    size_t start = recent_lines.size() > count ? recent_lines.size() - count : 0;
    for (size_t i = start; i < recent_lines.size(); ++i) {
      out += (out.empty() ? "" : " | ") + recent_lines[i];
    }
    return out;
  }

  // One launch attempt; on failure returns the one-line reason (with the appliance tail).
  std::optional<std::string> try_launch(Accel with, std::chrono::seconds limit)
  {
    recent_lines.clear();
    partial_line.clear();
    launching = true;
    watchdog.arm(std::string("launch (") + accel_name(with) + ")", limit);
    int rc = guestfs_launch(g.get());
    watchdog.disarm();
    launching = false;
    if (rc != -1) {
      int pid = guestfs_get_pid(g.get());
      watchdog.disarm(); // get_pid's own entry armed it
      watchdog.set_qemu_pid(pid > 0 ? pid : 0);
      return std::nullopt;
    }
    if (watchdog.fired() == ApplianceWatchdog::Fired::deadline) {
      flush_partial_line();
      return watchdog.fired_reason();
    }
    std::string reason = one_line(guestfs_last_error(g.get()));
    flush_partial_line();
    std::string tail = appliance_tail(3);
    if (!tail.empty()) {
      reason += " (qemu: " + tail + ")";
    }
    return reason;
  }

  std::string kvm_failure_summary(const std::string& launch_error) const
  {
    for (auto it = recent_lines.rbegin(); it != recent_lines.rend(); ++it) {
      if (contains_nocase(*it, "kvm")) {
        return *it;
      }
    }
    return launch_error;
  }
};

Handle::Handle(HandleOptions options) : m_impl(std::make_unique<Impl>(std::move(options)))
{
  m_impl->create();
}

Handle::Handle(Handle&&) noexcept = default;
Handle& Handle::operator=(Handle&&) noexcept = default;
Handle::~Handle() = default;

Handle::Impl&
Handle::impl() const
{
  if (!m_impl || !m_impl->g) {
    throw Error("guestfs", "use of a moved-from handle");
  }
  return *m_impl;
}

void
Handle::add_drive(const std::string& path, const std::string& format, bool readonly)
{
  Impl& im = impl();
  Impl::Drive d{path, format, readonly};
  im.add_drive_to_handle(d);
  im.drives.push_back(std::move(d));
}

namespace {
// "kvm unusable ..." is said once per process, however many handles launch.
std::atomic<bool> g_said_kvm_unusable{false};

bool
kvm_failed_here(const AccelDecision& d)
{
  // No /dev/kvm at all and an explicit KILN_ACCEL=tcg are not failures worth a warning.
  return d.accel == Accel::tcg && d.reason.rfind("/dev/kvm:", 0) != 0 && d.reason.rfind("KILN_ACCEL", 0) != 0;
}
} // namespace

void
Handle::launch()
{
  Impl& im = impl();
  AccelDecision decision = probe_acceleration();
  bool kvm = decision.accel == Accel::kvm;
  if (!kvm) {
    im.set_force_tcg();
    if (kvm_failed_here(decision) && !g_said_kvm_unusable.exchange(true)) {
      im.emit("kvm unusable (" + std::string(decision.remembered ? "remembered: " : "") + decision.reason +
              "); using software emulation");
    }
  }
  const std::chrono::seconds limit = kvm ? kvm_launch_deadline(decision) : im.options.launch_timeout;
  std::optional<std::string> error = im.try_launch(decision.accel, limit);
  if (!error) {
    im.accel = decision.accel;
    return;
  }
  // Never relaunch after a signal: the appliance died because the build is being stopped.
  util::check_interrupted();
  if (!kvm) {
    throw Error(subject_of("launch", im.drives_subject()), *error);
  }
  // KVM looked usable but the appliance did not start (or hung): once more, in software, on
  // a new handle (a failed handle cannot be relaunched reliably), and remember it.
  std::string summary = im.watchdog.fired() == ApplianceWatchdog::Fired::deadline
                          ? "the appliance did not come up under KVM within " + std::to_string(limit.count()) + " s"
                          : im.kvm_failure_summary(*error);
  std::filesystem::path remembered = record_kvm_failure(summary);
  im.create();
  im.set_force_tcg();
  for (const auto& d : im.drives) {
    im.add_drive_to_handle(d);
  }
  if (!g_said_kvm_unusable.exchange(true)) {
    im.emit("kvm unusable (" + summary + "); using software emulation" +
            (remembered.empty() ? "" : "; remembered in " + remembered.string()));
  }
  error = im.try_launch(Accel::tcg, im.options.launch_timeout);
  if (error) {
    util::check_interrupted();
    throw Error(subject_of("launch", im.drives_subject()), *error + " (after kvm failed: " + summary + ")");
  }
  im.accel = Accel::tcg;
}

void
Handle::shutdown()
{
  Impl& im = impl();
  im.check(guestfs_shutdown(im.g.get()), "shutdown", im.drives_subject());
}

Accel
Handle::accel() const
{
  return m_impl ? m_impl->accel : Accel::tcg;
}

// --- inspection ------------------------------------------------------------------------

std::vector<std::string>
Handle::inspect_os()
{
  Impl& im = impl();
  return im.take_list(guestfs_inspect_os(im.g.get()), "inspect_os");
}

std::map<std::string, std::string>
Handle::inspect_mountpoints(const std::string& root)
{
  Impl& im = impl();
  return im.take_map(guestfs_inspect_get_mountpoints(im.g.get(), root.c_str()), "inspect_get_mountpoints", root);
}

std::string
Handle::inspect_get_type(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_type(im.g.get(), root.c_str()), "inspect_get_type", root);
}

std::string
Handle::inspect_get_distro(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_distro(im.g.get(), root.c_str()), "inspect_get_distro", root);
}

std::string
Handle::inspect_get_package_format(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_package_format(im.g.get(), root.c_str()), "inspect_get_package_format",
                        root);
}

std::string
Handle::inspect_get_package_management(const std::string& root)
{
  Impl& im = impl();
  return im.take_string(guestfs_inspect_get_package_management(im.g.get(), root.c_str()),
                        "inspect_get_package_management", root);
}

int
Handle::inspect_get_major_version(const std::string& root)
{
  Impl& im = impl();
  int v = guestfs_inspect_get_major_version(im.g.get(), root.c_str());
  im.check(v, "inspect_get_major_version", root);
  return v;
}

void
Handle::mount_os(const std::string& root, bool readonly)
{
  std::map<std::string, std::string> points = inspect_mountpoints(root);
  std::vector<std::pair<std::string, std::string>> order(points.begin(), points.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first.size() < b.first.size(); });
  for (const auto& [mountpoint, device] : order) {
    if (readonly) {
      mount_ro(device, mountpoint);
    } else {
      mount(device, mountpoint);
    }
  }
}

// --- devices and filesystems -------------------------------------------------------------

std::vector<std::string>
Handle::list_devices()
{
  Impl& im = impl();
  return im.take_list(guestfs_list_devices(im.g.get()), "list_devices");
}

std::vector<std::string>
Handle::list_partitions()
{
  Impl& im = impl();
  return im.take_list(guestfs_list_partitions(im.g.get()), "list_partitions");
}

std::map<std::string, std::string>
Handle::list_filesystems()
{
  Impl& im = impl();
  return im.take_map(guestfs_list_filesystems(im.g.get()), "list_filesystems");
}

void
Handle::part_disk(const std::string& device, const std::string& parttype)
{
  Impl& im = impl();
  im.check(guestfs_part_disk(im.g.get(), device.c_str(), parttype.c_str()), "part_disk", device);
}

void
Handle::mkfs(const std::string& fstype, const std::string& device, const MkfsOptions& options)
{
  Impl& im = impl();
  struct guestfs_mkfs_opts_argv optargs{};
  if (!options.features.empty()) {
    // libguestfs passes this as `-O LIST`, which only mke2fs understands.
    if (fstype != "ext2" && fstype != "ext3" && fstype != "ext4") {
      throw Error(subject_of("mkfs", device), "filesystem features are only supported for ext2/3/4, not " + fstype);
    }
    optargs.bitmask |= GUESTFS_MKFS_OPTS_FEATURES_BITMASK;
    optargs.features = options.features.c_str();
  }
  if (!options.label.empty()) {
    optargs.bitmask |= GUESTFS_MKFS_OPTS_LABEL_BITMASK;
    optargs.label = options.label.c_str();
  }
  if (options.blocksize > 0) {
    optargs.bitmask |= GUESTFS_MKFS_OPTS_BLOCKSIZE_BITMASK;
    optargs.blocksize = options.blocksize;
  }
  im.check(guestfs_mkfs_opts_argv(im.g.get(), fstype.c_str(), device.c_str(), &optargs), "mkfs", device);
}

void
Handle::mount(const std::string& device, const std::string& mountpoint)
{
  Impl& im = impl();
  im.check(guestfs_mount(im.g.get(), device.c_str(), mountpoint.c_str()), "mount", device);
}

void
Handle::mount_ro(const std::string& device, const std::string& mountpoint)
{
  Impl& im = impl();
  im.check(guestfs_mount_ro(im.g.get(), device.c_str(), mountpoint.c_str()), "mount_ro", device);
}

void
Handle::umount_all()
{
  Impl& im = impl();
  im.check(guestfs_umount_all(im.g.get()), "umount_all");
}

std::string
Handle::vfs_type(const std::string& device)
{
  Impl& im = impl();
  return im.take_string(guestfs_vfs_type(im.g.get(), device.c_str()), "vfs_type", device);
}

std::string
Handle::vfs_uuid(const std::string& device)
{
  Impl& im = impl();
  return im.take_string(guestfs_vfs_uuid(im.g.get(), device.c_str()), "vfs_uuid", device);
}

std::map<std::string, std::string>
Handle::tune2fs_l(const std::string& device)
{
  Impl& im = impl();
  return im.take_map(guestfs_tune2fs_l(im.g.get(), device.c_str()), "tune2fs_l", device);
}

// --- files ---------------------------------------------------------------------------------

bool
Handle::exists(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_exists(im.g.get(), path.c_str()), "exists", path);
}

bool
Handle::is_file(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_is_file(im.g.get(), path.c_str()), "is_file", path);
}

bool
Handle::is_dir(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_is_dir(im.g.get(), path.c_str()), "is_dir", path);
}

bool
Handle::is_symlink(const std::string& path)
{
  Impl& im = impl();
  return im.take_bool(guestfs_is_symlink(im.g.get(), path.c_str()), "is_symlink", path);
}

Stat
Handle::lstat(const std::string& path)
{
  Impl& im = impl();
  std::unique_ptr<struct guestfs_statns, FreeStatns> st(guestfs_lstatns(im.g.get(), path.c_str()));
  if (!st) {
    im.fail("lstat", path);
  }
  Stat out;
  out.mode = static_cast<std::uint32_t>(st->st_mode);
  out.uid = static_cast<std::uint32_t>(st->st_uid);
  out.gid = static_cast<std::uint32_t>(st->st_gid);
  out.size = static_cast<std::uint64_t>(st->st_size);
  return out;
}

std::string
Handle::readlink(const std::string& path)
{
  Impl& im = impl();
  return im.take_string(guestfs_readlink(im.g.get(), path.c_str()), "readlink", path);
}

std::string
Handle::read_file(const std::string& path)
{
  Impl& im = impl();
  size_t size = 0;
  StringPtr data(guestfs_read_file(im.g.get(), path.c_str(), &size));
  if (!data) {
    im.fail("read_file", path);
  }
  return std::string(data.get(), size);
}

void
Handle::write(const std::string& path, const std::string& content)
{
  Impl& im = impl();
  im.check(guestfs_write(im.g.get(), path.c_str(), content.data(), content.size()), "write", path);
}

void
Handle::upload(const std::string& local, const std::string& remote)
{
  Impl& im = impl();
  im.check(guestfs_upload(im.g.get(), local.c_str(), remote.c_str()), "upload", remote);
}

void
Handle::download(const std::string& remote, const std::string& local)
{
  Impl& im = impl();
  im.check(guestfs_download(im.g.get(), remote.c_str(), local.c_str()), "download", remote);
}

void
Handle::tar_in(const std::string& local_tar, const std::string& dir)
{
  Impl& im = impl();
  struct guestfs_tar_in_opts_argv optargs{};
  optargs.bitmask =
    GUESTFS_TAR_IN_OPTS_XATTRS_BITMASK | GUESTFS_TAR_IN_OPTS_SELINUX_BITMASK | GUESTFS_TAR_IN_OPTS_ACLS_BITMASK;
  optargs.xattrs = 1;
  optargs.selinux = 1;
  optargs.acls = 1;
  im.check(guestfs_tar_in_opts_argv(im.g.get(), local_tar.c_str(), dir.c_str(), &optargs), "tar_in",
           local_tar + " -> " + dir);
}

void
Handle::tar_out(const std::string& dir, const std::string& local_tar)
{
  Impl& im = impl();
  struct guestfs_tar_out_opts_argv optargs{};
  optargs.bitmask = GUESTFS_TAR_OUT_OPTS_NUMERICOWNER_BITMASK | GUESTFS_TAR_OUT_OPTS_XATTRS_BITMASK |
                    GUESTFS_TAR_OUT_OPTS_SELINUX_BITMASK | GUESTFS_TAR_OUT_OPTS_ACLS_BITMASK;
  optargs.numericowner = 1;
  optargs.xattrs = 1;
  optargs.selinux = 1;
  optargs.acls = 1;
  im.check(guestfs_tar_out_opts_argv(im.g.get(), dir.c_str(), local_tar.c_str(), &optargs), "tar_out",
           dir + " -> " + local_tar);
}

void
Handle::mkdir_p(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_mkdir_p(im.g.get(), path.c_str()), "mkdir_p", path);
}

void
Handle::chmod(unsigned mode, const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_chmod(im.g.get(), static_cast<int>(mode), path.c_str()), "chmod", path);
}

void
Handle::chown(std::uint32_t uid, std::uint32_t gid, const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_chown(im.g.get(), static_cast<int>(uid), static_cast<int>(gid), path.c_str()), "chown", path);
}

void
Handle::rm_rf(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_rm_rf(im.g.get(), path.c_str()), "rm_rf", path);
}

void
Handle::rm_f(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_rm_f(im.g.get(), path.c_str()), "rm_f", path);
}

void
Handle::ln_sf(const std::string& target, const std::string& link)
{
  Impl& im = impl();
  im.check(guestfs_ln_sf(im.g.get(), target.c_str(), link.c_str()), "ln_sf", link);
}

void
Handle::truncate(const std::string& path)
{
  Impl& im = impl();
  im.check(guestfs_truncate(im.g.get(), path.c_str()), "truncate", path);
}

std::vector<std::string>
Handle::ls(const std::string& dir)
{
  Impl& im = impl();
  return im.take_list(guestfs_ls(im.g.get(), dir.c_str()), "ls", dir);
}

std::vector<std::string>
Handle::glob(const std::string& pattern)
{
  Impl& im = impl();
  return im.take_list(guestfs_glob_expand(im.g.get(), pattern.c_str()), "glob_expand", pattern);
}

std::string
Handle::getxattr(const std::string& path, const std::string& name)
{
  Impl& im = impl();
  size_t size = 0;
  StringPtr value(guestfs_getxattr(im.g.get(), path.c_str(), name.c_str(), &size));
  if (!value) {
    if (guestfs_last_errno(im.g.get()) == ENODATA) {
      return {};
    }
    im.fail("getxattr", path + " " + name);
  }
  return std::string(value.get(), size);
}

// --- commands ------------------------------------------------------------------------------

namespace {

// Removes a scratch directory inside the guest when the scope ends; errors are ignored
// (the directory is tiny, and a destructor must not throw).
class GuestTempDir {
public:
  GuestTempDir(guestfs_h* g, std::string path) : m_g(g), m_path(std::move(path)) {}
  GuestTempDir(const GuestTempDir&) = delete;
  GuestTempDir& operator=(const GuestTempDir&) = delete;
  ~GuestTempDir() { guestfs_rm_rf(m_g, m_path.c_str()); }
  const std::string& path() const { return m_path; }

private:
  guestfs_h* m_g;
  std::string m_path;
};

// Runs the uploaded script with its streams in files and prints the status on its own
// stdout. Positional: $1 script, $2 stdout file, $3 stderr file.
constexpr char k_sh_wrapper[] = "if [ -c /dev/null ]; then exec </dev/null; fi\n"
                                "/bin/sh \"$1\" >\"$2\" 2>\"$3\"\n"
                                "echo \"kiln-exit:$?\"\n";

} // namespace

CommandResult
Handle::sh(const std::string& script)
{
  Impl& im = impl();
  guestfs_h* g = im.g.get();
  // The guest's /tmp when it has one, else the root: either way a fresh private directory.
  int tmp_is_dir = guestfs_is_dir(g, "/tmp");
  std::string templ = (tmp_is_dir == 1 ? "/tmp" : "") + std::string("/.kiln-sh.XXXXXX");
  GuestTempDir dir(g, im.take_string(guestfs_mkdtemp(g, templ.c_str()), "sh", "mkdtemp " + templ));
  const std::string script_path = dir.path() + "/script";
  const std::string out_path = dir.path() + "/out";
  const std::string err_path = dir.path() + "/err";
  im.check(guestfs_write(g, script_path.c_str(), script.data(), script.size()), "sh", "write " + script_path);

  std::string wrapper = k_sh_wrapper;
  std::string name = "kiln-sh";
  std::vector<char*> argv = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), wrapper.data(), name.data(),
                             const_cast<char*>(script_path.c_str()), const_cast<char*>(out_path.c_str()),
                             const_cast<char*>(err_path.c_str()), nullptr};
  std::string status = im.take_string(guestfs_command(g, argv.data()), "sh", "/bin/sh");

  CommandResult result;
  const std::string marker = "kiln-exit:";
  size_t at = status.rfind(marker);
  if (at == std::string::npos) {
    throw Error(subject_of("sh", "/bin/sh"), "no exit status from the wrapper: " + one_line(status.c_str()));
  }
  result.exit_code = std::atoi(status.c_str() + at + marker.size());
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

// --- maintenance ---------------------------------------------------------------------------

void
Handle::trim(const std::string& mountpoint)
{
  Impl& im = impl();
  struct guestfs_fstrim_argv optargs{};
  if (guestfs_fstrim_argv(im.g.get(), mountpoint.c_str(), &optargs) != -1) {
    return;
  }
  std::string fstrim_error = one_line(guestfs_last_error(im.g.get()));
  im.emit("fstrim " + mountpoint + " failed (" + fstrim_error + "); zeroing free space instead");
  im.check(guestfs_zero_free_space(im.g.get(), mountpoint.c_str()), "zero_free_space", mountpoint);
}

bool
Handle::selinux_relabel(const std::string& specfile, const std::string& path)
{
  Impl& im = impl();
  char group[] = "selinuxrelabel";
  char* groups[] = {group, nullptr};
  int available = guestfs_feature_available(im.g.get(), groups);
  if (available != 1) {
    return false;
  }
  struct guestfs_selinux_relabel_argv optargs{};
  optargs.bitmask = GUESTFS_SELINUX_RELABEL_FORCE_BITMASK;
  optargs.force = 1;
  im.check(guestfs_selinux_relabel_argv(im.g.get(), specfile.c_str(), path.c_str(), &optargs), "selinux_relabel",
           path);
  return true;
}

namespace {

std::string
version_of(guestfs_h* g)
{
  std::unique_ptr<struct guestfs_version, FreeVersion> v(guestfs_version(g));
  if (!v) {
    throw Error("guestfs version", one_line(guestfs_last_error(g)));
  }
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->release) + v->extra;
}

} // namespace

std::string
Handle::version()
{
  return version_of(impl().g.get());
}

std::string
library_version()
{
  HandlePtr g(guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT));
  if (!g) {
    throw Error("guestfs create", "cannot create a libguestfs handle: " + errno_text(errno));
  }
  guestfs_set_error_handler(g.get(), nullptr, nullptr);
  return version_of(g.get());
}

} // namespace kiln::gfs
