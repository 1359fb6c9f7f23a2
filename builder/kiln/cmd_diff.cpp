// kiln diff A B [--json] [--manifests-only] [-v]: why two builds disagree. A and B are two
// manifests (NAME.manifest.json) or two image files. Manifests: which fields, stage keys,
// inputs, packages and output files differ; then, unless --manifests-only, the file trees
// of the disk images they list (beside them). Images: the file trees. Exit status 0 when
// nothing differs, 1 when something does, 2 for bad input, as diff(1) does.
#include "core/archive/tree.hpp"
#include "core/cli/report.hpp"
#include "core/fetch/cache.hpp"
#include "core/manifest/diff.hpp"
#include "core/manifest/manifest.hpp"
#include "core/util/error.hpp"
#include "image/guestfs/accel_probe.hpp"
#include "image/pipeline/scratch.hpp"
#include "image/verify/image_tree.hpp"
#include "kiln/commands.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace kiln::cmd {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DiffArgs {
  std::string a;
  std::string b;
  std::string cache;
  bool json = false;
  bool manifests_only = false;
  bool verbose = false;
};

bool
is_manifest(const std::string& path)
{
  const std::string suffix = ".manifest.json";
  return path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The disk image a manifest lists (beside it): raw before qcow2, vmdk and vhd, which all
// hold the same tree; none for a manifest without one.
std::optional<fs::path>
image_of(const manifest::Manifest& m, const fs::path& manifest_file)
{
  for (const char* format : {"raw", "qcow2", "vmdk", "vhd"}) {
    for (const auto& f : m.files) {
      if (f.role == "image" && f.format == format) {
        return manifest_file.parent_path() / f.name;
      }
    }
  }
  return std::nullopt;
}

std::string
side(const std::string& v)
{
  return v.empty() ? "(none)" : v;
}

int
do_diff(const DiffArgs& args)
{
  if (is_manifest(args.a) != is_manifest(args.b)) {
    throw UsageError("diff", "give two manifests (NAME.manifest.json) or two images, not one of each");
  }
  std::vector<manifest::Difference> fields;
  std::vector<fs::path> images;
  if (is_manifest(args.a)) {
    manifest::Manifest a = manifest::read_manifest(args.a);
    manifest::Manifest b = manifest::read_manifest(args.b);
    fields = manifest::diff_manifests(a, b);
    if (!args.manifests_only) {
      std::optional<fs::path> ia = image_of(a, args.a);
      std::optional<fs::path> ib = image_of(b, args.b);
      if (ia && ib) {
        images = {*ia, *ib};
      } else {
        cli::note(k_prog, "no disk image listed in " + (ia ? args.b : args.a) + ": file trees not compared");
      }
    }
  } else {
    images = {args.a, args.b};
  }

  std::vector<archive::TreeDifference> files;
  if (!images.empty()) {
    const fs::path root =
      fetch::Cache::default_root(args.cache.empty() ? std::nullopt : std::optional<std::string>(args.cache));
    gfs::set_accel_state_dir(root / "accel");
    fs::create_directories(root / "tmp");
    build::ScratchDir scratch(root / "tmp");
    verify::ImageTreeOptions options;
    options.scratch = scratch.path();
    if (args.verbose) {
      options.log = [](const std::string& line) { std::cerr << "  | " << line << "\n"; };
    }
    std::vector<archive::Tree> trees = verify::image_trees(images, options);
    files = archive::diff_trees(trees.at(0), trees.at(1));
  }

  if (args.json) {
    json out = {{"identical", fields.empty() && files.empty()},
                {"manifest", json::array()},
                {"files", json::array()},
                {"images", images.empty() ? json(nullptr) : json::array({images[0].string(), images[1].string()})}};
    for (const auto& d : fields) {
      out["manifest"].push_back(manifest::to_json(d));
    }
    for (const auto& d : files) {
      out["files"].push_back({{"path", d.path}, {"aspect", d.aspect}, {"a", d.a}, {"b", d.b}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& d : fields) {
      std::cout << d.section << " " << d.name << ": " << side(d.a) << " -> " << side(d.b) << "\n";
    }
    for (const auto& d : files) {
      std::cout << d.path << ": " << d.aspect;
      if (d.aspect.rfind("only in", 0) != 0) {
        std::cout << ": " << side(d.a) << " -> " << side(d.b);
      }
      std::cout << "\n";
    }
  }
  if (fields.empty() && files.empty()) {
    cli::note(k_prog, args.a + " and " + args.b + ": no difference" +
                        (images.empty() ? " (manifests only)" : " (manifests and file trees)"));
    return 0;
  }
  std::string counts = is_manifest(args.a) ? std::to_string(fields.size()) + " in the manifests" : "";
  if (!images.empty()) {
    counts += (counts.empty() ? "" : ", ") + std::to_string(files.size()) + " in the file trees" +
              (files.empty() ? "" : " (first: " + files.front().path + ")");
  }
  cli::note(k_prog, args.a + " and " + args.b + " differ: " + counts);
  return 1;
}

} // namespace

void
add_diff_command(CLI::App& app, int& status)
{
  auto args = std::make_shared<DiffArgs>();
  auto* cmd = app.add_subcommand("diff", "Say why two builds differ: their manifests, and their images' file trees");
  cmd->add_option("a", args->a, "A manifest (NAME.manifest.json) or an image file")->required();
  cmd->add_option("b", args->b, "The other, of the same kind")->required();
  cmd->add_flag("--manifests-only", args->manifests_only, "Compare the manifests, not the images they list");
  cmd->add_option("--cache", args->cache, "Cache directory, for scratch space (default: $KILN_CACHE or ~/.cache/kiln)");
  cmd->add_flag("--json", args->json, "Print the differences as JSON");
  cmd->add_flag("-v,--verbose", args->verbose, "Show appliance messages");
  cmd->callback([args, &status] {
    try {
      status = do_diff(*args);
    } catch (const Error& e) {
      // 1 means "they differ": trouble is 2, as for diff(1).
      throw Error(e.subject(), e.reason(), e.exit_code() == k_exit_failure ? k_exit_usage : e.exit_code());
    }
  });
}

} // namespace kiln::cmd
