#include "image/pipeline/builder.hpp"

#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/manifest/manifest.hpp"
#include "core/manifest/sbom.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"
#include "image/pipeline/ab_layout.hpp"
#include "image/pipeline/phase_timer.hpp"
#include "image/pipeline/dcos_stage.hpp"
#include "image/pipeline/layer_store.hpp"
#include "image/formats/outputs.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/guestfs/guestfs_editor.hpp"
#include "image/steps/finalize.hpp"
#include "image/steps/steps.hpp"

#include <algorithm>
#include <sstream>
#include <cerrno>
#include <cstdio>
#include <unistd.h>

namespace kiln::build {

namespace fs = std::filesystem;
using nlohmann::json;
using steps::GuestInfo;

std::function<void(const std::string&)>
notice_sink(const BuildOptions& options)
{
  return options.notice ? options.notice : options.log;
}

namespace {

// ext4 features CentOS 7's kernel, e2fsck and GRUB understand (mkfs.ext4 on Debian 12
// turns on newer ones by default).
const char* const k_compatible_ext4 = "^metadata_csum,^metadata_csum_seed,^orphan_file,^64bit";

void
say(const BuildOptions& options, const std::string& line)
{
  if (options.status) {
    options.status(line);
  }
}

struct Layer {
  fs::path image;
  std::string format = "qcow2";
};

void
qemu_img(const std::vector<std::string>& args)
{
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  util::RunResult r = util::run(argv);
  if (!r.ok()) {
    throw Error("qemu-img " + args.front(), r.tail(3));
  }
}

gfs::HandleOptions
handle_options(const BuildOptions& options, bool network)
{
  gfs::HandleOptions h;
  h.network = network;
  h.log = options.log;
  h.notice = notice_sink(options);
  h.progress = options.progress;
  return h;
}

// Makes the base disk from a root filesystem tar: one partition, ext4 with features
// an EL7 kernel mounts, labelled "root", and an fstab that mounts it by label.
void
disk_from_tar(const fs::path& tar, const fs::path& out, std::uint64_t size, const BuildOptions& options, Built& built)
{
  util::AtomicFile file(out);
  qemu_img({"create", "-q", "-f", "qcow2", file.temp_path().string(), std::to_string(size)});
  gfs::Handle g(handle_options(options, false));
  g.add_drive(file.temp_path().string(), "qcow2");
  say(options, "base: making a " + util::human_bytes(size) + " disk from " + tar.filename().string());
  PhaseTimer timer(options.log, "base disk");
  g.launch();
  ++built.launches;
  std::string device = g.list_devices().at(0);
  g.part_disk(device, "mbr");
  std::string part = g.list_partitions().at(0);
  gfs::MkfsOptions mkfs;
  mkfs.label = "root";
  mkfs.features = k_compatible_ext4;
  g.mkfs("ext4", part, mkfs);
  g.mount(part, "/");
  g.tar_in(tar.string(), "/");
  g.write("/etc/fstab", "LABEL=root / ext4 defaults 0 1\n");
  g.umount_all();
  g.shutdown();
  file.commit();
}

fs::path
bootstrap_tar(const recipe::BaseImage& base, const std::string& key, fetch::Cache& cache, const BuildOptions& options)
{
  fs::path tar = cache.area("bootstrap") / (key + ".tar");
  if (fs::is_regular_file(tar)) {
    return tar;
  }
  util::FileLock lock(cache.area("locks") / (key + ".bootstrap.lock"));
  if (fs::is_regular_file(tar)) {
    return tar;
  }
  util::AtomicFile out(tar);
  std::vector<std::string> argv{"mmdebstrap", "--quiet", "--variant=" + base.variant, "--format=tar"};
  if (!base.packages.empty()) {
    std::string include;
    for (const auto& p : base.packages) {
      include += (include.empty() ? "" : ",") + p;
    }
    argv.push_back("--include=" + include);
  }
  argv.push_back(base.suite);
  argv.push_back(out.temp_path().string());
  if (!base.mirror.empty()) {
    argv.push_back(base.mirror);
  }
  say(options, "base: mmdebstrap " + base.suite + " (" + base.variant + ", " + std::to_string(base.packages.size()) +
                 " extra packages)");
  util::RunResult r;
  {
    PhaseTimer timer(options.log, "mmdebstrap");
    r = util::run(argv);
  }
  if (!r.ok()) {
    throw Error("mmdebstrap " + base.suite, "exit status " + std::to_string(r.exit_code) + ": " + r.tail(5));
  }
  out.commit();
  return tar;
}

Layer
resolve_base(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache, const LayerStore& layers,
             const BuildOptions& options, Built& built)
{
  const recipe::BaseImage& base = recipe.base;
  if (base.kind == recipe::BaseImage::Kind::url) {
    fetch::FetchOptions fetch_options;
    fetch_options.urls = base.urls;
    fetch_options.sha256 = base.sha256;
    fetch_options.size = base.size;
    fetch_options.allow_unpinned = !base.sha256.has_value();
    fetch_options.progress = options.progress;
    say(options, "base: " + base.urls.front());
    fetch::FetchResult fetched = cache.fetch(fetch_options);
    return {fetched.path, base.format};
  }
  if (base.kind == recipe::BaseImage::Kind::path && base.format != "tar") {
    // A copy in the cache: layers must never be backed by a file someone may change.
    return {cache.insert_file(base.path, plan.inputs.front().sha256), base.format};
  }
  fs::path disk = layers.image(plan.base_key);
  // Builds of different recipes on one base run side by side: one makes the base disk.
  util::FileLock base_lock(cache.area("locks") / (plan.base_key.substr(0, 16) + ".base.lock"));
  if (layers.has(plan.base_key)) {
    say(options, "base: cached");
    return {disk, "qcow2"};
  }
  fs::path tar = base.kind == recipe::BaseImage::Kind::path ? fs::path(base.path)
                                                            : bootstrap_tar(base, plan.base_key, cache, options);
  std::uint64_t size = recipe.size != 0 ? recipe.size : (4ull << 30);
  disk_from_tar(tar, disk, size, options, built);
  LayerMeta meta;
  meta.key = plan.base_key;
  meta.name = "base";
  meta.source = tar.filename().string();
  layers.write(meta);
  return {disk, "qcow2"};
}

GuestInfo
inspect(gfs::Handle& g)
{
  std::vector<std::string> roots = g.inspect_os();
  if (roots.size() != 1) {
    throw Error("image", roots.empty() ? "no operating system found in the base image"
                                       : "more than one operating system in the base image");
  }
  GuestInfo info;
  info.root = roots.front();
  info.distro = g.inspect_get_distro(info.root);
  info.package_format = g.inspect_get_package_format(info.root);
  info.package_manager = g.inspect_get_package_management(info.root);
  info.major_version = g.inspect_get_major_version(info.root);
  return info;
}

std::vector<manifest::Package>
package_inventory(gfs::Handle& g, const GuestInfo& guest)
{
  std::string script = guest.package_format == "rpm"
                         ? "rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\n'"
                         : "dpkg-query -W -f='${Package}\\t${Version}\\t${Architecture}\\n'";
  gfs::CommandResult r = g.sh(script);
  if (r.exit_code != 0) {
    throw Error("package inventory", "cannot read the " + guest.package_format + " database: " + r.err);
  }
  std::vector<manifest::Package> packages;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    auto t1 = line.find('\t');
    auto t2 = line.find('\t', t1 + 1);
    if (t1 == std::string::npos || t2 == std::string::npos) {
      continue;
    }
    packages.push_back({line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)});
  }
  std::sort(packages.begin(), packages.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return packages;
}

// Newest kernel and its initramfs under /boot, copied into the cache beside the layer.
std::optional<KernelFiles>
extract_kernel(gfs::Handle& g, const LayerStore& layers, const std::string& key)
{
  std::vector<std::string> kernels = g.glob("/boot/vmlinuz-*");
  std::erase_if(kernels, [](const std::string& k) { return k.find("rescue") != std::string::npos; });
  if (kernels.empty()) {
    return std::nullopt;
  }
  std::sort(kernels.begin(), kernels.end());
  std::string kernel = kernels.back();
  std::string version = kernel.substr(std::string("/boot/vmlinuz-").size());
  std::string initrd;
  for (const auto& candidate : {"/boot/initramfs-" + version + ".img", "/boot/initrd.img-" + version}) {
    if (g.is_file(candidate)) {
      initrd = candidate;
    }
  }
  if (initrd.empty()) {
    return std::nullopt;
  }
  KernelFiles out{version, layers.file(key, ".kernel"), layers.file(key, ".initramfs")};
  for (auto [local, remote] : {std::pair{out.kernel, kernel}, std::pair{out.initramfs, initrd}}) {
    util::AtomicFile file(local);
    g.download(remote, file.temp_path().string());
    file.commit();
  }
  return out;
}

// Copies the working overlay into the cache as the layer for `key` (the guest's
// filesystems are unmounted, so everything it wrote has been flushed to the file).
void
snapshot(const fs::path& working, const fs::path& target)
{
  util::AtomicFile out(target);
  util::RunResult r = util::run({"cp", "--sparse=always", working.string(), out.temp_path().string()});
  if (!r.ok()) {
    throw Error(target.string(), "cannot copy the stage layer: " + r.tail(2));
  }
  out.commit();
}

std::string
short_key(const std::string& key)
{
  return key.substr(0, 12);
}

} // namespace

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
  for (const auto& s : plan.stages) {
    m.stages.push_back({s.name, s.key});
  }
  m.stages.push_back({"finalize", finalize_key(recipe, plan)});
  m.packages = packages;
  return m;
}

