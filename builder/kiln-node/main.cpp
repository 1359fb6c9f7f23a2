// kiln-node: the reimaging tool that runs on a node or in an installer ramdisk.
// It links kiln_core only (never libguestfs), so it stays small. The commands'
// logic lives in core/node; this file parses arguments and prints.
#include "core/cli/report.hpp"
#include "core/node/disk.hpp"
#include "core/node/grow.hpp"
#include "core/node/node.hpp"
#include "core/node/test_hooks.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <unistd.h>

namespace {

using nlohmann::json;
namespace node = kiln::node;

std::string
describe_slot(const json& s)
{
  std::string text = s["state"].get<std::string>();
  if (text == "trial") {
    text += " (tries " + s["tries"].get<std::string>() + ")";
  }
  if (!s["name"].get<std::string>().empty()) {
    text += "  " + s["name"].get<std::string>();
  }
  if (!s["digest"].get<std::string>().empty()) {
    text += "  manifest " + s["digest"].get<std::string>().substr(0, 16);
  }
  return text;
}

std::string
describe_next(const json& n)
{
  std::string reason = n["reason"].get<std::string>();
  std::string text = n["slot"].get<std::string>() + " (";
  if (reason == "trial") {
    text += "trial, tries left after this boot: " + n["tries_after"].get<std::string>();
  } else if (reason == "last-resort") {
    text += "last resort: no slot is good or has tries left";
  } else if (reason == "empty") {
    text += "every slot is empty";
  } else {
    text += reason;
  }
  return text + ")";
}

void
print(const json& j, bool as_json, const std::function<void()>& text)
{
  if (as_json) {
    std::cout << j.dump(2) << "\n";
  } else {
    text();
  }
}

// `kiln-node VERSION (kiln COMMIT)`: the commit is configure time's `git describe`.
std::string
version_line()
{
  return std::string("kiln-node ") + KILN_VERSION + " (kiln " + KILN_COMMIT + ")";
}

#ifdef KILN_NODE_TEST_HOOKS
// The test build only (target kiln-node-test): the tests' hooks come from the environment.
void
read_test_hooks()
{
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  node::TestHooks& hooks = node::test_hooks();
  hooks.cmdline = env("KILN_NODE_CMDLINE");
  hooks.systemctl = env("KILN_NODE_SYSTEMCTL");
  hooks.fault = env("KILN_NODE_FAULT");
  hooks.mesos = env("KILN_NODE_MESOS");
  hooks.zookeeper = env("KILN_NODE_ZOOKEEPER");
}
#endif

} // namespace

