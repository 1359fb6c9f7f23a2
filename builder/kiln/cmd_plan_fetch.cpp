#include "kiln/commands.hpp"

#include "core/cli/report.hpp"
#include "core/fetch/cache.hpp"
#include "core/recipe/loader.hpp"
#include "core/recipe/plan.hpp"
#include "core/util/error.hpp"
#include "core/util/source_date_epoch.hpp"
#include "core/util/term.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>
#include <optional>

namespace kiln::cmd {

namespace {

struct PlanArgs {
  std::string recipe;
  bool json = false;
  std::vector<std::string> set;
  bool allow_unpinned = false;
};

struct FetchArgs {
  std::string url;
  std::vector<std::string> mirrors;
  std::string sha256;
  bool allow_unpinned = false;
  std::string cache;
  int retries = 3;
  int retry_delay_ms = 500;
  long stall_timeout = 60;
  std::uint64_t size = 0; // 0: not pinned
  std::uint64_t max_size = fetch::k_default_max_size;
  std::uint64_t min_rate = 1024;
  bool verify_cache = false;
  std::string ca_file;
  bool json = false;
};

struct CacheVerifyArgs {
  std::string cache;
  bool json = false;
};

int
do_plan(const PlanArgs& args)
{
  recipe::Recipe r = recipe::load_recipe(args.recipe, recipe_load_options(args.set, args.allow_unpinned));
  recipe::PlanOptions plan_options;
  plan_options.source_date_epoch = util::source_date_epoch_from_environment();
  recipe::Plan plan = recipe::make_plan(r, plan_options);
  if (args.json) {
    std::cout << recipe::plan_json(r, plan).dump(2) << "\n";
    return 0;
  }
  std::cout << "# recipe " << r.file << "\n";
  for (size_t i = 1; i < r.chain.size(); ++i) {
    std::cout << "#   extends " << r.chain[i] << "\n";
  }
  std::cout << "# digest " << plan.recipe_digest << "\n";
  std::cout << r.tree.to_yaml();
  std::cout << "\ninputs:\n";
  for (const auto& in : plan.inputs) {
    std::cout << "  " << in.kind << "  " << in.source << "  " << (in.sha256.empty() ? "(unpinned)" : in.sha256) << "\n";
  }
  std::cout << "\nstages:\n";
  std::cout << "  base  " << plan.base_key << "\n";
  for (const auto* s : recipe::stages_in_order(plan)) {
    std::cout << "  " << s->name << "  " << (s->key.empty() ? "(resolved at build)" : s->key) << "  (";
    if (s == &plan.finalize) {
      std::cout << "sysprep " << (r.sysprep ? "on" : "off") << ", trim " << (r.trim ? "on" : "off");
    } else if (s->name == "ab" && plan.ab) {
      std::cout << "kiln-node " << s->inputs.at(0).sha256;
    } else {
      std::cout << s->definition["steps"].size() << " steps";
    }
    std::cout << ")\n";
  }
  std::cout << "\noutputs: " << r.outputs.name << " [";
  for (size_t i = 0; i < r.outputs.formats.size(); ++i) {
    std::cout << (i ? ", " : "") << recipe::format_name(r.outputs.formats[i]);
  }
  std::cout << "]\n";
  return 0;
}

int
do_fetch(const FetchArgs& args)
{
  fetch::Cache cache(fetch::Cache::default_root(args.cache.empty() ? std::nullopt : std::optional(args.cache)));
  fetch::FetchOptions options;
  options.urls.push_back(args.url);
  options.urls.insert(options.urls.end(), args.mirrors.begin(), args.mirrors.end());
  if (!args.sha256.empty()) {
    options.sha256 = args.sha256;
  }
  options.allow_unpinned = args.allow_unpinned;
  options.attempts = args.retries + 1;
  options.backoff = std::chrono::milliseconds(args.retry_delay_ms);
  options.stall_timeout_s = args.stall_timeout;
  if (args.size > 0) {
    options.size = args.size;
  }
  options.max_size = args.max_size;
  options.min_rate = args.min_rate;
  options.verify_hits = args.verify_cache;
  options.ca_file = args.ca_file;
  util::ProgressLine progress("fetch " + args.url, !args.json);
  options.progress = [&](std::uint64_t done, std::uint64_t total) { progress.update(done, total); };
  options.notice = [&](const std::string& line) {
    progress.finish();
    cli::note(k_prog, line);
  };
  fetch::FetchResult result = cache.fetch(options);
  progress.finish();
  if (args.json) {
    nlohmann::json j = {{"path", result.path.string()},
                        {"sha256", result.sha256},
                        {"size", result.size},
                        {"cache_hit", result.cache_hit},
                        {"url", result.url}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << result.path.string() << "\n";
  }
  return 0;
}

int
do_cache_verify(const CacheVerifyArgs& args)
{
  fetch::Cache cache(fetch::Cache::default_root(args.cache.empty() ? std::nullopt : std::optional(args.cache)));
  fetch::Cache::VerifyReport report = cache.verify_all();
  if (args.json) {
    nlohmann::json removed = nlohmann::json::array();
    for (const auto& p : report.removed) {
      removed.push_back(p.string());
    }
    std::cout << nlohmann::json{{"checked", report.checked}, {"removed", removed}}.dump() << "\n";
  } else {
    for (const auto& p : report.removed) {
      std::cout << "removed corrupt blob " << p.string() << "\n";
    }
    std::cout << report.checked << " blob(s) checked, " << report.removed.size() << " corrupt\n";
  }
  return report.removed.empty() ? 0 : 1;
}

} // namespace

recipe::LoadOptions
recipe_load_options(const std::vector<std::string>& set, bool allow_unpinned)
{
  recipe::LoadOptions options;
  for (const auto& assignment : set) {
    auto [name, value] = recipe::parse_assignment(assignment);
    options.set.insert_or_assign(name, value);
  }
  options.allow_unpinned = allow_unpinned;
  return options;
}

void
add_plan_command(CLI::App& app, int& status)
{
  auto args = std::make_shared<PlanArgs>();
  auto* cmd =
    app.add_subcommand("plan", "Print the resolved recipe, its inputs and its stages (no network, no images)");
  cmd->add_option("recipe", args->recipe, "Recipe file (YAML)")->required();
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->add_option("--set", args->set, "Set a recipe variable (NAME=VALUE), repeatable");
  cmd->add_flag("--allow-unpinned", args->allow_unpinned, "Accept remote inputs without sha256");
  cmd->callback([args, &status] { status = do_plan(*args); });
}

void
add_fetch_command(CLI::App& app, int& status)
{
  auto args = std::make_shared<FetchArgs>();
  auto* cmd = app.add_subcommand("fetch", "Download a file into the content-addressed cache and print its path");
  cmd->add_option("url", args->url, "URL (http, https or file)")->required();
  cmd->add_option("--sha256", args->sha256, "Expected sha256 (hex); required unless --allow-unpinned");
  cmd->add_option("--mirror", args->mirrors, "Another URL of the same file, tried in order, repeatable");
  cmd->add_flag("--allow-unpinned", args->allow_unpinned, "Accept a download without a pinned digest");
  cmd->add_option("--cache", args->cache, "Cache directory (default: $KILN_CACHE or ~/.cache/kiln)");
  cmd->add_option("--retries", args->retries, "Retries per URL for transient failures")->check(CLI::Range(0, 100));
  cmd->add_option("--retry-delay", args->retry_delay_ms, "First retry delay in ms, doubled each time")
    ->check(CLI::Range(0, 600000));
  cmd->add_option("--stall-timeout", args->stall_timeout, "Abort a transfer idle this many seconds")
    ->check(CLI::Range(1, 86400));
  cmd->add_option("--size", args->size, "Expected size in bytes; another size is refused")
    ->check(CLI::Range(std::uint64_t{1}, UINT64_MAX));
  cmd->add_option("--max-size", args->max_size, "Refuse a download larger than this (default 64 GiB; K, M, G suffixes)")
    ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--min-rate", args->min_rate, "Abort an attempt slower than this many bytes/s over --stall-timeout")
    ->check(CLI::Range(std::uint64_t{1}, UINT64_MAX));
  cmd->add_flag("--verify-cache", args->verify_cache, "Rehash a cached blob before using it (shared caches)");
  cmd->add_option("--ca-file", args->ca_file, "Trust the CAs in this PEM file instead of the system's")
    ->check(CLI::ExistingFile);
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->callback([args, &status] { status = do_fetch(*args); });
}

void
add_cache_command(CLI::App& app, int& status)
{
  auto* cache = app.add_subcommand("cache", "Maintain the download cache");
  cache->require_subcommand(1);
  auto args = std::make_shared<CacheVerifyArgs>();
  auto* cmd = cache->add_subcommand("verify", "Rehash every cached blob; remove and list the corrupt ones (exit 1)");
  cmd->add_option("--cache", args->cache, "Cache directory (default: $KILN_CACHE or ~/.cache/kiln)");
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->callback([args, &status] { status = do_cache_verify(*args); });
}

} // namespace kiln::cmd
