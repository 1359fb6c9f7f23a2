#include "image/guestfs/handle_impl.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace kiln::gfs {

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
      im.notice("kvm unusable (" + std::string(decision.remembered ? "remembered: " : "") + decision.reason +
                "); using software emulation");
    }
  }
  const std::chrono::seconds tcg_limit =
    im.options.launch_timeout.count() > 0 ? im.options.launch_timeout : tcg_launch_deadline(decision);
  const std::chrono::seconds limit = kvm ? kvm_launch_deadline(decision) : tcg_limit;
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
    im.notice("kvm unusable (" + summary + "); using software emulation" +
              (remembered.empty() ? "" : "; remembered in " + remembered.string()));
  }
  error = im.try_launch(Accel::tcg, tcg_limit);
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
