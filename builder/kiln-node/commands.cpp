#include "kiln-node/commands.hpp"

#include "core/node/disk.hpp"
#include "core/node/grow.hpp"
#include "core/node/wipe.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"
#include "kiln-node/render.hpp"

#include <chrono>
#include <iostream>
#include <unistd.h>

namespace kiln::node_cli {

Context::Context(const Globals& globals) : m_globals(globals) {}

node::DiskOptions
Context::disk_options() const
{
  node::DiskOptions d;
  d.disk = m_globals.disk.empty() ? node::running_disk() : std::filesystem::path(m_globals.disk);
  if (!m_globals.booted.empty()) {
    d.booted = slots::parse_slot(m_globals.booted);
  }
  d.force = m_globals.force;
  return d;
}

void
Context::choose_ca_file(const std::string& source, bundle::SourceOptions& options) const
{
  if (source.rfind("https://", 0) != 0) {
    return;
  }
  const bool given = !options.ca_file.empty();
  if (!given) {
    options.ca_file = bundle::default_ca_file();
    if (options.ca_file.empty()) {
      throw Error(source, "no CA bundle in the well-known places (" + bundle::well_known_ca_files_text() +
                            "); name one with --ca-file");
    }
  }
  if (m_globals.verbose) {
    std::cerr << "kiln-node: CA bundle " << options.ca_file << (given ? " (--ca-file)" : " (the node's trust store)")
              << "\n";
  }
}

node::Progress
Context::progress()
{
  auto line = std::make_shared<util::ProgressLine>("writing", util::is_smart_terminal(STDERR_FILENO));
  m_progress_line = line;
  return [line](std::uint64_t done, std::uint64_t total) { line->update(done, total); };
}

void
Context::finish_progress()
{
  if (m_progress_line) {
    m_progress_line->finish();
  }
}

namespace {

// Options of the commands that fetch and verify a bundle or an image.
struct SourceArgs {
  std::string source;
  std::string trust = std::string(slots::k_trust_dir);
  bool no_verify = false;
  bundle::SourceOptions options;
};

void
add_source_options(CLI::App& sub, SourceArgs& a, const char* what, const char* unverified)
{
  sub.add_option("SOURCE", a.source, what)->required();
  sub.add_option("--trust", a.trust, "Trust directory (*.pem, revoked.list)");
  sub.add_flag("--no-verify-signature", a.no_verify, unverified);
  sub.add_option("--ca-file", a.options.ca_file, "CA bundle (PEM) for https sources");
  sub.add_option("--retries", a.options.retries, "Reconnects after a dropped connection");
}

std::function<Result(Context&)>
add_status(CLI::App& sub)
{
  auto root = std::make_shared<std::string>("/");
  sub.add_option("--root", *root, "Root of the system whose DC/OS first-boot state is read (default /)");
  return [root](Context& ctx) { return report_result(node::status(ctx.disk_options(), *root), render_status); };
}

std::function<Result(Context&)>
add_reimage(CLI::App& sub)
{
  struct Args {
    SourceArgs src;
    unsigned tries = slots::k_default_tries;
    CLI::Option* tries_option = nullptr;
    bool allow_downgrade = false;
    std::string expect_name;
    CLI::Option* expect_name_option = nullptr;
  };
  auto a = std::make_shared<Args>();
  add_source_options(sub, a->src, "NAME.kbundle: a path or an http(s) URL", "Accept an unsigned or untrusted bundle");
  a->tries_option = sub
                      .add_option("--tries", a->tries,
                                  "Boots the new slot gets to confirm itself (1-9); default: tries= in "
                                  "kiln-boot's /grub/kiln-ab.conf, else 3")
                      ->check(CLI::Range(1u, slots::k_max_tries));
  sub.add_flag("--allow-downgrade", a->allow_downgrade,
               "Accept a bundle whose version is below the highest this node installed");
  a->expect_name_option =
    sub.add_option("--expect-name", a->expect_name, "Refuse a bundle whose image name is not NAME");
  return [a](Context& ctx) {
    ctx.choose_ca_file(a->src.source, a->src.options);
    node::ReimageOptions o;
    o.disk = ctx.disk_options();
    o.source = a->src.source;
    o.trust_dir = a->src.trust;
    o.verify_signature = !a->src.no_verify;
    if (a->tries_option->count() > 0) {
      o.tries = a->tries;
    }
    o.allow_downgrade = a->allow_downgrade;
    if (a->expect_name_option->count() > 0) {
      o.expect_name = a->expect_name;
    }
    o.source_options = a->src.options;
    o.progress = ctx.progress();
    o.fault = ctx.globals().fault;
    node::ReimageReport r = node::reimage(o);
    ctx.finish_progress();
    return report_result(r, render_reimage);
  };
}

std::function<Result(Context&)>
add_rollback(CLI::App& sub)
{
  // rollback's own --force (given after `rollback`) overrides only the DC/OS downgrade
  // guard; the global --force (before the command) only lets --booted override the
  // kernel command line. Neither implies the other.
  struct Args {
    std::string root = "/";
    bool force_downgrade = false;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("--root", a->root,
                 "Root of the running system, where the booted slot's DC/OS version is read "
                 "(default /)");
  sub.add_flag("--force", a->force_downgrade,
               "Roll back even to an older DC/OS version (unsupported by DC/OS); only this, not --booted's "
               "override (that is the global --force, before the command)");
  return [a](Context& ctx) {
    node::RollbackOptions o;
    o.disk = ctx.disk_options();
    o.root = a->root;
    o.force = a->force_downgrade;
    node::RollbackReport r = node::rollback(o);
    std::vector<std::string> warnings;
    if (!r.warning.empty()) {
      warnings.push_back(r.warning);
    }
    return report_result(r, render_rollback, warnings);
  };
}

std::function<Result(Context&)>
add_mark_good(CLI::App& sub)
{
  struct Args {
    bool when_healthy = false;
    std::string root = "/";
    unsigned deadline = 0;
    unsigned interval = 30;
  };
  auto a = std::make_shared<Args>();
  sub.add_flag("--when-healthy", a->when_healthy, "Only when DC/OS (or systemd) reports the node healthy");
  sub.add_option("--root", a->root, "Root of the running system (default /)");
  sub.add_option("--deadline", a->deadline,
                 "With --when-healthy: keep asking for health for this many seconds (default 0: once)");
  sub.add_option("--interval", a->interval, "Seconds between two asks (default 30)")->check(CLI::Range(1u, 3600u));
  return [a](Context& ctx) {
    node::MarkGoodOptions o;
    o.disk = ctx.disk_options();
    o.when_healthy = a->when_healthy;
    o.root = a->root;
    o.deadline = std::chrono::seconds(a->deadline);
    o.interval = std::chrono::seconds(a->interval);
    o.waiting = [a](const std::string& problem) {
      std::cerr << "kiln-node: mark-good: not healthy yet: " << problem << " (asking every " << a->interval
                << " s for up to " << a->deadline << " s)\n";
    };
    return report_result(node::mark_good(o), render_mark_good);
  };
}

std::function<Result(Context&)>
add_wipe(CLI::App& sub)
{
  struct Args {
    bool dcos = false;
    bool keep_data = false;
    std::string root = "/";
    std::string volumes = "keep";
  };
  auto a = std::make_shared<Args>();
  sub.add_flag("--dcos", a->dcos, "Wipe DC/OS (required)")->required();
  sub.add_flag("--keep-data", a->keep_data, "Keep /var/lib/docker and /var/log");
  sub.add_option("--root", a->root, "Root of the system to wipe (default /)");
  sub.add_option("--volumes", a->volumes, "DC/OS MOUNT volumes (/dcos/volume*): keep (default) or wipe their content")
    ->check(CLI::IsMember({"keep", "wipe"}));
  return [a](Context&) {
    node::WipeOptions o;
    o.root = a->root;
    o.keep_data = a->keep_data;
    o.wipe_volumes = a->volumes == "wipe";
    return report_result(node::wipe_dcos(o), render_wipe);
  };
}

std::function<Result(Context&)>
add_install(CLI::App& sub)
{
  struct Args {
    SourceArgs src;
    std::string bmap;
    std::string manifest;
  };
  auto a = std::make_shared<Args>();
  add_source_options(sub, a->src, "NAME.raw: a path or an http(s) URL", "Accept an unsigned or untrusted image");
  sub.add_option("--bmap", a->bmap, "The image's bmap (default SOURCE.bmap)");
  sub.add_option("--manifest", a->manifest, "The manifest (default NAME.manifest.json beside SOURCE)");
  return [a](Context& ctx) {
    if (ctx.globals().disk.empty()) {
      throw UsageError("install", "--disk is required");
    }
    ctx.choose_ca_file(a->src.source, a->src.options);
    node::InstallOptions o;
    o.disk = ctx.globals().disk;
    o.source = a->src.source;
    o.bmap = a->bmap;
    o.manifest = a->manifest;
    o.trust_dir = a->src.trust;
    o.verify_signature = !a->src.no_verify;
    o.source_options = a->src.options;
    o.progress = ctx.progress();
    o.fault = ctx.globals().fault;
    node::InstallReport r = node::install(o);
    ctx.finish_progress();
    return report_result(r, render_install);
  };
}

std::function<Result(Context&)>
add_grow_data(CLI::App& sub)
{
  auto mount = std::make_shared<std::string>(slots::k_data_mount);
  sub.add_option("--mount", *mount, "Where kiln-data is mounted (default " + *mount + ")");
  return [mount](Context& ctx) {
    node::GrowDataOptions o;
    o.disk = ctx.disk_options();
    o.mount = *mount;
    return report_result(node::grow_data(o), render_grow_data);
  };
}

} // namespace

const std::vector<Command>&
commands()
{
  static const std::vector<Command> table = {
    {"status", "Show both slots, the booted one and the next boot", add_status},
    {"reimage", "Write a slot bundle into the slot that is not booted", add_reimage},
    {"rollback", "Boot the other slot next (it must be good)", add_rollback},
    {"mark-good", "Confirm the booted slot", add_mark_good},
    {"wipe", "Remove DC/OS state so the node reinstalls DC/OS at the next boot", add_wipe},
    {"install", "Write a whole-disk image (NAME.raw + bmap + manifest) to a disk", add_install},
    {"grow-data", "Grow kiln-data (partition and mounted file system) to the end of the disk holding the booted slot",
     add_grow_data},
  };
  return table;
}

} // namespace kiln::node_cli
