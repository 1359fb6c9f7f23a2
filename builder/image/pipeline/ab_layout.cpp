#include "image/pipeline/ab_layout.hpp"

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
#include "image/ab/slot_root.hpp"
#include "image/edit/checked_sh.hpp"
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

constexpr std::uint64_t k_mib = 1ull << 20;
constexpr std::uint64_t k_default_data_size = 4ull << 30;

// GPT partition types.
constexpr const char* k_type_bios = "21686148-6449-6E6F-744E-656564454649";
constexpr const char* k_type_esp = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
// Plain "Linux filesystem data" for the rest: the discoverable root/var types would let
// systemd-gpt-auto-generator mount partitions kiln mounts itself.
constexpr const char* k_type_linux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

// Features CentOS 7 (kernel 3.10, xfsprogs 4.5, e2fsprogs 1.42.9, GRUB 2.02) handles.
constexpr const char* k_xfs_meta = "crc=1,finobt=0,reflink=0,rmapbt=0,bigtime=0,inobtcount=0";
constexpr const char* k_xfs_inode = "sparse=0,nrext64=0";
constexpr const char* k_ext4_features = "^metadata_csum,^metadata_csum_seed,^orphan_file,^64bit";

void
say(const BuildOptions& options, const std::string& line)
{
  if (options.status) {
    options.status(line);
  }
}

void
log(const BuildOptions& options, const std::string& line)
{
  if (options.log) {
    options.log(line);
  }
}

struct Part {
  std::string name; // PARTLABEL
  std::string type;
  std::uint64_t start = 0; // bytes
  std::uint64_t size = 0;
  std::string guid;
};

struct Layout {
  std::string disk_guid;
  std::uint64_t disk_size = 0;
  std::vector<Part> parts; // abi.hpp order: bios, esp, boot, a, b, data
  const Part& at(std::string_view name) const
  {
    for (const auto& p : parts) {
      if (p.name == name) {
        return p;
      }
    }
    throw Error("layout ab", "no partition " + std::string(name));
  }
};

std::uint64_t
round_mib(std::uint64_t bytes)
{
  return (bytes + k_mib - 1) / k_mib * k_mib;
}

Layout
plan_layout(const recipe::AbLayout& ab, const std::string& key, std::uint64_t slot_size)
{
  Layout l;
  l.disk_guid = derived_guid(key, "disk");
  std::uint64_t at = k_mib; // first-lba 2048: the GPT and alignment
  auto add = [&](std::string_view name, const char* type, std::uint64_t size) {
    l.parts.push_back({std::string(name), type, at, size, derived_guid(key, std::string(name))});
    at += size;
  };
  add(slots::k_part_bios, k_type_bios, k_mib);
  add(slots::k_part_esp, k_type_esp, round_mib(ab.esp_size));
  add(slots::k_part_boot, k_type_linux, round_mib(ab.boot_size));
  add(slots::k_part_a, k_type_linux, slot_size);
  add(slots::k_part_b, k_type_linux, slot_size);
  add(slots::k_part_data, k_type_linux, round_mib(ab.data_size != 0 ? ab.data_size : k_default_data_size));
  l.disk_size = at + k_mib; // the backup GPT
  return l;
}

void
run_tool(const std::string& what, const std::vector<std::string>& argv, const util::RunOptions& options = {})
{
  util::RunResult r = util::run(argv, options);
  if (!r.ok()) {
    throw Error("layout ab: " + what, argv.front() + " exit status " + std::to_string(r.exit_code) + ": " + r.tail(3));
  }
}

void
make_sparse_file(const fs::path& path, std::uint64_t size)
{
  util::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    throw Error(path.string(), "cannot create: " + errno_text(errno));
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    throw Error(path.string(), "cannot size: " + errno_text(errno));
  }
  fd.close(path.string());
}

