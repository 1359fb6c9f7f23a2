// The layer cache of the build pipeline: every stage's result is CACHE/layers/KEY.qcow2
// with its metadata KEY.json beside it (written after the image, so a layer counts only
// when both exist), plus files a stage keeps with its layer (KEY.kernel, KEY.initramfs,
// KEY.kbundle). The metadata is one typed record, LayerMeta; its JSON form lives here and
// nowhere else.
#pragma once

#include "core/manifest/manifest.hpp"
#include "core/util/runner.hpp"
#include "image/ab/disk_layout.hpp"
#include "image/steps/context.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::build {

// What inspection found in the guest, kept with every layer: a stage built on top of it
// mounts the guest by these facts instead of inspecting it again.
using GuestFacts = steps::GuestInfo;

// The newest kernel and its initramfs, copied out of the guest beside the layer (pxe).
struct KernelFiles {
  std::string version;
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
};

// The whole-disk A/B image the "ab" stage made, and its slot bundle.
struct AbDisk {
  ab::Layout layout; // the partition table (image/ab/disk_layout)
  nlohmann::json filesystems; // partition name -> file system UUID
  std::string kernel; // /boot names in slot A
  std::string initrd;
  std::string grub; // modules | prebuilt-efi
  std::vector<std::string> grub_dirs; // GRUB's directories on kiln-boot
  std::string bundle; // KEY.kbundle, beside the layer
  std::string bundle_manifest; // its manifest, byte for byte
  std::string bundle_digest; // sha256 of those bytes (kiln_A_digest)
};

struct LayerMeta {
  std::string key;
  std::string name; // base, a recipe stage's name, dcos, finalize or ab
  std::string recipe; // the recipe's name ("" for a base)
  std::string source; // a base made from a tar: the tar's file name
  std::optional<GuestFacts> guest;
  std::vector<manifest::Package> packages; // finalize and after: the image's packages, by name
  std::optional<KernelFiles> kernel; // finalize and after, when the image has one
  nlohmann::json dcos_verify; // finalize of a dcos: recipe: the checks (dcos::to_json)
  std::optional<AbDisk> ab; // the ab stage
};

// What a run of stages leaves: the last layer, its metadata, and what the run did.
struct Built {
  std::filesystem::path layer;
  LayerMeta meta;
  int launches = 0; // appliance launches
  std::vector<std::string> reused; // stage names taken from the cache
  std::vector<std::string> built; // stage names run
};

nlohmann::json to_json(const LayerMeta& meta);
// Throws Error(subject, ...) for a document that is not a layer's metadata.
LayerMeta layer_meta_from_json(const nlohmann::json& j, const std::string& subject);

class LayerStore {
public:
  explicit LayerStore(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  const std::filesystem::path& dir() const { return m_dir; }
  std::filesystem::path image(const std::string& key) const { return file(key, ".qcow2"); }
  std::filesystem::path meta_file(const std::string& key) const { return file(key, ".json"); }
  // KEY + suffix in the store (".kbundle", ".kernel", ...).
  std::filesystem::path file(const std::string& key, const std::string& suffix) const { return m_dir / (key + suffix); }
  // A layer is there only with its metadata, which is written after the image.
  bool has(const std::string& key) const;
  LayerMeta read(const std::string& key) const;
  // Copies `working` (a qcow2 whose writer has flushed and closed it) in as KEY's image,
  // sparse and atomic, with `cp` through `runner`; the layer counts once write() adds
  // its metadata.
  void put_image(util::Runner& runner, const std::filesystem::path& working, const std::string& key) const;
  // Publishes the metadata of a layer whose image is in place (atomic).
  void write(const LayerMeta& meta) const;

private:
  std::filesystem::path m_dir;
};

} // namespace kiln::build
