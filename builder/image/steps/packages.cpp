#include "image/steps/packages.hpp"

#include "core/util/error.hpp"
#include "core/util/quote.hpp"
#include "image/edit/checked_sh.hpp"

#include <filesystem>

namespace kiln::steps {

using util::shell_quote;

namespace {

void
write_repo(StepContext& ctx, const recipe::Repo& repo)
{
  if (ctx.guest.package_format == "rpm") {
    std::string text = "[" + repo.name + "]\nname=" + repo.name + "\nbaseurl=" + repo.baseurl +
                       "\nenabled=1\ngpgcheck=" + (repo.gpgcheck ? "1" : "0") + "\n";
    if (repo.gpgkey) {
      text += "gpgkey=" + *repo.gpgkey + "\n";
    }
    ctx.g.mkdir_p("/etc/yum.repos.d");
    ctx.g.write("/etc/yum.repos.d/" + repo.name + ".repo", text);
  } else {
    std::string options = repo.gpgcheck ? "" : "[trusted=yes] ";
    if (repo.gpgkey && repo.gpgcheck) {
      options = "[signed-by=" + *repo.gpgkey + "] ";
    }
    ctx.g.mkdir_p("/etc/apt/sources.list.d");
    // baseurl is "URL SUITE COMPONENTS..." for apt, as in a sources.list line.
    ctx.g.write("/etc/apt/sources.list.d/" + repo.name + ".list", "deb " + options + repo.baseurl + "\n");
  }
}

} // namespace

std::string
package_script(const StepContext& ctx, const recipe::PackagesStep& step, const std::string& staged)
{
  std::string install, remove;
  for (const auto& p : step.install) {
    install += " " + shell_quote(p);
  }
  for (const auto& p : step.remove) {
    remove += " " + shell_quote(p);
  }
  const std::string& pm = ctx.guest.package_manager;
  std::string script = "set -e\n";
  if (pm == "yum" || pm == "dnf") {
    // Without a network only the declared repositories that are local (file://) and the
    // staged files can be used; the guest's own remote repositories stay out of the way.
    std::string repos = ctx.network ? "" : " --disablerepo='*'";
    for (const auto& repo : step.repos) {
      if (!ctx.network && repo.baseurl.rfind("file://", 0) == 0) {
        repos += " --enablerepo=" + shell_quote(repo.name);
      }
    }
    if (!staged.empty() || !install.empty()) {
      script += pm + " -y" + repos + " install" + staged + install + "\n";
    }
    if (!remove.empty()) {
      script += pm + " -y" + repos + " remove" + remove + "\n";
    }
    script += pm + " clean all >/dev/null 2>&1 || true\n";
  } else if (pm == "apt") {
    script += "export DEBIAN_FRONTEND=noninteractive\n";
    std::string apt = "apt-get -y -o Dpkg::Options::=--force-confnew";
    if (ctx.network && (!step.repos.empty() || !install.empty())) {
      script += apt + " update\n";
    } else {
      // Offline, the image's own sources cannot be reached (apt-get update would fail on
      // them): read only the repositories this step declares.
      for (const auto& repo : step.repos) {
        script += apt + " -o Dir::Etc::sourcelist=sources.list.d/" + repo.name +
                  ".list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 update\n";
      }
    }
    if (!staged.empty() && install.empty()) {
      script += "dpkg -i" + staged + "\n";
    } else if (!staged.empty() || !install.empty()) {
      script += apt + " install" + staged + install + "\n";
    }
    if (!remove.empty()) {
      script += apt + " remove --purge" + remove + "\n";
    }
    script += "apt-get clean\n";
  } else {
    throw Error(pm.empty() ? std::string("package manager") : pm, "not supported (kiln knows yum, dnf and apt)");
  }
  if (!staged.empty()) {
    script += "rm -rf /var/tmp/kiln-packages\n";
  }
  return script;
}

void
run_packages(StepContext& ctx, const recipe::PackagesStep& step)
{
  for (const auto& repo : step.repos) {
    write_repo(ctx, repo);
  }
  std::string staged;
  if (!step.files.empty()) {
    ctx.g.mkdir_p("/var/tmp/kiln-packages");
    for (const auto& f : step.files) {
      std::string name = std::filesystem::path(f).filename().string();
      ctx.g.upload(f, "/var/tmp/kiln-packages/" + name);
      staged += " /var/tmp/kiln-packages/" + shell_quote(name);
    }
  }
  std::string script = package_script(ctx, step, staged);
  edit::checked_sh(ctx.g, script,
                   ctx.guest.package_manager + " failed" + (ctx.network ? "" : " (the appliance has no network)"));
}

} // namespace kiln::steps
