#include "core/cli/report.hpp"
#include "core/fetch/cache.hpp"
#include "core/recipe/loader.hpp"
#include "core/recipe/plan.hpp"
#include "core/util/error.hpp"
#include "core/util/source_date_epoch.hpp"
#include "core/util/term.hpp"
#include "image/pipeline/builder.hpp"
#include "image/guestfs/accel_probe.hpp"
#include "kiln/commands.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <memory>

namespace kiln::cmd {

namespace {

struct BuildArgs {
  std::string recipe;
  std::string output = "out";
  std::vector<std::string> formats;
  std::vector<std::string> set;
  std::string cache;
  std::string sign;
  bool no_cache = false;
  bool network = false;
  bool allow_unpinned = false;
  bool json = false;
  bool verbose = false;
};

// The build's events on a terminal (stderr): notes and warnings as "kiln: ..." lines,
// stages with their short key, transfers as one progress line (on a terminal only), the
// log indented with -v.
class TerminalEvents final : public build::BuildEvents {
public:
  explicit TerminalEvents(bool verbose) : m_verbose(verbose) {}

  void stage(const build::StageEvent& e) override
  {
    const std::string key = e.key.substr(0, 12);
    note(e.state == build::StageState::cached ? "stage " + e.name + ": cached (" + key + ")"
                                              : "stage " + e.name + ": " + e.detail + " (" + key + ")");
  }
  void note(const std::string& line) override
  {
    m_progress.finish();
    cli::note(k_prog, line);
  }
  void warning(const std::string& line) override { note(line); }
  void log(const std::string& line) override
  {
    m_progress.finish();
    std::cerr << "  | " << line << "\n";
  }
  bool verbose() const override { return m_verbose; }
  void progress(std::uint64_t done, std::uint64_t total) override { m_progress.update(done, total); }
  void finish() { m_progress.finish(); }

private:
  bool m_verbose;
  util::ProgressLine m_progress{"transfer", true};
};

int
do_build(const BuildArgs& args)
{
  recipe::Recipe r = recipe::load_recipe(args.recipe, recipe_load_options(args.set, args.allow_unpinned));
  std::vector<recipe::OutputFormat> formats;
  for (const auto& f : args.formats) {
    std::optional<recipe::OutputFormat> format = recipe::parse_format(f);
    if (!format) {
      throw UsageError("--format " + f, "unknown format (known: qcow2, raw, vmdk, vhd, pxe)");
    }
    formats.push_back(*format);
  }
  const std::filesystem::path cache_root =
    fetch::Cache::default_root(args.cache.empty() ? std::nullopt : std::optional(args.cache));
  // Local inputs are hashed once while they stay as they are (file_digests.hpp). The
  // store is written only once the plan is made: a bad recipe leaves no cache behind.
  crypto::CachedDigests digests(cache_root / "digests" / "files.json");
  recipe::PlanOptions plan_options;
  plan_options.digests = &digests;
  plan_options.source_date_epoch = util::source_date_epoch_from_environment();
  recipe::Plan plan = recipe::make_plan(r, plan_options);
  fetch::Cache cache(cache_root);
  digests.save();
  // The KVM decision is remembered per machine beside the layers.
  gfs::set_accel_state_dir(cache.area("accel"));

  build::BuildOptions options;
  options.output_dir = args.output;
  options.formats = formats;
  options.no_cache = args.no_cache;
  options.network = args.network;
  options.source_date_epoch = plan_options.source_date_epoch;
  if (!args.sign.empty()) {
    options.sign_key = args.sign;
  }
  TerminalEvents events(args.verbose);
  options.events = &events;

  build::BuildResult result = build::build(r, plan, cache, options);
  events.finish();
  if (args.json) {
    nlohmann::json outputs = nlohmann::json::array();
    for (const auto& o : result.outputs) {
      outputs.push_back(
        {{"name", o.name}, {"role", o.role}, {"format", o.format}, {"sha256", o.sha256}, {"size", o.size}});
    }
    std::cout << nlohmann::json{{"recipe", r.name},
                                {"launches", result.launches},
                                {"reused", result.reused},
                                {"built", result.built},
                                {"outputs", outputs},
                                {"outputs_up_to_date", result.outputs_up_to_date},
                                {"manifest", result.manifest.string()}}
                   .dump(2)
              << "\n";
  } else {
    for (const auto& o : result.outputs) {
      std::cout << (std::filesystem::path(args.output) / o.name).string() << "\n";
    }
    std::cout << result.manifest.string() << "\n";
  }
  cli::note(k_prog, "built " + r.name + ": " + std::to_string(result.built.size()) + " stages run, " +
                      std::to_string(result.reused.size()) + " reused, " + std::to_string(result.launches) +
                      " appliance launches" + (result.outputs_up_to_date ? ", outputs up to date" : ""));
  return 0;
}

} // namespace

void
add_build_command(CLI::App& app, int& status)
{
  auto args = std::make_shared<BuildArgs>();
  auto* cmd = app.add_subcommand("build", "Bake the image a recipe describes, offline, into every requested format");
  cmd->add_option("recipe", args->recipe, "Recipe file (YAML)")->required();
  cmd->add_option("-o,--output", args->output, "Output directory (default: out)");
  cmd->add_option("--format", args->formats,
                  "Output format (qcow2, raw, vmdk, vhd, pxe), repeatable; default: the recipe's");
  cmd->add_option("--set", args->set, "Set a recipe variable (NAME=VALUE), repeatable");
  cmd->add_option("--cache", args->cache, "Cache directory (default: $KILN_CACHE or ~/.cache/kiln)");
  cmd->add_option("--sign", args->sign, "Sign the manifest with this Ed25519 private key");
  cmd->add_flag("--no-cache", args->no_cache, "Run every stage, ignoring cached layers");
  cmd->add_flag("--network", args->network, "Give the appliance a network for every step");
  cmd->add_flag("--allow-unpinned", args->allow_unpinned, "Accept remote inputs without sha256");
  cmd->add_flag("--json", args->json, "Print the result as JSON");
  cmd->add_flag("-v,--verbose", args->verbose, "Show appliance and tool messages");
  cmd->callback([args, &status] { status = do_build(*args); });
}

} // namespace kiln::cmd
