#include "image/pipeline/base.hpp"
#include "image/pipeline/guest.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/term.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/formats/stable_ids.hpp"
#include "image/fsimage/ext4_to_tar.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/pipeline/phase_timer.hpp"

namespace kiln::build {

namespace fs = std::filesystem;

namespace {

// ext4 features CentOS 7's kernel, e2fsck and GRUB understand (mkfs.ext4 on Debian 12
// turns on newer ones by default).
const char* const k_compatible_ext4 = "^metadata_csum,^metadata_csum_seed,^orphan_file,^64bit";

// Makes the base disk from a root filesystem tar: one partition, ext4 with features
// an EL7 kernel mounts, labelled "root", and an fstab that mounts it by label. Returns what
// inspection finds in it (one file system: quick), for the base layer's record.
GuestFacts
disk_from_tar(const fs::path& tar, const fs::path& out, std::uint64_t size, const std::string& key,
              const BuildOptions& options)
{
  util::AtomicFile file(out);
  formats::create_qcow2(runner_of(options), "base", file.temp_path(), size);
  gfs::Handle g(handle_options(options, false));
  g.add_drive(file.temp_path().string(), "qcow2");
  say(options, "base: making a " + util::human_bytes(size) + " disk from " + tar.filename().string());
  PhaseTimer timer(log_sink(options), "base disk");
  g.launch();
  std::string device = g.list_devices().at(0);
  g.part_disk(device, "mbr");
  // parted gives the table a random disk signature (MBR bytes 440-443), and mkfs the file
  // system a random UUID: both from the key instead.
  const std::array<unsigned char, 32> signature = formats::stable_bytes("mbr disk signature", key);
  g.pwrite_device(device, std::string(signature.begin(), signature.begin() + 4), 440);
  std::string part = g.list_partitions().at(0);
  gfs::MkfsOptions mkfs;
  mkfs.label = "root";
  mkfs.features = k_compatible_ext4;
  g.mkfs("ext4", part, mkfs);
  g.set_uuid(part, fsimage::uuid_text(formats::stable_uuid("base root file system", key).data()));
  g.mount(part, "/");
  g.tar_in(tar.string(), "/");
  g.write("/etc/fstab", "LABEL=root / ext4 defaults 0 1\n");
  g.umount_all();
  GuestFacts facts = inspect_guest(g, "base " + tar.filename().string());
  g.shutdown();
  file.commit();
  return facts;
}

} // namespace

std::vector<std::string>
mmdebstrap_argv(const recipe::BaseImage& base, const fs::path& out)
{
  std::vector<std::string> argv{"mmdebstrap", "--quiet", "--variant=" + base.variant, "--format=tar"};
  if (!base.packages.empty()) {
    std::string include;
    for (const auto& p : base.packages) {
      include += (include.empty() ? "" : ",") + p;
    }
    argv.push_back("--include=" + include);
  }
  argv.push_back(base.suite);
  argv.push_back(out.string());
  if (!base.mirror.empty()) {
    argv.push_back(base.mirror);
  }
  return argv;
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
  say(options, "base: mmdebstrap " + base.suite + " (" + base.variant + ", " + std::to_string(base.packages.size()) +
                 " extra packages)");
  util::RunResult r;
  {
    PhaseTimer timer(log_sink(options), "mmdebstrap");
    r = runner_of(options).run(mmdebstrap_argv(base, out.temp_path()));
  }
  if (!r.ok()) {
    throw Error("mmdebstrap " + base.suite, "exit status " + std::to_string(r.exit_code) + ": " + r.tail(5));
  }
  out.commit();
  return tar;
}

BaseLayer
resolve_base(const recipe::Recipe& recipe, const recipe::Plan& plan, fetch::Cache& cache, const LayerStore& layers,
             const BuildOptions& options)
{
  const recipe::BaseImage& base = recipe.base;
  if (base.kind == recipe::BaseImage::Kind::url) {
    fetch::FetchOptions fetch_options;
    fetch_options.urls = base.urls;
    fetch_options.sha256 = base.sha256;
    fetch_options.size = base.size;
    fetch_options.allow_unpinned = !base.sha256.has_value();
    fetch_options.progress = progress_sink(options);
    say(options, "base: " + base.urls.front());
    fetch::FetchResult fetched = cache.fetch(fetch_options);
    return {fetched.path, base.format, 0, std::nullopt};
  }
  if (base.kind == recipe::BaseImage::Kind::path && base.format != "tar") {
    // A copy in the cache: layers must never be backed by a file someone may change.
    return {cache.insert_file(base.path, plan.inputs.front().sha256), base.format, 0, std::nullopt};
  }
  fs::path disk = layers.image(plan.base_key);
  // Builds of different recipes on one base run side by side: one makes the base disk.
  util::FileLock base_lock(cache.area("locks") / (plan.base_key.substr(0, 16) + ".base.lock"));
  if (layers.has(plan.base_key)) {
    say(options, "base: cached");
    return {disk, "qcow2", 0, layers.read(plan.base_key).guest};
  }
  fs::path tar = base.kind == recipe::BaseImage::Kind::path ? fs::path(base.path)
                                                            : bootstrap_tar(base, plan.base_key, cache, options);
  std::uint64_t size = recipe.size != 0 ? recipe.size : (4ull << 30);
  GuestFacts facts = disk_from_tar(tar, disk, size, plan.base_key, options);
  LayerMeta meta;
  meta.key = plan.base_key;
  meta.name = "base";
  meta.source = tar.filename().string();
  meta.guest = facts;
  layers.write(meta);
  return {disk, "qcow2", 1, std::move(facts)};
}

} // namespace kiln::build
