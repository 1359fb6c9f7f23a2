// The state behind gfs::Handle: the libguestfs handle, its drives, the accelerator, the
// watchdog that enforces deadlines and signals, and the appliance's recent messages.
// Internal to image/guestfs (handle.cpp, calls.cpp, guest_shell.cpp); libguestfs's
// header stays inside image/guestfs.
#pragma once

#include "image/guestfs/guestfs.hpp"

#include "image/guestfs/appliance_watchdog.hpp"
#include "image/guestfs/messages.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"

#include <guestfs.h>

#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::gfs {

namespace detail {

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

inline std::vector<std::string>
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
inline std::map<std::string, std::string>
to_map(char** list)
{
  StringListPtr owner(list);
  std::map<std::string, std::string> out;
  for (char** p = list; p[0] != nullptr && p[1] != nullptr; p += 2) {
    out[p[0]] = p[1];
  }
  return out;
}

} // namespace detail

using namespace detail;

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
  bool launching = false; // the launch arms its own deadline
  mutable ApplianceWatchdog watchdog; // deadlines and signals: kills the appliance's qemu
  std::string partial_line; // an appliance message without its newline yet
  std::deque<std::string> recent_lines; // the last appliance lines, for launch errors
  HandlePtr g; // last member: closed first, while the rest is alive

  explicit Impl(HandleOptions opts) : options(std::move(opts)) {}

  // --- errors ---------------------------------------------------------------------------

  [[noreturn]] void fail(std::string_view op, const std::string& subject) const
  {
    // A call the watchdog cut short failed because of that, whatever libguestfs says.
    switch (watchdog.fired()) {
      case ApplianceWatchdog::Fired::interrupt:
        throw Error("interrupted",
                    "stopped by a signal during guestfs " + std::string(op) + "; the appliance was stopped",
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

  void notice(const std::string& line)
  {
    if (options.notice) {
      options.notice(line);
    } else {
      emit(line);
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
      if (event == GUESTFS_EVENT_WARNING) {
        notice("warning: " + line);
      } else {
        emit(line);
      }
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
      static_cast<Impl*>(opaque)->on_event(
        event, std::string_view(buf != nullptr ? buf : "", buf != nullptr ? buf_len : 0), array, array_len);
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
    struct guestfs_add_drive_opts_argv optargs {};
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

} // namespace kiln::gfs
