#include "image/steps/finalize.hpp"

#include "image/edit/selinux.hpp"

#include <tuple>
#include <vector>

namespace kiln::steps {

void
selinux_relabel(StepContext& ctx)
{
  edit::Editor& g = ctx.g;
  std::optional<edit::SelinuxConfig> config = edit::read_selinux_config(g);
  if (!config || !g.exists("/usr/sbin/load_policy") || config->mode == "disabled") {
    return; // not an SELinux guest, or one that does not label
  }
  const std::string spec = config->file_contexts();
  if (g.exists(spec) && edit::label_paths(g, spec, {"/"}, ctx.notice)) {
    g.rm_f("/.autorelabel");
    return;
  }
  // The guest relabels itself at first boot instead.
  g.write("/.autorelabel", "");
  if (ctx.notice) {
    ctx.notice("selinux: cannot relabel offline; the image will relabel at first boot (/.autorelabel)");
  }
}

void
sysprep(StepContext& ctx)
{
  edit::Editor& g = ctx.g;
  for (const char* id : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    if (g.is_file(id) && !g.is_symlink(id)) {
      g.truncate(id);
    }
  }
  const std::vector<std::string> patterns = {
    "/etc/ssh/ssh_host_*",
    "/var/lib/systemd/random-seed",
    "/var/lib/random-seed",
    "/var/lib/urandom/random-seed",
    "/tmp/*",
    "/tmp/.[!.]*",
    "/var/tmp/*",
    "/root/.bash_history",
    "/home/*/.bash_history",
    "/root/.lesshst",
    "/root/.viminfo",
    "/var/cache/yum/*",
    "/var/cache/dnf/*",
    "/var/cache/apt/archives/*.deb",
    "/var/cache/apt/*.bin",
    "/var/lib/yum/history/*",
    "/var/lib/rpm/__db.*",
    "/var/lib/dhclient/*",
    "/var/lib/dhcp/*.leases",
    "/etc/udev/rules.d/70-persistent-net.rules",
  };
  for (const auto& pattern : patterns) {
    for (const auto& path : g.glob(pattern)) {
      g.rm_rf(path);
    }
  }
  // Log files go, the directories services expect stay.
  // Best effort: the script cannot fail (it ends in `true`), so its result says nothing.
  std::ignore = g.sh("find /var/log -type f -delete 2>/dev/null; true");
  std::string hostname = ctx.guest.package_format == "rpm" ? "localhost.localdomain" : "localhost";
  g.write("/etc/hostname", hostname + "\n");
}

} // namespace kiln::steps