namespace {

// Writes every output format into a staging directory inside the output directory,
// then the manifest (and its signature), then moves them into place. A failure before
// the moves leaves the output directory as it was.
void
write_outputs(const recipe::Recipe& recipe, const recipe::Plan& plan, const Built& final, const BuildOptions& options,
              BuildResult& result)
{
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    throw Error(options.output_dir.string(), "cannot create the output directory: " + ec.message());
  }
  const std::vector<std::string>& formats = options.formats.empty() ? recipe.outputs.formats : options.formats;
  const std::string stem = recipe.outputs.name;
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

  manifest::Manifest m = manifest_base(recipe, plan, final.meta.packages, stem);
  for (const auto& format : formats) {
    say(options, "output " + format);
    PhaseTimer timer(options.log, "output " + format);
    for (const auto& w :
         formats::write_format(util::system_runner(), format, source, stem, staging.path(), recipe.outputs.compress)) {
      m.files.push_back(manifest::describe_file(staging.path() / w.name, w.role, w.format));
    }
  }
  if (final.meta.ab) {
    PhaseTimer timer(options.log, "slot bundle");
    m.stages.push_back({"ab", ab_key(recipe, plan)});
    for (const auto& w : write_ab_bundle(*final.meta.ab, final.layer, stem, staging.path(),
                                         options.sign_key ? options.sign_key : recipe.signing_key)) {
      m.files.push_back(manifest::describe_file(staging.path() / w.name, w.role, w.format));
    }
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
  std::optional<std::string> key = options.sign_key ? options.sign_key : recipe.signing_key;
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
  result.manifest = options.output_dir / staged_manifest.filename();
  for (const auto& f : m.files) {
    result.outputs.push_back({f.name, f.role, f.format, f.sha256, f.size});
  }
}

// The build's scratch directory (see build()): its lock file first, then the directory.
class ScratchDir {
public:
  explicit ScratchDir(const fs::path& tmp) : m_alive(lock_new(tmp, m_path)) {}
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir()
  {
    std::error_code ec; // a leftover is removed by the next build
    fs::remove_all(m_path, ec);
    fs::remove(m_path.string() + ".alive", ec);
  }
  const fs::path& path() const { return m_path; }

private:
  static util::FileLock lock_new(const fs::path& tmp, fs::path& path)
  {
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string templ = (tmp / "build.XXXXXX.alive").string();
      int fd = ::mkstemps(templ.data(), 6);
      if (fd < 0) {
        throw Error(tmp.string(), "cannot create a scratch lock: " + errno_text(errno));
      }
      ::close(fd);
      std::optional<util::FileLock> lock = util::FileLock::try_acquire(templ);
      path = templ.substr(0, templ.size() - 6);
      std::error_code ec;
      if (lock && fs::create_directory(path, ec)) {
        return std::move(*lock);
      }
      fs::remove(templ, ec);
    }
    throw Error(tmp.string(), "cannot create a scratch directory");
  }
  fs::path m_path; // set by lock_new before m_alive is initialised
  util::FileLock m_alive;
};

} // namespace