int
main(int argc, char** argv)
{
  kiln::util::install_interrupt_handlers();
#ifdef KILN_NODE_TEST_HOOKS
  read_test_hooks();
#endif
  return kiln::cli::run_guarded("kiln-node", [&]() -> int {
    CLI::App app{"kiln-node: reimage this node from A/B slots, roll back, wipe DC/OS state", "kiln-node"};
    app.set_version_flag("--version", version_line());
    app.require_subcommand(1);
    app.fallthrough(true); // global options may also follow the command
    std::string disk;
    std::string booted_text;
    bool json_out = false;
    app.add_option("--disk", disk,
                   "Disk holding the A/B layout (block device, loop device or image file); "
                   "default: the disk the running system booted from");
    app.add_option("--booted", booted_text, "Treat slot A or B as booted (tests, rescue); default: /proc/cmdline")
      ->check(CLI::IsMember({"A", "B"}));
    bool force = false;
    app.add_flag("--force", force, "Let --booted override a kernel command line that names the other slot");
    app.add_flag("--json", json_out, "Machine-readable output");
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "Say on stderr what kiln-node chose (the CA bundle of https sources)");

    auto* status = app.add_subcommand("status", "Show both slots, the booted one and the next boot");
    std::string root = "/";
    status->add_option("--root", root, "Root of the system whose DC/OS first-boot state is read (default /)");

    auto* reimage = app.add_subcommand("reimage", "Write a slot bundle into the slot that is not booted");
    std::string source;
    std::string trust = std::string(kiln::slots::k_trust_dir);
    bool no_verify = false;
    unsigned tries = kiln::slots::k_default_tries;
    kiln::bundle::SourceOptions source_options;
    reimage->add_option("SOURCE", source, "NAME.kbundle: a path or an http(s) URL")->required();
    reimage->add_option("--trust", trust, "Trust directory (*.pem, revoked.list)");
    reimage->add_flag("--no-verify-signature", no_verify, "Accept an unsigned or untrusted bundle");
    auto* tries_option = reimage->add_option("--tries", tries,
                                             "Boots the new slot gets to confirm itself (1-9); default: tries= in "
                                             "kiln-boot's /grub/kiln-ab.conf, else 3")
      ->check(CLI::Range(1u, kiln::slots::k_max_tries));
    bool allow_downgrade = false;
    reimage->add_flag("--allow-downgrade", allow_downgrade,
                      "Accept a bundle whose version is below the highest this node installed");
    std::string expect_name;
    auto* expect_name_option =
      reimage->add_option("--expect-name", expect_name, "Refuse a bundle whose image name is not NAME");
    for (auto* cmd : {reimage}) {
      cmd->add_option("--ca-file", source_options.ca_file, "CA bundle (PEM) for https sources");
      cmd->add_option("--retries", source_options.retries, "Reconnects after a dropped connection");
    }

    auto* rollback = app.add_subcommand("rollback", "Boot the other slot next (it must be good)");
    // rollback's own --force (given after `rollback`) overrides only the DC/OS downgrade
    // guard; the global --force (before the command) only lets --booted override the
    // kernel command line. Neither implies the other.
    bool force_downgrade = false;
    rollback->add_option("--root", root, "Root of the running system, where the booted slot's DC/OS version is read "
                                         "(default /)");
    rollback->add_flag("--force", force_downgrade,
                       "Roll back even to an older DC/OS version (unsupported by DC/OS); only this, not --booted's "
                       "override (that is the global --force, before the command)");

    auto* mark_good = app.add_subcommand("mark-good", "Confirm the booted slot");
    bool when_healthy = false;
    mark_good->add_flag("--when-healthy", when_healthy, "Only when DC/OS (or systemd) reports the node healthy");
    mark_good->add_option("--root", root, "Root of the running system (default /)");
    unsigned deadline = 0;
    unsigned interval = 30;
    mark_good->add_option("--deadline", deadline,
                          "With --when-healthy: keep asking for health for this many seconds (default 0: once)");
    mark_good->add_option("--interval", interval, "Seconds between two asks (default 30)")->check(CLI::Range(1u, 3600u));

    auto* wipe = app.add_subcommand("wipe", "Remove DC/OS state so the node reinstalls DC/OS at the next boot");
    bool dcos = false;
    bool keep_data = false;
    wipe->add_flag("--dcos", dcos, "Wipe DC/OS (required)")->required();
    wipe->add_flag("--keep-data", keep_data, "Keep /var/lib/docker and /var/log");
    wipe->add_option("--root", root, "Root of the system to wipe (default /)");
    std::string volumes = "keep";
    wipe->add_option("--volumes", volumes, "DC/OS MOUNT volumes (/dcos/volume*): keep (default) or wipe their content")
      ->check(CLI::IsMember({"keep", "wipe"}));

    auto* install = app.add_subcommand("install", "Write a whole-disk image (NAME.raw + bmap + manifest) to a disk");
    std::string bmap_source;
    std::string manifest_source;
    install->add_option("SOURCE", source, "NAME.raw: a path or an http(s) URL")->required();
    install->add_option("--bmap", bmap_source, "The image's bmap (default SOURCE.bmap)");
    install->add_option("--manifest", manifest_source, "The manifest (default NAME.manifest.json beside SOURCE)");
    install->add_option("--trust", trust, "Trust directory (*.pem, revoked.list)");
    install->add_flag("--no-verify-signature", no_verify, "Accept an unsigned or untrusted image");
    install->add_option("--ca-file", source_options.ca_file, "CA bundle (PEM) for https sources");
    install->add_option("--retries", source_options.retries, "Reconnects after a dropped connection");

    auto* grow = app.add_subcommand("grow-data", "Grow kiln-data (partition and mounted file system) to the end of "
                                                 "the disk holding the booted slot");
    std::string data_mount = std::string(kiln::slots::k_data_mount);
    grow->add_option("--mount", data_mount, "Where kiln-data is mounted (default " + data_mount + ")");

    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::cout << app.help();
      return 0;
    } catch (const CLI::CallForVersion&) {
      std::cout << version_line() << "\n";
      return 0;
    } catch (const CLI::ParseError& e) {
      throw kiln::UsageError("arguments", e.what());
    }

    auto disk_options = [&]() {
      node::DiskOptions d;
      d.disk = disk.empty() ? node::running_disk() : std::filesystem::path(disk);
      if (!booted_text.empty()) {
        d.booted = kiln::slots::parse_slot(booted_text);
      }
      d.force = force;
      return d;
    };
    // https sources: --ca-file, else the node's own trust store (the first well-known CA
    // bundle that exists), never the build host's compiled-in path.
    auto choose_ca_file = [&](const std::string& src) {
      if (src.rfind("https://", 0) != 0) {
        return;
      }
      const bool given = !source_options.ca_file.empty();
      if (!given) {
        source_options.ca_file = kiln::bundle::default_ca_file();
        if (source_options.ca_file.empty()) {
          throw kiln::Error(src, "no CA bundle in the well-known places (" + kiln::bundle::well_known_ca_files_text() +
                                   "); name one with --ca-file");
        }
      }
      if (verbose) {
        std::cerr << "kiln-node: CA bundle " << source_options.ca_file
                  << (given ? " (--ca-file)" : " (the node's trust store)") << "\n";
      }
    };
    kiln::util::ProgressLine progress_line("writing", kiln::util::is_smart_terminal(STDERR_FILENO));
    auto progress = [&](std::uint64_t done, std::uint64_t total) { progress_line.update(done, total); };

    if (status->parsed()) {
      json j = node::status(disk_options(), root);
      print(j, json_out, [&] {
        if (j["in_progress"].get<bool>()) {
          std::cout << "in progress: another kiln-node holds the disk (a reimage writing a slot); the state below "
                       "is the grubenv as it is now\n";
        }
        std::cout << "disk:      " << j["disk"].get<std::string>() << "\n"
                  << "slot A:    " << describe_slot(j["slots"]["A"]) << "\n"
                  << "slot B:    " << describe_slot(j["slots"]["B"]) << "\n"
                  << "booted:    " << (j["booted"].is_null() ? "none (not the running system's disk)"
                                                             : j["booted"].get<std::string>())
                  << "\n"
                  << "next boot: " << describe_next(j["next_boot"]) << "\n"
                  << "dcos:      "
                  << (j["dcos"]["failed"].get<bool>()      ? "first-boot install FAILED"
                      : j["dcos"]["installed"].get<bool>() ? "installed"
                                                           : "not installed")
                  << "\n";
      });
      return 0;
    }
    if (reimage->parsed()) {
      choose_ca_file(source);
      node::ReimageOptions o;
      o.disk = disk_options();
      o.source = source;
      o.trust_dir = trust;
      o.verify_signature = !no_verify;
      if (tries_option->count() > 0) {
        o.tries = tries;
      }
      o.allow_downgrade = allow_downgrade;
      if (expect_name_option->count() > 0) {
        o.expect_name = expect_name;
      }
      o.source_options = source_options;
      o.progress = progress;
      json j = node::reimage(o);
      progress_line.finish();
      print(j, json_out, [&] {
        std::cout << "slot " << j["slot"].get<std::string>() << ": wrote " << j["name"].get<std::string>() << " ("
                  << kiln::util::human_bytes(j["written_bytes"].get<std::uint64_t>()) << " written, "
                  << kiln::util::human_bytes(j["skipped_bytes"].get<std::uint64_t>()) << " already there), verified; "
                  << "next boot: " << describe_next(j["next_boot"]) << "\n";
      });
      return 0;
    }
    if (rollback->parsed()) {
      node::RollbackOptions o;
      o.disk = disk_options();
      o.root = root;
      o.force = force_downgrade;
      json j = node::rollback(o);
      if (j.contains("warning")) {
        std::cerr << "kiln-node: warning: " << j["warning"].get<std::string>() << "\n";
      }
      print(j, json_out, [&] {
        std::cout << "next boot: " << describe_next(j["next_boot"]) << "\n";
      });
      return 0;
    }
    if (mark_good->parsed()) {
      node::MarkGoodOptions o;
      o.disk = disk_options();
      o.when_healthy = when_healthy;
      o.root = root;
      o.deadline = std::chrono::seconds(deadline);
      o.interval = std::chrono::seconds(interval);
      o.waiting = [&](const std::string& problem) {
        std::cerr << "kiln-node: mark-good: not healthy yet: " << problem << " (asking every " << interval
                  << " s for up to " << deadline << " s)\n";
      };
      json j = node::mark_good(o);
      print(j, json_out, [&] { std::cout << "slot " << j["slot"].get<std::string>() << " is good\n"; });
      return 0;
    }
    if (wipe->parsed()) {
      node::WipeOptions o;
      o.root = root;
      o.keep_data = keep_data;
      o.wipe_volumes = volumes == "wipe";
      json j = node::wipe_dcos(o);
      print(j, json_out, [&] {
        for (const auto& p : j["removed"]) {
          std::cout << "removed " << p.get<std::string>() << "\n";
        }
        for (const auto& p : j["mount_points_skipped"]) {
          std::cout << "left alone (mount point) " << p.get<std::string>() << "\n";
        }
        for (const auto& p : j["symlinks_not_followed"]) {
          std::cout << "left alone (symlink, not followed) " << p.get<std::string>() << "\n";
        }
        for (const auto& p : j["volumes_kept"]) {
          std::cout << "kept (DC/OS volume; --volumes wipe empties it) " << p.get<std::string>() << "\n";
        }
      });
      return 0;
    }
    if (grow->parsed()) {
      node::GrowDataOptions o;
      o.disk = disk_options();
      o.mount = data_mount;
      json j = node::grow_data(o);
      print(j, json_out, [&] {
        if (!j["changed"].get<bool>()) {
          std::cout << "kiln-data already fills " << j["disk"].get<std::string>() << ": nothing to do\n";
          return;
        }
        std::cout << "kiln-data (" << j["device"].get<std::string>() << "): partition "
                  << (j["partition"]["changed"].get<bool>()
                        ? "grown by " + kiln::util::human_bytes(j["partition"]["added_bytes"].get<std::uint64_t>())
                        : std::string("unchanged"))
                  << ", " << j["filesystem"]["type"].get<std::string>() << " file system now "
                  << kiln::util::human_bytes(j["filesystem"]["size"].get<std::uint64_t>()) << "\n";
      });
      return 0;
    }
    if (install->parsed()) {
      if (disk.empty()) {
        throw kiln::UsageError("install", "--disk is required");
      }
      choose_ca_file(source);
      node::InstallOptions o;
      o.disk = disk;
      o.source = source;
      o.bmap = bmap_source;
      o.manifest = manifest_source;
      o.trust_dir = trust;
      o.verify_signature = !no_verify;
      o.source_options = source_options;
      o.progress = progress;
      json j = node::install(o);
      progress_line.finish();
      print(j, json_out, [&] {
        std::cout << "installed " << j["name"].get<std::string>() << " on " << j["disk"].get<std::string>() << " ("
                  << kiln::util::human_bytes(j["written_bytes"].get<std::uint64_t>()) << " written), verified\n";
      });
      return 0;
    }
    return 0;
  });
}
