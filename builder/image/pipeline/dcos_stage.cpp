#include "image/pipeline/dcos_stage.hpp"

#include "core/dcos/bundle.hpp"
#include "core/dcos/checks.hpp"
#include "core/dcos/firstboot.hpp"
#include "core/slots/abi.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/steps/units.hpp"
#include "image/verify/guestfs_view.hpp"

#include <set>

namespace kiln::build::dcos_stage {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One file of the serve tree at URL/rel, through the cache (unpinned: the bundle's
// digest is computed from what arrived), linked into the local tree under rel.
void
fetch_file(fetch::Cache& cache, const std::string& url, const std::string& rel, const fs::path& tree,
           const BuildOptions& options)
{
  fetch::FetchOptions f;
  f.urls = {url + "/" + rel};
  f.allow_unpinned = true;
  f.progress = progress_sink(options);
  fetch::FetchResult got = cache.fetch(f);
  fs::path local = tree / rel;
  fs::create_directories(local.parent_path());
  std::error_code ec;
  fs::remove(local, ec);
  fs::create_symlink(got.path, local);
}

// Fetches what validate_bundle reads, in the order the ids become known.
void
fetch_tree(fetch::Cache& cache, const std::string& base, const fs::path& tree, const BuildOptions& options)
{
  std::string url = base;
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  for (const char* rel : {"bootstrap.latest", "cluster-package-list.latest", "dcos_install.sh"}) {
    fetch_file(cache, url, rel, tree, options);
  }
  std::string boot_id = dcos::parse_id(util::read_file(tree / "bootstrap.latest"), url + "/bootstrap.latest");
  std::string list_id =
    dcos::parse_id(util::read_file(tree / "cluster-package-list.latest"), url + "/cluster-package-list.latest");
  fetch_file(cache, url, dcos::bootstrap_path(boot_id), tree, options);
  std::string list = dcos::package_list_path(list_id);
  fetch_file(cache, url, list, tree, options);
  std::vector<std::string> ids = dcos::parse_package_list(util::read_file(tree / list), url + "/" + list);
  say(options, "dcos: fetching " + std::to_string(ids.size()) + " packages from " + url);
  for (const auto& id : ids) {
    fetch_file(cache, url, dcos::package_path(id, url + "/" + list), tree, options);
  }
}

} // namespace

recipe::Resolution
prepare(const recipe::Recipe& recipe, const recipe::Plan& planned, fetch::Cache& cache, const fs::path& scratch,
        const BuildOptions& options)
{
  const recipe::DcosSpec& spec = *recipe.dcos;
  fs::path dir = spec.bundle;
  if (dcos::is_url(spec.bundle)) {
    dir = scratch / "dcos-serve";
    fetch_tree(cache, spec.bundle, dir, options);
  }
  say(options, "dcos: validating the bundle " + spec.bundle);
  dcos::Bundle b = dcos::validate_bundle(dir, spec.bundle);

  // The plan's "dcos" stage is the last; its key (and those after it) follow from the
  // bundle's digest (recipe::resolve_plan). A local bundle's was known when planning.
  if (planned.stages.empty() || planned.stages.back().name != "dcos") {
    throw Error("dcos", "the plan has no dcos stage (internal error)");
  }
  const std::string& planned_digest = planned.stages.back().inputs.at(0).sha256;
  if (!planned_digest.empty() && planned_digest != b.digest) {
    throw Error(spec.bundle, "the bundle changed since the build was planned");
  }
  json files = json::array();
  for (const auto& f : b.files) {
    files.push_back({{"path", f.path}, {"sha256", f.sha256}, {"size", f.size}});
  }
  util::write_file_atomic(scratch / "dcos-bundle.json", json{{"dir", dir.string()},
                                                             {"bootstrap_id", b.bootstrap_id},
                                                             {"package_list_id", b.package_list_id},
                                                             {"digest", b.digest},
                                                             {"files", files}}
                                                          .dump(2));
  say(options, "dcos: bundle ok: bootstrap " + b.bootstrap_id.substr(0, 12) + ", " + std::to_string(b.packages.size()) +
                 " packages (" + b.digest.substr(0, 12) + ")");
  return {b.digest};
}

void
run(steps::StepContext& ctx, const recipe::Recipe& recipe, const fs::path& scratch)
{
  edit::Editor& g = ctx.g;
  json bundle = json::parse(util::read_file(scratch / "dcos-bundle.json"));
  const fs::path dir = bundle["dir"].get<std::string>();
  const std::string target = std::string(slots::k_dcos_install_dir);
  // The installer refuses a node with DC/OS on it; so does this stage, early.
  for (const char* p :
       {"/etc/mesosphere", "/etc/systemd/system/dcos.target", "/etc/systemd/system/dcos.target.wants"}) {
    if (g.exists(p)) {
      throw Error("dcos stage",
                  std::string("the image already has ") + p + " (a DC/OS install); the installer would refuse it");
    }
  }
  if (g.exists(target)) {
    g.rm_rf(target);
  }
  std::set<std::string> dirs;
  for (const auto& f : bundle["files"]) {
    fs::path rel = f["path"].get<std::string>();
    std::string parent = target + "/" + rel.parent_path().string();
    if (dirs.insert(parent).second) {
      g.mkdir_p(parent);
    }
    std::string remote = target + "/" + rel.string();
    g.upload(fs::canonical(dir / rel).string(), remote);
    g.chmod(rel == "dcos_install.sh" ? 0755 : 0644, remote);
    g.chown(0, 0, remote);
  }
  g.mkdir_p(fs::path(slots::k_dcos_role_file).parent_path().string());
  g.write(std::string(slots::k_dcos_role_file), std::string(dcos::role_name(recipe.dcos->role)) + "\n");
  g.mkdir_p(fs::path(dcos::k_firstboot_script).parent_path().string());
  g.write(dcos::k_firstboot_script, dcos::firstboot_script(recipe.dcos->role));
  g.chmod(0755, dcos::k_firstboot_script);
  const std::string unit = "/etc/systemd/system/" + std::string(slots::k_dcos_unit);
  g.write(unit, dcos::firstboot_unit());
  g.chmod(0644, unit);
  g.mkdir_p(fs::path(slots::k_dcos_log).parent_path().string());
  g.mkdir_p(fs::path(slots::k_dcos_stamp).parent_path().string());
  steps::enable_unit(g, std::string(slots::k_dcos_unit));
}

json
verify(gfs::Handle& g, const steps::GuestInfo& guest, const recipe::Recipe& recipe, const BuildOptions& options)
{
  verify::GuestfsView view(g, guest.mounts, guest.package_format, recipe.name);
  std::vector<dcos::CheckResult> results = dcos::run_checks(view, {recipe.dcos->role, recipe.dcos->version});
  std::string failed;
  for (const auto& r : results) {
    say(options, "  " + dcos::format_line(r));
    if (!r.pass) {
      failed += (failed.empty() ? "" : "; ") + r.name + ": " + r.detail;
    }
  }
  if (!failed.empty()) {
    throw Error("kiln verify (role " + std::string(dcos::role_name(recipe.dcos->role)) + ")", failed);
  }
  return dcos::to_json(results);
}

} // namespace kiln::build::dcos_stage
