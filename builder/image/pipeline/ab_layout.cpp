#include "image/pipeline/ab_layout.hpp"
#include "image/pipeline/phase_timer.hpp"
#include "image/pipeline/repack.hpp"
#include "image/pipeline/guest.hpp"

#include "core/bundle/bundle.hpp"
#include "core/bundle/sign.hpp"
#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/grubenv/grubenv.hpp"
#include "core/manifest/manifest.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/slots/abi.hpp"
#include "core/slots/grubcfg.hpp"
#include "core/slots/state.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"
#include "core/util/term.hpp"
#include "image/ab/bootloader.hpp"
#include "image/ab/disk_layout.hpp"
#include "image/ab/host_fs.hpp"
#include "image/ab/slot_root.hpp"
#include "image/edit/checked_sh.hpp"
#include "image/formats/qemu_img.hpp"
#include "image/guestfs/guestfs.hpp"
#include "image/guestfs/guestfs_editor.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>

namespace kiln::build {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Where the finalized image's file systems are mounted (read-only) inside the new slot A
// while it is copied; an empty directory name no image uses, removed before anything else.
const std::string k_source_mount = "/.kiln-ab-source";

// The kiln-node artifact of the plan into the mounted slot: /usr/bin/kiln-node (and
// /usr/lib/kiln/node/... for a tree), owned by root, through one tar (libguestfs' tar_in).
// Directories the image already has (/usr, /usr/bin, ...) are not in the tar, so their
// modes and owners stay the image's. Returns the paths to label.
std::vector<std::string>
install_node(edit::Editor& g, const recipe::Plan& plan, const fs::path& scratch, const BuildOptions& options)
{
  const recipe::Input& in = plan.ab.value().inputs.at(0);
  recipe::NodeArtifact node = recipe::describe_node_artifact(in.source);
  if (node.sha256 != in.sha256) {
    throw Error(in.source, "the kiln-node artifact changed since the build was planned");
  }
  say(options, "  slot A: " + node.version + " (" + node.sha256.substr(0, 12) + ")");
  fs::path root = node.path;
  std::string list;
  if (node.directory) {
    const fs::path own = fs::path(recipe::k_node_artifact_lib).parent_path(); // usr/lib/kiln: kiln's own
    std::error_code ec;
    std::vector<std::string> entries;
    for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      fs::path rel = it->path().lexically_relative(root);
      bool ours = rel.string().rfind(own.string() + "/", 0) == 0 || rel == own;
      if (!it->is_directory(ec) || it->is_symlink(ec) || ours) {
        entries.push_back(rel.string());
      }
    }
    if (ec) {
      throw Error(root.string(), "cannot read the kiln-node artifact: " + ec.message());
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) {
      list += e + "\n";
    }
  } else {
    root = scratch / "kiln-node-root";
    fs::create_directories(root / fs::path(recipe::k_node_artifact_bin).parent_path());
    fs::copy_file(node.path, root / recipe::k_node_artifact_bin, fs::copy_options::overwrite_existing);
    fs::permissions(root / recipe::k_node_artifact_bin, fs::perms(0755));
    list = std::string(recipe::k_node_artifact_bin) + "\n";
  }
  fs::path tar = scratch / "kiln-node.tar";
  util::RunOptions o;
  o.stdin_data = list;
  ab::run_tool(runner_of(options), "kiln-node artifact",
               {"tar", "-cf", tar.string(), "--format=gnu", "--owner=0", "--group=0", "--numeric-owner",
                "--no-recursion", "-C", root.string(), "-T", "-"},
               o);
  g.tar_in(tar.string(), "/");
  fs::remove(tar);
  if (!node.directory) {
    fs::remove_all(root);
    return {"/" + std::string(recipe::k_node_artifact_bin)};
  }
  return {"/" + std::string(recipe::k_node_artifact_bin),
          "/" + fs::path(recipe::k_node_artifact_lib).parent_path().string()};
}

// A tree moved from `from` (in slot A) to `to` on another mounted file system, copied inside
// the appliance so ownership, xattrs and labels stay; `from` is emptied but kept (a mountpoint).
void
move_tree(gfs::Handle& g, const std::string& from, const std::string& to)
{
  g.mkdir_p(to);
  g.cp_a(from + "/.", to);
  for (const auto& pattern : {from + "/*", from + "/.[!.]*", from + "/..?*"}) {
    for (const auto& entry : g.glob(pattern)) {
      g.rm_rf(entry);
    }
  }
}

} // namespace

