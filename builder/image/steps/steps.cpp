#include "image/steps/steps.hpp"

#include "core/archive/archive.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/quote.hpp"
#include "core/util/term.hpp"
#include "image/edit/checked_sh.hpp"
#include "image/steps/guest_ids.hpp"
#include "image/steps/packages.hpp"
#include "image/steps/text_edit.hpp"
#include "image/steps/units.hpp"

#include <algorithm>

namespace kiln::steps {

using util::shell_quote;

namespace {

std::string
dirname_of(const std::string& path)
{
  auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

void
place_file(StepContext& ctx, const std::string& path, const std::optional<std::string>& content,
           const std::optional<std::string>& source, unsigned mode, const std::string& owner, const std::string& group)
{
  ctx.g.mkdir_p(dirname_of(path));
  if (ctx.g.is_symlink(path) || ctx.g.is_dir(path)) {
    ctx.g.rm_rf(path);
  }
  if (source) {
    ctx.g.upload(*source, path);
  } else {
    ctx.g.write(path, content.value_or(""));
  }
  ctx.g.chown(guest_uid(ctx.g, owner), guest_gid(ctx.g, group), path);
  ctx.g.chmod(mode, path);
}

const std::string k_firstboot_dir = "/usr/libexec/kiln/firstboot";

void
run_file(StepContext& ctx, const recipe::FileStep& s)
{
  place_file(ctx, s.path, s.content, s.source, s.mode, s.owner, s.group);
}

void
run_overlay(StepContext& ctx, const recipe::OverlayStep& s)
{
  util::TempDir tmp;
  std::filesystem::path tar = tmp.path() / "overlay.tar";
  archive::TarOptions options;
  options.uid = guest_uid(ctx.g, s.owner);
  options.gid = guest_gid(ctx.g, s.group);
  archive::tar_directory(s.source, tar, options);
  ctx.g.mkdir_p(s.dest);
  ctx.g.tar_in(tar.string(), s.dest);
}

void
run_edit(StepContext& ctx, const recipe::EditStep& s)
{
  std::string text = ctx.g.exists(s.path) ? ctx.g.read_file(s.path) : "";
  for (const auto& [key, value] : s.set) {
    text = set_key_value(text, key, value, s.separator);
  }
  if (!s.lines.empty()) {
    text = s.match ? replace_block(text, *s.match, s.lines) : append_missing(text, s.lines);
  } else if (s.line) {
    text = replace_lines(text, s.match ? *s.match : whole_line_regex(*s.line), *s.line);
  }
  ctx.g.mkdir_p(dirname_of(s.path));
  ctx.g.write(s.path, text);
}

void
run_delete(StepContext& ctx, const recipe::DeleteStep& s)
{
  for (const auto& pattern : s.paths) {
    for (const auto& path : ctx.g.glob(pattern)) {
      ctx.g.rm_rf(path);
    }
  }
}

void
run_unit(StepContext& ctx, const recipe::UnitStep& s)
{
  place_file(ctx, "/etc/systemd/system/" + s.name, s.content, s.source, 0644, "root", "root");
}

void
run_systemd(StepContext& ctx, const recipe::SystemdStep& s)
{
  for (const auto& u : s.disable) {
    disable_unit(ctx.g, u);
  }
  for (const auto& u : s.mask) {
    mask_unit(ctx.g, u);
  }
  for (const auto& u : s.enable) {
    enable_unit(ctx.g, u);
  }
}

void
run_group(StepContext& ctx, const recipe::GroupStep& s)
{
  std::string cmd = "getent group " + shell_quote(s.name) + " >/dev/null || groupadd";
  if (s.gid) {
    cmd += " -g " + std::to_string(*s.gid);
  }
  if (s.system) {
    cmd += " -r";
  }
  edit::checked_sh(ctx.g, cmd + " " + shell_quote(s.name), "groupadd " + s.name);
  if (s.gid && guest_gid(ctx.g, s.name) != *s.gid) {
    throw Error("group " + s.name, "already exists in the image with gid " + std::to_string(guest_gid(ctx.g, s.name)) +
                                     ", not " + std::to_string(*s.gid));
  }
}

void
run_user(StepContext& ctx, const recipe::UserStep& s)
{
  std::string cmd = "useradd -m -s " + shell_quote(s.shell);
  if (s.uid) {
    cmd += " -u " + std::to_string(*s.uid);
  }
  if (s.group) {
    cmd += " -g " + shell_quote(*s.group);
  }
  if (!s.groups.empty()) {
    std::string groups;
    for (const auto& gname : s.groups) {
      groups += (groups.empty() ? "" : ",") + gname;
    }
    cmd += " -G " + shell_quote(groups);
  }
  if (s.home) {
    cmd += " -d " + shell_quote(*s.home);
  }
  if (s.system) {
    cmd += " -r";
  }
  cmd += " " + shell_quote(s.name);
  if (ctx.source_date_epoch) {
    // useradd stamps the day of the guest's clock into /etc/shadow (last password change):
    // the build's day instead, so two builds a day apart are the same bytes. chage, not
    // useradd's own SOURCE_DATE_EPOCH support, which EL7's shadow-utils lacks.
    cmd = "{ " + cmd + " && chage -d " + std::to_string(std::max<std::int64_t>(*ctx.source_date_epoch, 0) / 86400) +
          " " + shell_quote(s.name) + "; }";
  }
  edit::checked_sh(ctx.g, "getent passwd " + shell_quote(s.name) + " >/dev/null || " + cmd, "useradd " + s.name);
}

void
run_selinux(StepContext& ctx, const recipe::SelinuxStep& s)
{
  // The mode now; the relabel at the end of the build (finalize), so that files written
  // by later steps are labelled too.
  std::string config =
    ctx.g.exists("/etc/selinux/config") ? ctx.g.read_file("/etc/selinux/config") : "SELINUXTYPE=targeted\n";
  ctx.g.mkdir_p("/etc/selinux");
  ctx.g.write("/etc/selinux/config", set_key_value(config, "SELINUX", s.mode, "="));
}

void
run_command(StepContext& ctx, const recipe::RunStep& s)
{
  edit::checked_sh(ctx.g, s.command, "command '" + s.command + "'");
}

void
run_firstboot(StepContext& ctx, const recipe::FirstbootStep& step)
{
  std::string script_path = k_firstboot_dir + "/" + step.name;
  place_file(ctx, script_path,
             step.script ? std::optional<std::string>("#!/bin/sh\n" + *step.script + "\n") : std::nullopt, step.source,
             0755, "root", "root");
  std::string after = "network-online.target time-sync.target";
  for (const auto& a : step.after) {
    after += " " + a;
  }
  std::string unit = "kiln-firstboot-" + step.name + ".service";
  // Runs once: the stamp under /var/lib/kiln makes later boots skip it; a failure leaves
  // a visible marker and the unit failed, and the next boot tries again.
  std::string text =
    "[Unit]\n"
    "Description=kiln first-boot task " +
    step.name +
    "\n"
    "Wants=network-online.target time-sync.target\n"
    "After=" +
    after +
    "\n"
    "ConditionPathExists=!/var/lib/kiln/firstboot/" +
    step.name +
    ".done\n"
    "\n[Service]\n"
    "Type=oneshot\n"
    "RemainAfterExit=yes\n"
    "TimeoutStartSec=0\n"
    "ExecStart=/bin/sh -c 'mkdir -p /var/log/kiln /var/lib/kiln/firstboot; rm -f /var/lib/kiln/firstboot/" +
    step.name + ".failed; if " + script_path + " >>/var/log/kiln/" + step.name +
    ".log 2>&1; then touch /var/lib/kiln/firstboot/" + step.name +
    ".done; else rc=$?; echo $rc >/var/lib/kiln/firstboot/" + step.name +
    ".failed; exit $rc; fi'\n"
    "StandardOutput=journal+console\n"
    "\n[Install]\n"
    "WantedBy=multi-user.target\n";
  ctx.g.mkdir_p("/etc/systemd/system");
  ctx.g.write("/etc/systemd/system/" + unit, text);
  ctx.g.chmod(0644, "/etc/systemd/system/" + unit);
  enable_unit(ctx.g, unit);
}

// One runner per step type, chosen by the type of the recipe's parsed step.
struct Dispatch {
  StepContext& ctx;
  void operator()(const recipe::FileStep& s) const { run_file(ctx, s); }
  void operator()(const recipe::OverlayStep& s) const { run_overlay(ctx, s); }
  void operator()(const recipe::EditStep& s) const { run_edit(ctx, s); }
  void operator()(const recipe::DeleteStep& s) const { run_delete(ctx, s); }
  void operator()(const recipe::UnitStep& s) const { run_unit(ctx, s); }
  void operator()(const recipe::SystemdStep& s) const { run_systemd(ctx, s); }
  void operator()(const recipe::GroupStep& s) const { run_group(ctx, s); }
  void operator()(const recipe::UserStep& s) const { run_user(ctx, s); }
  void operator()(const recipe::SelinuxStep& s) const { run_selinux(ctx, s); }
  void operator()(const recipe::PackagesStep& s) const { run_packages(ctx, s); }
  void operator()(const recipe::RunStep& s) const { run_command(ctx, s); }
  void operator()(const recipe::FirstbootStep& s) const { run_firstboot(ctx, s); }
};

} // namespace

void
run_step(StepContext& ctx, const recipe::Step& step)
{
  const std::string what = step.kind + " step at " + step.location.str();
  try {
    std::visit(Dispatch{ctx}, step.spec);
  } catch (const Error& e) {
    if (util::interrupted()) {
      throw; // the interruption is the story, not the step it cut short
    }
    throw Error(what, e.what(), e.exit_code());
  }
}

} // namespace kiln::steps
