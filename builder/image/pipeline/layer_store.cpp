#include "image/pipeline/layer_store.hpp"

#include "core/util/error.hpp"
#include "core/util/fs.hpp"

namespace kiln::build {

namespace fs = std::filesystem;
using nlohmann::json;

json
to_json(const LayerMeta& meta)
{
  json j = {{"key", meta.key}, {"name", meta.name}};
  if (!meta.recipe.empty()) {
    j["recipe"] = meta.recipe;
  }
  if (!meta.source.empty()) {
    j["source"] = meta.source;
  }
  if (meta.guest) {
    j["guest"] = {{"distro", meta.guest->distro},
                  {"package_format", meta.guest->package_format},
                  {"package_manager", meta.guest->package_manager},
                  {"major_version", meta.guest->major_version}};
    if (!meta.guest->root.empty()) {
      j["guest"]["root"] = meta.guest->root;
      j["guest"]["mounts"] = meta.guest->mounts;
    }
  }
  if (meta.name == "finalize" || meta.name == "ab" || !meta.packages.empty()) {
    json packages = json::array();
    for (const auto& p : meta.packages) {
      packages.push_back({{"name", p.name}, {"version", p.version}, {"arch", p.arch}});
    }
    j["packages"] = packages;
    j["kernel"] = nullptr;
  }
  if (meta.kernel) {
    j["kernel"] = {{"version", meta.kernel->version},
                   {"kernel", meta.kernel->kernel.string()},
                   {"initramfs", meta.kernel->initramfs.string()}};
  }
  if (!meta.dcos_verify.is_null()) {
    j["dcos_verify"] = meta.dcos_verify;
  }
  if (meta.ab) {
    const AbDisk& ab = *meta.ab;
    json parts = json::array();
    for (const auto& p : ab.layout.parts) {
      parts.push_back({{"name", p.name}, {"type", p.type}, {"start", p.start}, {"size", p.size}, {"guid", p.guid}});
    }
    j["ab"] = {{"disk_guid", ab.layout.disk_guid},
               {"disk_size", ab.layout.disk_size},
               {"partitions", parts},
               {"filesystems", ab.filesystems},
               {"kernel", ab.kernel},
               {"initrd", ab.initrd},
               {"grub", ab.grub},
               {"grub_dirs", ab.grub_dirs},
               {"bundle", ab.bundle},
               {"bundle_manifest", ab.bundle_manifest},
               {"bundle_digest", ab.bundle_digest}};
  }
  return j;
}

LayerMeta
layer_meta_from_json(const json& j, const std::string& subject)
{
  try {
    LayerMeta m;
    m.key = j.at("key").get<std::string>();
    m.name = j.at("name").get<std::string>();
    m.recipe = j.value("recipe", "");
    m.source = j.value("source", "");
    if (j.contains("guest")) {
      const json& g = j.at("guest");
      GuestFacts facts;
      facts.distro = g.at("distro").get<std::string>();
      facts.package_format = g.at("package_format").get<std::string>();
      facts.package_manager = g.at("package_manager").get<std::string>();
      facts.major_version = g.at("major_version").get<int>();
      // Layers of older kilns have neither: a stage on top of them inspects the guest.
      facts.root = g.value("root", "");
      facts.mounts = g.value("mounts", std::map<std::string, std::string>{});
      m.guest = std::move(facts);
    }
    for (const auto& p : j.value("packages", json::array())) {
      m.packages.push_back(
        {p.at("name").get<std::string>(), p.at("version").get<std::string>(), p.at("arch").get<std::string>()});
    }
    if (j.contains("kernel") && j.at("kernel").is_object()) {
      const json& k = j.at("kernel");
      m.kernel = KernelFiles{k.at("version").get<std::string>(), k.at("kernel").get<std::string>(),
                             k.at("initramfs").get<std::string>()};
    }
    m.dcos_verify = j.value("dcos_verify", json());
    if (j.contains("ab")) {
      const json& a = j.at("ab");
      AbDisk ab;
      ab.layout.disk_guid = a.at("disk_guid").get<std::string>();
      ab.layout.disk_size = a.at("disk_size").get<std::uint64_t>();
      for (const auto& p : a.at("partitions")) {
        ab.layout.parts.push_back({p.at("name").get<std::string>(), p.at("type").get<std::string>(),
                                   p.at("start").get<std::uint64_t>(), p.at("size").get<std::uint64_t>(),
                                   p.at("guid").get<std::string>()});
      }
      ab.filesystems = a.at("filesystems");
      ab.kernel = a.at("kernel").get<std::string>();
      ab.initrd = a.at("initrd").get<std::string>();
      ab.grub = a.at("grub").get<std::string>();
      ab.grub_dirs = a.at("grub_dirs").get<std::vector<std::string>>();
      ab.bundle = a.at("bundle").get<std::string>();
      ab.bundle_manifest = a.at("bundle_manifest").get<std::string>();
      ab.bundle_digest = a.at("bundle_digest").get<std::string>();
      m.ab = std::move(ab);
    }
    return m;
  } catch (const json::exception& e) {
    throw Error(subject, std::string("not a layer's metadata: ") + e.what());
  }
}

bool
LayerStore::has(const std::string& key) const
{
  return fs::is_regular_file(image(key)) && fs::is_regular_file(meta_file(key));
}

LayerMeta
LayerStore::read(const std::string& key) const
{
  const fs::path path = meta_file(key);
  json j;
  try {
    j = json::parse(util::read_file(path));
  } catch (const json::parse_error& e) {
    throw Error(path.string(), std::string("not JSON: ") + e.what());
  }
  return layer_meta_from_json(j, path.string());
}

void
LayerStore::write(const LayerMeta& meta) const
{
  util::write_file_atomic(meta_file(meta.key), to_json(meta).dump(2) + "\n");
}

void
LayerStore::put_image(util::Runner& runner, const fs::path& working, const std::string& key) const
{
  const fs::path target = image(key);
  util::AtomicFile out(target);
  util::RunResult r = runner.run({"cp", "--sparse=always", working.string(), out.temp_path().string()});
  if (!r.ok()) {
    throw Error(target.string(), "cannot copy the stage layer: " + r.tail(2));
  }
  out.commit();
}

} // namespace kiln::build