// Copies the allocated ranges of `from` into `to` at `offset` (holes stay holes).
void
copy_sparse(const fs::path& from, const fs::path& to, std::uint64_t offset)
{
  util::Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  util::Fd out(::open(to.c_str(), O_WRONLY | O_CLOEXEC));
  if (!in || !out) {
    throw Error((in ? to : from).string(), "cannot open: " + errno_text(errno));
  }
  off_t end = ::lseek(in.get(), 0, SEEK_END);
  std::vector<char> buffer(4 * k_mib);
  off_t pos = 0;
  while (pos < end) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0 || data >= end) {
      break; // only a hole remains
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0 || hole > end) {
      hole = end;
    }
    for (off_t p = data; p < hole;) {
      size_t want = static_cast<size_t>(std::min<off_t>(hole - p, static_cast<off_t>(buffer.size())));
      ssize_t n = ::pread(in.get(), buffer.data(), want, p);
      if (n <= 0) {
        throw Error(from.string(), "read failed: " + (n < 0 ? errno_text(errno) : std::string("unexpected end")));
      }
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::pwrite(out.get(), buffer.data() + done, static_cast<size_t>(n - done),
                             static_cast<off_t>(offset) + p + done);
        if (w < 0) {
          throw Error(to.string(), "write failed: " + errno_text(errno));
        }
        done += w;
      }
      p += n;
    }
    pos = hole;
  }
  out.close(to.string());
}

// Makes one file system into a fresh sparse file of `size` bytes.
void
make_fs(const std::string& type, const fs::path& file, std::uint64_t size, const std::string& label,
        const std::string& uuid)
{
  make_sparse_file(file, size);
  if (type == "xfs") {
    run_tool("mkfs.xfs " + label,
             {"mkfs.xfs", "-q", "-f", "-L", label, "-m", std::string("uuid=") + uuid + "," + k_xfs_meta, "-i",
              k_xfs_inode, "-n", "ftype=1", file.string()});
  } else if (type == "ext4") {
    run_tool("mkfs.ext4 " + label, {"mkfs.ext4", "-q", "-F", "-T", "default", "-L", label, "-U", uuid, "-E",
                                    "hash_seed=" + uuid, "-O", k_ext4_features, file.string()});
  } else if (type == "vfat") {
    // The volume id: 8 hex digits taken from the derived GUID.
    std::string volid = uuid.substr(0, 8);
    std::vector<std::string> argv{"mkfs.vfat", "-n", label, "-i", volid};
    if (size >= 64 * k_mib) {
      argv.insert(argv.begin() + 1, {"-F", "32"});
    }
    argv.push_back(file.string());
    run_tool("mkfs.vfat " + label, argv);
  } else {
    throw Error("layout ab", "unknown file system " + type);
  }
}