// Runs the recipe's stages, the dcos stage and finalize on top of the deepest cached
// layer, in one appliance launch (defined below).
Built build_layers(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache,
                   const LayerStore& layers, const BuildOptions& options, const fs::path& scratch);

BuildResult
build(const recipe::Recipe& recipe, const recipe::Plan& given_plan, fetch::Cache& cache, const BuildOptions& options)
{
  // One build of the same stages at a time: two builds of one recipe would otherwise both
  // run its stages; the second now finds them cached. Builds of other recipes share the
  // cache at the same time (layers and blobs appear by rename, complete or not at all).
  const std::string chain_key = given_plan.stages.empty() ? given_plan.base_key : given_plan.stages.back().key;
  util::FileLock lock(cache.area("locks") / ("build-" + chain_key.substr(0, 16) + ".lock"));
  // Every scratch directory tmp/build.X has a lock file tmp/build.X.alive, made and locked
  // before the directory and held while its build lives. A directory whose lock file is
  // missing or can be locked belongs to a build that died (SIGKILL, power cut): nothing
  // in it was ever trusted, so it goes.
  for (const auto& entry : fs::directory_iterator(cache.area("tmp"))) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("build.", 0) != 0 || entry.path().extension() == ".alive") {
      continue;
    }
    fs::path alive_file = entry.path().string() + ".alive";
    std::error_code ec;
    if (fs::exists(alive_file, ec) && !util::FileLock::try_acquire(alive_file)) {
      continue;
    }
    fs::remove_all(entry.path(), ec);
    fs::remove(alive_file, ec);
  }
  ScratchDir scratch(cache.area("tmp"));
  // Remote inputs are resolved into the plan before any image is touched: the DC/OS
  // bundle is fetched and validated, and its digest fixes the dcos stage's key.
  const recipe::Plan plan =
    recipe.dcos ? dcos_stage::prepare(recipe, given_plan, cache, scratch.path(), options) : given_plan;
  // --no-cache builds every layer in the scratch directory and publishes none: the
  // cache's layers stay as they are (other layers are backed by them).
  const LayerStore layers(options.no_cache ? scratch.path() : cache.area("layers"));
  Built final = build_layers(recipe, plan, cache, layers, options, scratch.path());
  BuildResult result;
  result.launches = final.launches;
  result.reused = final.reused;
  result.built = final.built;
  if (recipe.layout == "ab") {
    Built ab = make_ab_layer(recipe, plan, layers, options, scratch.path(), final);
    result.launches += ab.launches;
    result.reused.insert(result.reused.end(), ab.reused.begin(), ab.reused.end());
    result.built.insert(result.built.end(), ab.built.begin(), ab.built.end());
    final = std::move(ab);
  }
  result.packages = json::array();
  for (const auto& p : final.meta.packages) {
    result.packages.push_back({{"name", p.name}, {"version", p.version}, {"arch", p.arch}});
  }
  write_outputs(recipe, plan, final, options, result);
  return result;
}

