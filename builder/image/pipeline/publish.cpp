#include "image/pipeline/publish.hpp"

#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/sbom.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/parallel.hpp"
#include "core/util/runner.hpp"
#include "image/formats/outputs.hpp"
#include "image/formats/stable_ids.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/pipeline/ab_layout.hpp"
#include "image/pipeline/outputs_stamp.hpp"
#include "image/pipeline/phase_timer.hpp"

#include <cerrno>
#include <cstdio>

namespace kiln::build {

namespace fs = std::filesystem;

manifest::Manifest
manifest_base(const recipe::Recipe& recipe, const recipe::Plan& plan, const std::vector<manifest::Package>& packages,
              const std::string& name)
{
  manifest::Manifest m;
  m.name = name;
  m.version = recipe.version;
  m.kiln_version = KILN_VERSION;
  m.libguestfs_version = gfs::library_version();
  m.recipe_name = recipe.name;
  m.recipe_digest = plan.recipe_digest;
  for (const auto& in : plan.inputs) {
    // kiln-node: its VERSION line says what it is; the host path would not.
    m.inputs.push_back({in.kind, in.version.empty() ? in.source : in.version, in.sha256});
  }
  for (const auto* s : recipe::stages_in_order(plan)) {
    m.stages.push_back({s->name, s->key});
  }
  m.packages = packages;
  return m;
}

Published
publish(const recipe::Recipe& recipe, const recipe::Plan& plan, const Built& final, const BuildOptions& options)
{
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    throw Error(options.output_dir.string(), "cannot create the output directory: " + ec.message());
  }
  const std::vector<recipe::OutputFormat>& formats = options.formats.empty() ? recipe.outputs.formats : options.formats;
  const std::string stem = recipe.outputs.name;
  const std::optional<std::string> key = options.sign_key ? options.sign_key : recipe.signing_key;

  manifest::Manifest m = manifest_base(recipe, plan, final.meta.packages, stem);
  std::vector<std::string> format_names;
  for (const auto& format : formats) {
    format_names.push_back(recipe::format_name(format));
  }
  const std::string stamp_key = outputs_key(m, format_names, recipe.outputs.compress,
                                            key ? crypto::sha256_file(*key) : std::string(), options.source_date_epoch);
  if (!options.no_cache) {
    std::optional<OutputsStamp> stamp = read_stamp(options.output_dir, stem);
    if (stamp && up_to_date(*stamp, options.output_dir, stamp_key)) {
      Published out;
      out.up_to_date = true;
      out.manifest = manifest::manifest_path(options.output_dir, stem);
      for (const auto& f : manifest::read_manifest(out.manifest).files) {
        out.outputs.push_back({f.name, f.role, f.format, f.sha256, f.size});
      }
      say(options, "outputs: up to date in " + options.output_dir.string());
      return out;
    }
  }
  util::TempDir staging(options.output_dir, "." + stem + ".kiln-staging");

  formats::Source source;
  source.image = final.layer;
  if (final.meta.kernel) {
    source.kernel = final.meta.kernel->kernel;
    source.initramfs = final.meta.kernel->initramfs;
  }
  source.kernel_cmdline = "console=tty0 console=ttyS0,115200";
  source.layout = recipe.layout; // pxe of an A/B image is its installer
  if (plan.ab) {
    source.node_artifact = plan.ab->inputs.at(0).source; // the same kiln-node as slot A
  }
  if (recipe.trust) {
    source.trust_keys.assign(recipe.trust->keys.begin(), recipe.trust->keys.end());
    source.revoked = recipe.trust->revoked;
  }
  // The conversions are independent (each its own qemu-img over the same final layer,
  // then its digest): they run side by side, and their files go into the manifest in
  // the order of the formats, whatever order they finish in.
  LockedEvents locked(events(options));
  BuildOptions side_by_side = options;
  side_by_side.events = &locked;
  const bool bundle = final.meta.ab.has_value();
  std::vector<std::vector<manifest::File>> written(formats.size() + (bundle ? 1 : 0));
  util::parallel_for(written.size(), 0, [&](std::size_t i) {
    std::vector<formats::Written> files;
    if (i < formats.size()) {
      const std::string name = recipe::format_name(formats[i]);
      say(side_by_side, "output " + name);
      PhaseTimer timer(log_sink(side_by_side), "output " + name);
      files =
        formats::write_format(runner_of(options), formats[i], source, stem, staging.path(), recipe.outputs.compress);
      // The ids and times a container writer stamps, from the final layer's key instead.
      for (const auto& w : files) {
        formats::pin_output(staging.path() / w.name, w.format, final.meta.key, options.source_date_epoch);
      }
    } else {
      PhaseTimer timer(log_sink(side_by_side), "slot bundle");
      files = write_ab_bundle(*final.meta.ab, final.layer, stem, staging.path(), key);
    }
    for (const auto& w : files) {
      written[i].push_back(manifest::describe_file(staging.path() / w.name, w.role, w.format));
    }
  });
  for (auto& files : written) {
    m.files.insert(m.files.end(), files.begin(), files.end());
  }
  manifest::SbomOptions sbom;
  sbom.name = stem;
  sbom.digest = plan.recipe_digest;
  sbom.created = manifest::spdx_time(0); // reproducible: the SBOM describes content, not a moment
  sbom.kiln_version = KILN_VERSION;
  sbom.distro = final.meta.guest ? final.meta.guest->package_format : "rpm";
  m.sbom = manifest::make_sbom(m.packages, sbom);

  fs::path staged_manifest = manifest::manifest_path(staging.path(), stem);
  manifest::write_manifest(staged_manifest, m);
  std::vector<std::string> names;
  for (const auto& f : m.files) {
    names.push_back(f.name);
  }
  if (key) {
    std::string id = manifest::sign_manifest(staged_manifest, crypto::load_private_key(*key));
    say(options, "signed " + staged_manifest.filename().string() + " with key " + id.substr(0, 16));
    names.push_back(manifest::signature_path(staged_manifest).filename().string());
    names.push_back(manifest::raw_signature_path(staged_manifest).filename().string());
  }
  // The manifest goes last: a reader that sees it sees every file it names.
  names.push_back(staged_manifest.filename().string());
  for (const auto& name : names) {
    if (::rename((staging.path() / name).c_str(), (options.output_dir / name).c_str()) != 0) {
      throw Error((options.output_dir / name).string(), "cannot move output into place: " + errno_text(errno));
    }
  }
  util::fsync_dir(options.output_dir);
  write_stamp(options.output_dir, stem, stamp_key, names);
  Published out;
  out.manifest = options.output_dir / staged_manifest.filename();
  for (const auto& f : m.files) {
    out.outputs.push_back({f.name, f.role, f.format, f.sha256, f.size});
  }
  return out;
}

} // namespace kiln::build