void
partition(const fs::path& disk, const Layout& l)
{
  std::string script = "label: gpt\nlabel-id: " + l.disk_guid + "\nfirst-lba: 2048\nunit: sectors\n\n";
  for (const auto& p : l.parts) {
    script += "start=" + std::to_string(p.start / 512) + ", size=" + std::to_string(p.size / 512) + ", type=" + p.type +
              ", uuid=" + p.guid + ", name=\"" + p.name + "\"\n";
  }
  util::RunOptions o;
  o.stdin_data = script;
  run_tool("partition table", {"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk.string()}, o);
}

gfs::HandleOptions
handle_options(const BuildOptions& options)
{
  gfs::HandleOptions h;
  h.log = options.log;
  h.progress = options.progress;
  return h;
}

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
  run_tool("kiln-node artifact",
           {"tar", "-cf", tar.string(), "--format=gnu", "--owner=0", "--group=0", "--numeric-owner", "--no-recursion",
            "-C", root.string(), "-T", "-"},
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

struct GrubTools {
  std::string install; // grub2-install | grub-install
  bool bios = false; // i386-pc modules
  bool efi = false; // x86_64-efi modules
  std::string signed_efi; // EFI/<vendor> directory under /boot/efi holding a prebuilt grubx64.efi
};

GrubTools
find_grub(gfs::Handle& g)
{
  GrubTools t;
  for (const char* p :
       {"/usr/sbin/grub2-install", "/sbin/grub2-install", "/usr/sbin/grub-install", "/sbin/grub-install"}) {
    if (t.install.empty() && g.is_file(p)) {
      t.install = fs::path(p).filename().string();
    }
  }
  // Both Debian (grub-pc-bin, grub-efi-amd64-bin) and EL7 (grub2-pc-modules,
  // grub2-efi-x64-modules) keep the platform modules here.
  const std::string libdir = "/usr/lib/grub";
  t.bios = g.is_file(libdir + "/i386-pc/modinfo.sh") || g.is_file(libdir + "/i386-pc/boot.img");
  t.efi = g.is_file(libdir + "/x86_64-efi/modinfo.sh") || g.is_file(libdir + "/x86_64-efi/kernel.img");
  if (!t.efi) {
    for (const auto& f : g.glob("/boot/efi/EFI/*/grubx64.efi")) {
      t.signed_efi = fs::path(f).parent_path().string();
      break;
    }
  }
  if (t.install.empty() || !t.bios || (!t.efi && t.signed_efi.empty())) {
    std::string missing = t.install.empty() ? "grub-install/grub2-install" : "";
    if (!t.bios) {
      missing += std::string(missing.empty() ? "" : ", ") + "i386-pc modules";
    }
    if (!t.efi && t.signed_efi.empty()) {
      missing += std::string(missing.empty() ? "" : ", ") + "x86_64-efi modules or a signed grubx64.efi";
    }
    throw Error("layout ab", "the image lacks GRUB (" + missing +
                               "); add the packages grub2-pc grub2-pc-modules "
                               "grub2-efi-x64-modules (EL7) or grub-pc-bin grub-efi-amd64-bin grub2-common (Debian)");
  }
  return t;
}

// The directories the image's grub-install made under `boot_dir` (names, sorted): those
// holding a platform's modules.
std::vector<std::string>
grub_directories(gfs::Handle& g, const std::string& boot_dir)
{
  std::vector<std::string> out;
  for (const char* platform : {"i386-pc", "x86_64-efi"}) {
    for (std::string p : g.glob(boot_dir + "/*/" + platform)) {
      while (p.size() > 1 && p.back() == '/') { // guestfs marks directories with a slash
        p.pop_back();
      }
      std::string name = fs::path(p).parent_path().filename().string();
      if (std::find(out.begin(), out.end(), name) == out.end()) {
        out.push_back(name);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A tree moved from `from` (in slot A) to `to` on another mounted file system, through
// tar so ownership, xattrs and labels stay; `from` is emptied but kept (a mountpoint).
void
move_tree(gfs::Handle& g, const std::string& from, const std::string& to, const fs::path& scratch)
{
  fs::path tar = scratch / "move.tar";
  g.tar_out(from, tar.string());
  g.mkdir_p(to);
  g.tar_in(tar.string(), to);
  fs::remove(tar);
  for (const auto& pattern : {from + "/*", from + "/.[!.]*", from + "/..?*"}) {
    for (const auto& entry : g.glob(pattern)) {
      g.rm_rf(entry);
    }
  }
}

// Extracts the byte range of a partition from a disk image into a sparse raw file.
void
extract_partition(const fs::path& disk, const std::string& format, std::uint64_t offset, std::uint64_t size,
                  const fs::path& out)
{
  std::string file = format == "raw" ? ",file.driver=file,file.filename=" + fs::absolute(disk).string()
                                     : ",file.driver=" + format + ",file.file.filename=" + fs::absolute(disk).string();
  std::string spec = "driver=raw,offset=" + std::to_string(offset) + ",size=" + std::to_string(size) + file;
  // -U: the appliance still has the raw disk open (slot A is unmounted and flushed).
  run_tool("extract slot", {"qemu-img", "convert", "-q", "-U", "-O", "raw", "--image-opts", spec, out.string()});
}

manifest::Manifest
bundle_base(const recipe::Recipe& recipe, const recipe::Plan& plan, const std::vector<manifest::Package>& packages,
            const std::string& key)
{
  manifest::Manifest m = manifest_base(recipe, plan, packages, recipe.outputs.name);
  m.stages.push_back({"ab", key});
  m.sbom = nullptr;
  return m;
}

} // namespace

std::string
derived_guid(const std::string& key, const std::string& what)
{
  std::string h = crypto::sha256_hex("kiln-guid:" + key + ":" + what).substr(0, 32);
  h[12] = '4';
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

Built
make_ab_layer(const recipe::Recipe& recipe, const recipe::Plan& plan, const LayerStore& layers,
              const BuildOptions& options, const fs::path& scratch, const Built& finalized)
{
  const std::string key = ab_key(recipe, plan);
  const fs::path layer = layers.image(key);
  const fs::path bundle_file = layers.file(key, ".kbundle");
  Built result;
  result.layer = layer;
  if (!options.no_cache && layers.has(key) && fs::is_regular_file(bundle_file)) {
    say(options, "stage ab: cached (" + key.substr(0, 12) + ")");
    result.reused.push_back("ab");
    result.meta = layers.read(key);
    return result;
  }
  const fs::path& final_layer = finalized.layer;
  const recipe::AbLayout& ab = recipe.ab;
  std::uint64_t slot_size = ab.slot_size != 0 ? ab.slot_size : formats::virtual_size(final_layer);
  slot_size = round_mib(slot_size);
  Layout l = plan_layout(ab, key, slot_size);
  say(options, "stage ab: " + util::human_bytes(l.disk_size) + " GPT disk, slots of " + util::human_bytes(slot_size) +
                 " (" + key.substr(0, 12) + ")");

  // Host: partition table and file systems.
  fs::path disk = scratch / "ab-disk.raw";
  make_sparse_file(disk, l.disk_size);
  partition(disk, l);
  struct Fs {
    std::string_view part;
    std::string type;
    std::string label;
  };
  const std::vector<Fs> filesystems = {{slots::k_part_esp, "vfat", std::string(slots::k_label_esp)},
                                       {slots::k_part_boot, "ext4", std::string(slots::k_label_boot)},
                                       {slots::k_part_a, ab.root_fs, "kiln-root"},
                                       {slots::k_part_data, ab.data_fs, std::string(slots::k_label_data)}};
  json fs_uuids = json::object();
  for (const auto& f : filesystems) {
    const Part& p = l.at(f.part);
    std::string uuid = derived_guid(key, "fs:" + std::string(f.part));
    fs::path file = scratch / ("ab-" + std::string(f.part) + ".img");
    make_fs(f.type, file, p.size, f.label, uuid);
    copy_sparse(file, disk, p.start);
    fs::remove(file);
    fs_uuids[std::string(f.part)] = uuid;
  }

  // Appliance: the source read-only as sda, the new disk as sdb.
  gfs::Handle g(handle_options(options));
  gfs::GuestfsEditor editor(g);
  g.add_drive(final_layer.string(), "qcow2", true);
  g.add_drive(disk.string(), "raw");
  say(options, "appliance: launching for the A/B disk");
  g.launch();
  ++result.launches;
  const std::string target = g.list_devices().at(1);
  auto dev = [&](std::string_view name) {
    for (size_t i = 0; i < l.parts.size(); ++i) {
      if (l.parts[i].name == name) {
        return target + std::to_string(i + 1);
      }
    }
    throw Error("layout ab", "no partition " + std::string(name));
  };

  std::vector<std::string> roots = g.inspect_os();
  if (roots.size() != 1) {
    throw Error("layout ab", roots.empty() ? "no operating system in the finalized image"
                                           : "more than one operating system in the finalized image");
  }
  g.mount_os(roots.front(), true);
  GrubTools grub = find_grub(g);
  ab::Kernel kernel = ab::find_kernel(editor);
  std::string old_fstab = g.exists("/etc/fstab") ? g.read_file("/etc/fstab") : "";
  bool rpm = finalized.meta.guest && finalized.meta.guest->package_format == "rpm";
  say(options, "  slot A: copying the root tree (ownership, xattrs, SELinux labels)");
  fs::path tree = scratch / "ab-root.tar";
  g.tar_out("/", tree.string());
  g.umount_all();
  g.mount(dev(slots::k_part_a), "/");
  g.tar_in(tree.string(), "/");
  fs::remove(tree);

  // Slot A: fstab, stable kernel names, mountpoints, kiln-mark-good.service,
  // kiln-grow-data.service (ab.grow_data), the kiln-node artifact.
  std::vector<std::string> labelled =
    ab::prepare_slot_root(editor, {ab.root_fs, ab.data_fs, ab.grow_data, kernel, old_fstab});
  std::vector<std::string> node_paths = install_node(editor, plan, scratch, options);
  labelled.insert(labelled.end(), node_paths.begin(), node_paths.end());
  ab::label_added_paths(editor, recipe::wants_relabel(recipe), labelled,
                        [&](const std::string& line) { log(options, "layout ab: " + line); });

  // kiln-data: the state directories move there, their mountpoints stay (empty) in the slot.
  g.mount(dev(slots::k_part_data), std::string(slots::k_data_mount));
  for (const auto& dir : ab::ab_data_dirs()) {
    move_tree(g, dir, std::string(slots::k_data_mount) + "/" + fs::path(dir).filename().string(), scratch);
  }

  // GRUB, with the image's own tools and modules, for BIOS and UEFI.
  std::string efi_stash;
  if (!grub.efi) {
    // The prebuilt (signed) loader lives in the slot's /boot/efi, which the ESP covers.
    efi_stash = "/var/tmp/kiln-efi";
    edit::checked_sh(editor, "rm -rf " + efi_stash + " && cp -r /boot/efi/EFI " + efi_stash,
                     "layout ab: stash the EFI loader");
  }
  g.mount(dev(slots::k_part_boot), std::string(slots::k_boot_mount));
  g.mount(dev(slots::k_part_esp), "/boot/efi");
  say(options, "  GRUB: " + grub.install + " for i386-pc and " + (grub.efi ? "x86_64-efi" : "a prebuilt EFI loader"));
  const std::string boot_dir = std::string(slots::k_boot_mount);
  // The appliance kernel's name for the new disk may differ from the API's (libguestfs
  // translates names in its calls, not in scripts): take it from the kiln-boot mount.
  edit::checked_sh(editor,
                   "dev=$(awk '$2 == \"" + boot_dir +
                     "\" { print $1 }' /proc/mounts)\n"
                     "disk=${dev%" +
                     std::to_string(slots::k_partnum_boot) +
                     "}\n"
                     "if [ ! -b \"$disk\" ]; then echo \"no disk for " +
                     boot_dir + " ($dev)\" >&2; exit 1; fi\n" + grub.install +
                     " --target=i386-pc --boot-directory=" + boot_dir + " --modules='part_gpt ext2' \"$disk\"",
                   "layout ab: " + grub.install + " --target=i386-pc");
  if (grub.efi) {
    edit::checked_sh(editor,
                     grub.install + " --target=x86_64-efi --boot-directory=" + boot_dir +
                       " --efi-directory=/boot/efi --removable --no-nvram --modules='part_gpt ext2'",
                     "layout ab: " + grub.install + " --target=x86_64-efi");
  } else {
    std::string vendor = fs::path(grub.signed_efi).filename().string();
    std::string script = "set -e\nmkdir -p /boot/efi/EFI/BOOT /boot/efi/EFI/" + vendor +
                         "\n"
                         "cp -r " +
                         efi_stash + "/" + vendor + "/. /boot/efi/EFI/" + vendor +
                         "/\n"
                         "if [ -f " +
                         efi_stash + "/" + vendor +
                         "/shimx64.efi ]; then\n"
                         "  cp " +
                         efi_stash + "/" + vendor +
                         "/shimx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI\n"
                         "  cp " +
                         efi_stash + "/" + vendor +
                         "/grubx64.efi /boot/efi/EFI/BOOT/grubx64.efi\n"
                         "else\n"
                         "  cp " +
                         efi_stash + "/" + vendor +
                         "/grubx64.efi /boot/efi/EFI/BOOT/BOOTX64.EFI\n"
                         "fi\n"
                         "rm -rf " +
                         efi_stash + "\n";
    edit::checked_sh(editor, script, "layout ab: install the prebuilt EFI loader");
    g.write("/boot/efi/EFI/" + vendor + "/grub.cfg", slots::make_esp_stub_cfg());
    g.write("/boot/efi/EFI/BOOT/grub.cfg", slots::make_esp_stub_cfg());
  }

  slots::GrubConfig cfg;
  cfg.partuuid_a = l.at(slots::k_part_a).guid;
  cfg.partuuid_b = l.at(slots::k_part_b).guid;
  cfg.panic = ab.panic;
  cfg.kernel_args = ab.kernel_args;
  cfg.root_fs = ab.root_fs;
  cfg.efi_linux_commands = rpm;
  g.mkdir_p(boot_dir + "/grub");
  g.write(boot_dir + std::string(slots::k_grubcfg_path), slots::make_grub_cfg(cfg));
  // For kiln-node: the boot tries of a newly written slot (GRUB only counts down).
  g.write(boot_dir + "/grub/kiln-ab.conf",
          "tries=" + std::to_string(ab.tries) + "\npanic=" + std::to_string(ab.panic) + "\n");
  // GRUB's own directory (its $prefix, holding the platform modules) is whatever the
  // image's grub-install made: /grub on Debian, /grub2 on EL7. Elsewhere than /grub, a
  // stub there leads to kiln's one grub.cfg (abi.hpp).
  std::vector<std::string> grub_dirs = grub_directories(g, boot_dir);
  if (grub_dirs.empty()) {
    throw Error("layout ab", grub.install + " left no GRUB directory (with i386-pc modules) under " + boot_dir);
  }
  for (const auto& dir : grub_dirs) {
    if (dir != "grub") {
      g.write(boot_dir + "/" + dir + "/grub.cfg", slots::make_prefix_stub_cfg());
    }
  }

  // Free space trimmed so the bundle and the disk stay sparse.
  g.trim("/");
  g.trim(std::string(slots::k_data_mount));
  g.umount_all();

  // Host: slot A is complete (unmounted, flushed): its bundle, cached beside the layer.
  say(options, "  bundle: slot A root file system");
  fs::path rootfs = scratch / "ab-rootfs.raw";
  const Part& a = l.at(slots::k_part_a);
  extract_partition(disk, "raw", a.start, a.size, rootfs);
  manifest::Manifest base = bundle_base(recipe, plan, finalized.meta.packages, key);
  bundle::BundleInfo info = bundle::write_bundle(rootfs, bundle_file, base, nullptr);
  fs::remove(rootfs);

  // The initial state: A holds this build (verified by it: good), B is empty.
  grubenv::Env env = slots::initial_env(info.manifest_sha256, info.manifest.name);
  g.mount(dev(slots::k_part_boot), "/");
  g.write(std::string(slots::k_grubenv_path), grubenv::serialize(env));
  g.umount_all();
  g.shutdown();

  // The disk becomes the stage's layer (qcow2, standalone).
  {
    util::AtomicFile out(layer);
    run_tool("layer", {"qemu-img", "convert", "-q", "-O", "qcow2", disk.string(), out.temp_path().string()});
    out.commit();
  }
  fs::remove(disk);
  AbDisk disk_meta;
  disk_meta.disk_guid = l.disk_guid;
  disk_meta.disk_size = l.disk_size;
  for (const auto& p : l.parts) {
    disk_meta.partitions.push_back({std::string(p.name), p.type, p.start, p.size, p.guid});
  }
  disk_meta.filesystems = fs_uuids;
  disk_meta.kernel = kernel.kernel;
  disk_meta.initrd = kernel.initrd;
  disk_meta.grub = grub.efi ? "modules" : "prebuilt-efi";
  disk_meta.grub_dirs = grub_dirs;
  disk_meta.bundle = bundle_file.filename().string();
  disk_meta.bundle_manifest = info.manifest_text;
  disk_meta.bundle_digest = info.manifest_sha256;
  result.meta = finalized.meta;
  result.meta.key = key;
  result.meta.name = "ab";
  result.meta.ab = std::move(disk_meta);
  layers.write(result.meta);
  result.built.push_back("ab");
  return result;
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