Built
build_layers(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache, const LayerStore& layers,
             const BuildOptions& options, const fs::path& scratch)
{
  Built result;
  struct Pending {
    std::string name;
    std::string key;
    const recipe::Stage* stage; // nullptr for finalize
    bool dcos = false; // the implicit dcos stage (dcos_stage.cpp)
  };
  std::vector<Pending> stages;
  for (size_t i = 0; i < recipe.stages.size(); ++i) {
    stages.push_back({recipe.stages[i].name, plan.stages[i].key, &recipe.stages[i]});
  }
  if (recipe.dcos) {
    stages.push_back({"dcos", plan.stages.back().key, nullptr, true});
  }
  stages.push_back({"finalize", finalize_key(recipe, plan), nullptr});

  // The deepest stage already cached; everything after it runs.
  size_t first = 0;
  if (!options.no_cache) {
    for (size_t i = stages.size(); i > 0; --i) {
      if (layers.has(stages[i - 1].key)) {
        first = i;
        break;
      }
    }
  }
  for (size_t i = 0; i < first; ++i) {
    result.reused.push_back(stages[i].name);
    say(options, "stage " + stages[i].name + ": cached (" + short_key(stages[i].key) + ")");
  }
  result.layer = layers.image(stages.back().key);
  if (first == stages.size()) {
    result.meta = layers.read(stages.back().key);
    return result;
  }

  Layer parent = first == 0 ? resolve_base(recipe, plan, cache, layers, options, result)
                            : Layer{layers.image(stages[first - 1].key), "qcow2"};
  fs::path working = scratch / "working.qcow2";
  qemu_img(
    {"create", "-q", "-f", "qcow2", "-b", fs::absolute(parent.image).string(), "-F", parent.format, working.string()});

  bool network = options.network || recipe.network;
  for (size_t i = first; i < stages.size(); ++i) {
    if (stages[i].stage != nullptr) {
      for (const auto& step : stages[i].stage->steps) {
        if (const auto* p = std::get_if<recipe::PackagesStep>(&step.spec); p != nullptr && p->network) {
          network = true;
        }
      }
    }
  }
  gfs::Handle g(handle_options(options, network));
  g.add_drive(working.string(), "qcow2");
  say(options, "appliance: launching (" +
                 std::string(gfs::probe_acceleration().accel == gfs::Accel::kvm ? "kvm" : "software emulation") + ")");
  {
    PhaseTimer timer(options.log, "launch");
    g.launch();
  }
  ++result.launches;
  GuestInfo guest = inspect(g);
  g.mount_os(guest.root);
  gfs::GuestfsEditor editor(g);
  steps::StepContext ctx{editor, guest, network, notice_sink(options)};

  for (size_t i = first; i < stages.size(); ++i) {
    const Pending& p = stages[i];
    LayerMeta meta;
    meta.key = p.key;
    meta.name = p.name;
    meta.recipe = recipe.name;
    meta.guest = GuestFacts{guest.distro, guest.package_format, guest.package_manager, guest.major_version};
    if (p.stage != nullptr) {
      say(options, "stage " + p.name + ": running " + std::to_string(p.stage->steps.size()) + " steps (" +
                     short_key(p.key) + ")");
      PhaseTimer timer(options.log, "stage " + p.name + " steps");
      for (size_t s = 0; s < p.stage->steps.size(); ++s) {
        util::check_interrupted();
        const auto& step = p.stage->steps[s];
        say(options, "  [" + std::to_string(s + 1) + "/" + std::to_string(p.stage->steps.size()) + "] " + step.kind +
                       " (" + step.location.str() + ")");
        steps::run_step(ctx, step);
      }
    } else if (p.dcos) {
      say(options, "stage dcos: staging the bundle in /opt/dcos_install_tmp (" + short_key(p.key) + ")");
      PhaseTimer timer(options.log, "stage dcos");
      dcos_stage::run(ctx, recipe, scratch);
    } else {
      say(options, "stage finalize: " + std::string(recipe.sysprep ? "sysprep, " : "") + "inventory" +
                     (recipe.trim ? ", trim" : ""));
      if (recipe::wants_relabel(recipe)) {
        PhaseTimer timer(options.log, "relabel");
        steps::selinux_relabel(ctx);
      }
      if (recipe.dcos) {
        say(options, "verify: role " + recipe.dcos->role);
        PhaseTimer timer(options.log, "dcos verify");
        meta.dcos_verify = dcos_stage::verify(g, guest, recipe, options);
      }
      if (recipe.sysprep) {
        PhaseTimer timer(options.log, "sysprep");
        steps::sysprep(ctx);
      }
      {
        PhaseTimer timer(options.log, "inventory");
        meta.packages = package_inventory(g, guest);
        meta.kernel = extract_kernel(g, layers, p.key);
      }
      if (recipe.trim) {
        PhaseTimer timer(options.log, "trim");
        for (const auto& [mountpoint, device] : g.inspect_mountpoints(guest.root)) {
          g.trim(mountpoint);
        }
      }
    }
    util::check_interrupted();
    {
      PhaseTimer timer(options.log, "layer " + p.name);
      g.umount_all();
      if (i + 1 == stages.size()) {
        g.shutdown();
      }
      snapshot(working, layers.image(p.key));
    }
    layers.write(meta);
    result.built.push_back(p.name);
    if (i + 1 < stages.size()) {
      g.mount_os(guest.root);
    } else {
      result.meta = std::move(meta);
    }
  }
  return result;
}

} // namespace kiln::build
