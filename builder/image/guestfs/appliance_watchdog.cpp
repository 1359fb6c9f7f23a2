#include "image/guestfs/appliance_watchdog.hpp"

#include "core/util/term.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <map>
#include <unistd.h>
#include <vector>

namespace kiln::gfs {

namespace {

std::string
exe_of(pid_t pid)
{
  char buf[4096];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// ppid of every process, from /proc/PID/stat (the field after the parenthesised name).
std::multimap<pid_t, pid_t>
children_by_parent()
{
  std::multimap<pid_t, pid_t> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) {
    return out;
  }
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') {
      continue;
    }
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
      continue;
    }
    size_t close = line.rfind(')');
    if (close == std::string::npos || close + 4 > line.size()) {
      continue;
    }
    // ") S PPID ..."
    long ppid = std::strtol(line.c_str() + close + 4, nullptr, 10);
    out.emplace(static_cast<pid_t>(ppid), static_cast<pid_t>(pid));
  }
  ::closedir(dir);
  return out;
}

} // namespace

int
kill_foreign_descendants()
{
  const std::string self = exe_of(::getpid());
  std::multimap<pid_t, pid_t> tree = children_by_parent();
  std::vector<pid_t> todo{::getpid()};
  std::vector<pid_t> victims;
  while (!todo.empty()) {
    pid_t parent = todo.back();
    todo.pop_back();
    auto [first, last] = tree.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      todo.push_back(it->second);
      if (exe_of(it->second) != self) {
        victims.push_back(it->second);
      }
    }
  }
  for (pid_t pid : victims) {
    ::kill(pid, SIGKILL);
  }
  return static_cast<int>(victims.size());
}

ApplianceWatchdog::ApplianceWatchdog() : m_thread([this] { loop(); }) {}

ApplianceWatchdog::~ApplianceWatchdog()
{
  {
    std::lock_guard lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  m_thread.join();
}

void
ApplianceWatchdog::arm(const std::string& what, std::chrono::seconds limit)
{
  std::lock_guard lock(m_mutex);
  m_armed = true;
  m_what = what;
  m_limit = limit;
  m_deadline = std::chrono::steady_clock::now() + limit;
  m_fired = Fired::no;
  m_reason.clear();
}

void
ApplianceWatchdog::disarm()
{
  std::lock_guard lock(m_mutex);
  m_armed = false;
}

void
ApplianceWatchdog::set_qemu_pid(pid_t pid)
{
  m_qemu_pid.store(pid);
}

ApplianceWatchdog::Fired
ApplianceWatchdog::fired() const
{
  std::lock_guard lock(m_mutex);
  return m_fired;
}

std::string
ApplianceWatchdog::fired_reason() const
{
  std::lock_guard lock(m_mutex);
  return m_reason;
}

void
ApplianceWatchdog::kill_appliance()
{
  pid_t pid = m_qemu_pid.load();
  if (pid > 0) {
    ::kill(pid, SIGKILL);
  } else {
    kill_foreign_descendants();
  }
}

void
ApplianceWatchdog::loop()
{
  std::unique_lock lock(m_mutex);
  while (!m_stop) {
    m_cv.wait_for(lock, std::chrono::milliseconds(100));
    if (m_stop || !m_armed || m_fired != Fired::no) {
      continue;
    }
    if (util::interrupted()) {
      m_fired = Fired::interrupt;
      m_reason = m_what + " stopped by a signal";
    } else if (std::chrono::steady_clock::now() >= m_deadline) {
      m_fired = Fired::deadline;
      m_reason = m_what + " did not finish within " + std::to_string(m_limit.count()) + " s";
    } else {
      continue;
    }
    lock.unlock();
    kill_appliance();
    lock.lock();
  }
}

} // namespace kiln::gfs
