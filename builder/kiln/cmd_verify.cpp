// kiln verify IMAGE --role ROLE [--dcos-version V] [--json]: DC/OS's installer preflight
// and what it misses, run offline against an image file with one appliance launch.
#include "core/fetch/cache.hpp"
#include "image/guestfs/accel_probe.hpp"
#include "core/cli/report.hpp"
#include "core/dcos/checks.hpp"
#include "core/util/error.hpp"
#include "image/verify/guestfs_view.hpp"
#include "kiln/commands.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace kiln::cmd {

namespace {

struct VerifyArgs {
  std::string image;
  std::string role;
  std::string version;
  bool json = false;
  bool verbose = false;
};

int
do_verify(const VerifyArgs& args)
{
  verify::ImageVerifyOptions options;
  std::optional<dcos::Role> role = dcos::parse_role(args.role);
  if (!role) {
    throw UsageError("--role " + args.role, "unknown role (known: master, slave, slave_public)");
  }
  options.checks.role = *role;
  if (!args.version.empty()) {
    options.checks.version = args.version;
  }
  if (args.verbose) {
    options.log = [](const std::string& line) { std::cerr << "  | " << line << "\n"; };
  }
  try {
    gfs::set_accel_state_dir(fetch::Cache::default_root(std::nullopt) / "accel");
  } catch (const UsageError&) {
    // No cache directory at all: the decision is simply not remembered.
  }
  std::vector<dcos::CheckResult> results = verify::verify_image(args.image, options);
  size_t failed = 0;
  for (const auto& r : results) {
    failed += r.pass ? 0 : 1;
  }
  if (args.json) {
    std::cout << dcos::to_json(results).dump(2) << "\n";
  } else {
    for (const auto& r : results) {
      std::cout << dcos::format_line(r) << "\n";
    }
  }
  if (failed != 0) {
    cli::note(k_prog, args.image + ": " + std::to_string(failed) + " of " + std::to_string(results.size()) +
                        " checks failed for role " + args.role);
    return 1;
  }
  cli::note(k_prog, args.image + ": all " + std::to_string(results.size()) + " checks passed for role " + args.role);
  return 0;
}

} // namespace

void
add_verify_command(CLI::App& app, int& status)
{
  auto args = std::make_shared<VerifyArgs>();
  auto* cmd = app.add_subcommand("verify", "Run DC/OS's installer preflight (and more) offline against an image");
  cmd->add_option("image", args->image, "Image file (qcow2, raw, vmdk, vhd)")->required();
  cmd->add_option("--role", args->role, "DC/OS role: master, slave or slave_public")->required();
  cmd->add_option("--dcos-version", args->version, "DC/OS version (e.g. 2.2.1, 1.13.x) for version-dependent checks");
  cmd->add_flag("--json", args->json, "Print the checks as a JSON array");
  cmd->add_flag("-v,--verbose", args->verbose, "Show appliance messages");
  cmd->callback([args, &status] { status = do_verify(*args); });
}

} // namespace kiln::cmd