AbStage::AbStage(const recipe::Recipe& recipe, const recipe::Plan& plan, const LayerStore& layers,
                 const BuildOptions& options, fs::path scratch)
  : m_recipe(recipe), m_plan(plan), m_layers(layers), m_options(options), m_scratch(std::move(scratch)),
    m_key(plan.ab.value().key), m_laps(log_sink(options))
{}

AbStage::~AbStage() = default;

std::optional<Built>
AbStage::cached() const
{
  if (m_options.no_cache || !m_layers.has(m_key) || !fs::is_regular_file(m_layers.file(m_key, ".kbundle"))) {
    return std::nullopt;
  }
  events(m_options).stage({"ab", m_key, StageState::cached, ""});
  Built result;
  result.layer = m_layers.image(m_key);
  result.reused.push_back("ab");
  result.meta = m_layers.read(m_key);
  return result;
}

// Host: a sparse raw disk with the partition table and every file system, made with the
// host's mkfs and copied in at their offsets.
void
AbStage::add_drives(gfs::Handle& g, const fs::path& source_layer)
{
  m_laps = Laps(log_sink(m_options));
  const recipe::AbLayout& ab = m_recipe.ab;
  util::Runner& runner = runner_of(m_options);
  std::uint64_t slot_size = ab.slot_size != 0 ? ab.slot_size : formats::image_info(runner, source_layer).virtual_size;
  slot_size = ab::round_mib(slot_size);
  m_layout = ab::plan_layout(ab, m_key, slot_size);
  events(m_options).stage(
    {"ab", m_key, StageState::running,
     util::human_bytes(m_layout.disk_size) + " GPT disk, slots of " + util::human_bytes(slot_size)});
  m_disk = m_scratch / "ab-disk.raw";
  ab::make_sparse_file(m_disk, m_layout.disk_size);
  ab::partition(runner, m_disk, m_layout);
  struct Fs {
    std::string_view part;
    std::string type;
    std::string label;
  };
  const std::vector<Fs> filesystems = {{slots::k_part_esp, "vfat", std::string(slots::k_label_esp)},
                                       {slots::k_part_boot, "ext4", std::string(slots::k_label_boot)},
                                       {slots::k_part_a, ab.root_fs, "kiln-root"},
                                       {slots::k_part_data, ab.data_fs, std::string(slots::k_label_data)}};
  m_fs_uuids = json::object();
  m_fs_files.clear();
  for (const auto& f : filesystems) {
    const ab::Part& p = m_layout.at(f.part);
    std::string uuid = ab::derived_guid(m_key, "fs:" + std::string(f.part));
    fs::path file = m_scratch / ("ab-" + std::string(f.part) + ".img");
    ab::make_fs(runner, f.type, file, p.size, f.label, uuid);
    m_fs_files.push_back({std::string(f.part), f.type, file});
    m_fs_uuids[std::string(f.part)] = uuid;
  }
  // The file systems go into the disk only in run(): until then its partitions are empty,
  // so the launch's inspection of the guest skips them instead of mounting each one
  // (several seconds apiece under TCG).
  g.add_drive(m_disk.string(), "raw");
  m_laps.lap("ab host disk");
}

Built
AbStage::build_alone(const Built& finalized)
{
  // The finalized layer read-only as sda, the new disk as sdb.
  gfs::Handle g(handle_options(m_options, false));
  g.add_drive(finalized.layer.string(), "qcow2", true);
  add_drives(g, finalized.layer);
  say(m_options, "appliance: launching for the A/B disk");
  g.launch();
  m_laps.lap("ab launch");
  steps::GuestInfo guest = known_or_inspected(g, finalized.meta.guest, "layout ab: the finalized image");
  m_laps.lap("ab inspect");
  run(g, guest, finalized);
  m_result->launches = 1;
  return take().value();
}

std::optional<Built>
AbStage::take()
{
  std::optional<Built> r = std::move(m_result);
  m_result.reset();
  return r;
}

