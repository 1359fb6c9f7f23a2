#include "image/pipeline/finalize.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/edit/boot_kernel.hpp"
#include "image/pipeline/dcos_stage.hpp"
#include "image/pipeline/phase_timer.hpp"
#include "image/steps/finalize.hpp"

#include <algorithm>
#include <sstream>

namespace kiln::build {

std::vector<manifest::Package>
package_inventory(edit::Editor& g, const steps::GuestInfo& guest)
{
  std::string script = guest.package_format == "rpm"
                         ? "rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'"
                         : "dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\n'";
  edit::CommandResult r = g.sh(script);
  if (r.exit_code != 0) {
    throw Error("package inventory", "cannot read the " + guest.package_format + " database: " + r.err);
  }
  std::vector<manifest::Package> packages;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto t1 = line.find('\t');
    auto t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t1 == std::string::npos || t2 == std::string::npos) {
      continue;
    }
    packages.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)});
  }
  std::sort(packages.begin(), packages.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return packages;
}

std::optional<KernelFiles>
extract_kernel(edit::Editor& g, const LayerStore& layers, const std::string& key)
{
  std::optional<edit::BootKernel> k = edit::newest_kernel(g);
  if (!k) {
    return std::nullopt;
  }
  const std::string kernel = "/boot/" + k->kernel;
  const std::string initrd = "/boot/" + k->initrd;
  const std::string& version = k->version;
  KernelFiles out{version, layers.file(key, ".kernel"), layers.file(key, ".initramfs")};
  for (auto [local, remote] : {std::pair{out.kernel, kernel}, std::pair{out.initramfs, initrd}}) {
    util::AtomicFile file(local);
    g.download(remote, file.temp_path().string());
    file.commit();
  }
  return out;
}

LayerMeta
FinalizeStage::run(StageRun& run) const
{
  const recipe::Recipe& recipe = run.recipe;
  const BuildOptions& options = run.options;
  events(options).stage({name(), key(), StageState::running,
                         std::string(recipe.sysprep ? "sysprep, " : "") + "inventory" + (recipe.trim ? ", trim" : "")});
  LayerMeta meta;
  if (recipe::wants_relabel(recipe)) {
    PhaseTimer timer(log_sink(options), "relabel");
    steps::selinux_relabel(run.ctx);
  }
  if (recipe.dcos) {
    say(options, "verify: role " + std::string(dcos::role_name(recipe.dcos->role)));
    PhaseTimer timer(log_sink(options), "dcos verify");
    meta.dcos_verify = dcos_stage::verify(run.g, run.ctx.guest, recipe, options);
  }
  if (recipe.sysprep) {
    PhaseTimer timer(log_sink(options), "sysprep");
    steps::sysprep(run.ctx);
  }
  {
    PhaseTimer timer(log_sink(options), "inventory");
    meta.packages = package_inventory(run.ctx.g, run.ctx.guest);
    meta.kernel = extract_kernel(run.ctx.g, run.layers, key());
  }
  if (recipe.trim) {
    PhaseTimer timer(log_sink(options), "trim");
    for (const auto& [mountpoint, device] : run.ctx.guest.mounts) {
      run.g.trim(mountpoint);
    }
  }
  return meta;
}

} // namespace kiln::build
