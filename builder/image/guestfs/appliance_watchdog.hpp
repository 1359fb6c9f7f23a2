// Every wait on the appliance has a deadline, and a signal ends it promptly. libguestfs
// calls block until the appliance answers; a hung KVM launch or a guest command that never
// returns would block for ever, and SIGTERM would only be seen after the call. The
// watchdog is a thread beside one handle: when the armed deadline passes or the process
// is interrupted (util::interrupted()), it kills the appliance's qemu, so the blocked call
// returns with an error that the handle then reports as what it was (a timeout naming the
// call, or the interruption).
//
// The qemu process is known by pid once launched; during the launch it is found as the
// descendants of this process that are not forks of this program (libguestfs's recovery
// process is one), which is what libguestfs itself started.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <thread>

namespace kiln::gfs {

class ApplianceWatchdog {
public:
  enum class Fired { no, deadline, interrupt };

  ApplianceWatchdog();
  ~ApplianceWatchdog();
  ApplianceWatchdog(const ApplianceWatchdog&) = delete;
  ApplianceWatchdog& operator=(const ApplianceWatchdog&) = delete;

  // Arms a deadline for `what` (e.g. "launch", "sh 'yum install ...'"), replacing any other.
  void arm(const std::string& what, std::chrono::seconds limit);
  void disarm();
  // The launched appliance's qemu pid (0: not known, search the descendants).
  void set_qemu_pid(pid_t pid);

  // Whether (and why) the watchdog killed the appliance since the last arm().
  Fired fired() const;
  // "launch did not finish within 30 s" for a deadline.
  std::string fired_reason() const;

private:
  void loop();
  void kill_appliance();

  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stop = false;
  bool m_armed = false;
  std::chrono::steady_clock::time_point m_deadline;
  std::chrono::seconds m_limit{0};
  std::string m_what;
  std::atomic<pid_t> m_qemu_pid{0};
  Fired m_fired = Fired::no;
  std::string m_reason;
  std::thread m_thread; // last: started when everything above exists
};

// Kills (SIGKILL) every descendant of this process that is not running this program's own
// executable. Returns how many were killed.
int kill_foreign_descendants();

} // namespace kiln::gfs