// Appliance: the finalized guest (drive 0) copied into slot A of the new disk
// (drive 1), slot A completed, GRUB installed; host: the bundle and the layer.
void
AbStage::run(gfs::Handle& g, const steps::GuestInfo& guest, const Built& finalized)
{
  const recipe::Recipe& recipe = m_recipe;
  const recipe::AbLayout& ab = recipe.ab;
  const BuildOptions& options = m_options;
  util::Runner& runner = runner_of(options);
  const ab::Layout& l = m_layout;
  m_laps = Laps(log_sink(options));
  m_epoch = file_system_epoch(options.source_date_epoch); // one time for every file system
  gfs::GuestfsEditor editor(g);
  const std::string target = g.list_devices().at(1);
  auto dev = [&](std::string_view name) {
    for (size_t i = 0; i < l.parts.size(); ++i) {
      if (l.parts[i].name == name) {
        return target + std::to_string(i + 1);
      }
    }
    throw Error("layout ab", "no partition " + std::string(name));
  };
  // The host's file systems into the running appliance's disk file, the appliance's
  // buffers of those partitions dropped, and each one checked from inside.
  for (const auto& f : m_fs_files) {
    ab::copy_sparse(f.file, m_disk, l.at(f.part).start);
    fs::remove(f.file);
  }
  for (const auto& f : m_fs_files) {
    g.blockdev_flushbufs(dev(f.part));
    const std::string seen = g.vfs_type(dev(f.part));
    if (seen != f.type) {
      throw Error("layout ab", "partition " + f.part + " reads as '" + seen + "' in the appliance, not the " + f.type +
                                 " the host wrote into it");
    }
  }

  g.mount_points(guest.mounts, true);
  ab::GrubTools grub = ab::find_grub(editor);
  ab::Kernel kernel = ab::find_kernel(editor);
  std::string old_fstab = g.exists("/etc/fstab") ? g.read_file("/etc/fstab") : "";
  bool rpm = finalized.meta.guest && finalized.meta.guest->package_format == "rpm";
  // Slot A: the finalized tree copied inside the appliance, source and slot on two drives of
  // one launch (no tar through the host). The source's file systems are mounted read-only
  // beneath a directory of the new slot and removed from it afterwards.
  say(options, "  slot A: copying the root tree (ownership, xattrs, SELinux labels)");
  g.umount_all();
  g.mount(dev(slots::k_part_a), "/");
  g.mkdir_p(k_source_mount);
  g.mount_points(guest.mounts, true, k_source_mount);
  g.cp_a(k_source_mount + "/.", "/");
  g.umount_all();
  g.mount(dev(slots::k_part_a), "/");
  g.rm_rf(k_source_mount);
  m_laps.lap("ab slot A copy");

  // Slot A: fstab, stable kernel names, mountpoints, kiln-mark-good.service,
  // kiln-grow-data.service (ab.grow_data), the kiln-node artifact.
  std::vector<std::string> labelled =
    ab::prepare_slot_root(editor, {ab.root_fs, ab.data_fs, ab.grow_data, kernel, old_fstab});
  std::vector<std::string> node_paths = install_node(editor, m_plan, m_scratch, options);
  labelled.insert(labelled.end(), node_paths.begin(), node_paths.end());
  ab::label_added_paths(editor, recipe::wants_relabel(recipe), labelled,
                        [notice = notice_sink(options)](const std::string& line) {
                          if (notice) {
                            notice("layout ab: " + line);
                          }
                        });

  // kiln-data: the state directories move there, their mountpoints stay (empty) in the slot.
  g.mount(dev(slots::k_part_data), std::string(slots::k_data_mount));
  for (const auto& dir : ab::ab_data_dirs()) {
    move_tree(g, dir, std::string(slots::k_data_mount) + "/" + fs::path(dir).filename().string());
  }

  m_laps.lap("ab slot root and kiln-data");

  // GRUB, with the image's own tools and modules, for BIOS and UEFI.
  std::string efi_stash = ab::stash_prebuilt_efi(editor, grub);
  g.mount(dev(slots::k_part_boot), std::string(slots::k_boot_mount));
  g.mount(dev(slots::k_part_esp), "/boot/efi");
  say(options, "  GRUB: " + grub.install + " for i386-pc and " + (grub.efi ? "x86_64-efi" : "a prebuilt EFI loader"));
  ab::BootloaderSettings boot;
  boot.config.partuuid_a = l.at(slots::k_part_a).guid;
  boot.config.partuuid_b = l.at(slots::k_part_b).guid;
  boot.config.panic = ab.panic;
  boot.config.kernel_args = ab.kernel_args;
  boot.config.root_fs = ab.root_fs;
  boot.config.efi_linux_commands = rpm;
  boot.tries = ab.tries;
  boot.panic = ab.panic;
  std::vector<std::string> grub_dirs = ab::install_bootloader(editor, grub, efi_stash, boot);

  // Free space trimmed so the bundle and the disk stay sparse.
  g.trim("/");
  g.trim(std::string(slots::k_data_mount));
  g.umount_all();

  m_laps.lap("ab GRUB and trim");

  // File systems re-made from their trees (repack.hpp): slot A before its bundle is
  // taken, by the host into the running appliance's raw disk (unmounted, flushed), whose
  // buffers of it are then dropped; /boot and kiln-data once the appliance is gone, when
  // the ESP's times are set to the epoch too.
  auto repack = [&](const std::vector<std::string_view>& parts) {
    std::vector<RepackTarget> targets;
    for (std::string_view part : parts) {
      const ab::Part& p = l.at(part);
      const std::string type = part == slots::k_part_a      ? ab.root_fs
                               : part == slots::k_part_data ? ab.data_fs
                               : part == slots::k_part_esp  ? std::string("vfat")
                                                            : std::string("ext4");
      targets.push_back({dev(part), std::string(part), type, gfs::Handle::PartitionSpan{0, p.start, p.size}});
    }
    RepackResult r = repack_file_systems(runner, m_disk, "raw", targets, m_epoch, m_scratch);
    say_repacked(options, r, "  ", "layout ab: ");
  };
  repack({slots::k_part_a});
  g.blockdev_flushbufs(dev(slots::k_part_a));
  m_laps.lap("ab repack slot A");

  // Host: slot A is complete (unmounted, flushed): its bundle, cached beside the layer.
  say(options, "  bundle: slot A root file system");
  const fs::path bundle_file = m_layers.file(m_key, ".kbundle");
  fs::path rootfs = m_scratch / "ab-rootfs.raw";
  const ab::Part& a = l.at(slots::k_part_a);
  formats::read_span(runner, "layout ab: extract slot", {m_disk, "raw", a.start, a.size}, rootfs);
  // The bundle's manifest is the outputs' without their files and SBOM (publish.hpp).
  manifest::Manifest base = manifest_base(recipe, m_plan, finalized.meta.packages, recipe.outputs.name);
  base.sbom = nullptr;
  bundle::BundleInfo info = bundle::write_bundle(rootfs, bundle_file, base, nullptr);
  fs::remove(rootfs);
  m_laps.lap("ab bundle");

  // The initial state: A holds this build (verified by it: good), B is empty.
  grubenv::Env env = slots::initial_env(info.manifest_sha256, info.manifest.name);
  g.mount(dev(slots::k_part_boot), "/");
  g.write(std::string(slots::k_grubenv_path), grubenv::serialize(env));
  g.umount_all();
  g.shutdown();
  repack({slots::k_part_esp, slots::k_part_boot, slots::k_part_data});

  // The disk becomes the stage's layer (qcow2, standalone).
  const fs::path layer = m_layers.image(m_key);
  {
    util::AtomicFile out(layer);
    formats::qemu_img(runner, "layout ab: layer",
                      {"convert", "-q", "-O", "qcow2", m_disk.string(), out.temp_path().string()});
    out.commit();
  }
  fs::remove(m_disk);
  m_laps.lap("ab layer");
  AbDisk disk_meta;
  disk_meta.layout = l;
  disk_meta.filesystems = m_fs_uuids;
  disk_meta.kernel = kernel.kernel;
  disk_meta.initrd = kernel.initrd;
  disk_meta.grub = grub.efi ? "modules" : "prebuilt-efi";
  disk_meta.grub_dirs = grub_dirs;
  disk_meta.bundle = bundle_file.filename().string();
  disk_meta.bundle_manifest = info.manifest_text;
  disk_meta.bundle_digest = info.manifest_sha256;
  Built result;
  result.layer = layer;
  result.meta = finalized.meta;
  result.meta.key = m_key;
  result.meta.name = "ab";
  result.meta.ab = std::move(disk_meta);
  m_layers.write(result.meta);
  result.built.push_back("ab");
  m_result = std::move(result);
}

std::vector<formats::Written>
write_ab_bundle(const AbDisk& ab, const fs::path& final_layer, const std::string& stem, const fs::path& dir,
                const std::optional<std::string>& key_path)
{
  const fs::path cached = final_layer.parent_path() / ab.bundle;
  const fs::path out = dir / (stem + std::string(slots::k_bundle_extension));
  if (!key_path) {
    std::error_code ec;
    fs::copy_file(cached, out, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      throw Error(out.string(), "cannot copy the slot bundle: " + ec.message());
    }
  } else {
    // Signed: the cached bundle with a signature added; the same manifest bytes (so
    // kiln_A_digest still names it).
    crypto::PrivateKey key = crypto::load_private_key(*key_path);
    bundle::BundleInfo info = bundle::sign_bundle(cached, out, key);
    if (info.manifest_sha256 != ab.bundle_digest) {
      throw Error(out.string(), "the signed bundle's manifest differs from the one recorded in the grubenv");
    }
  }
  return {{out.filename().string(), "bundle", "kbundle"}};
}

} // namespace kiln::build
