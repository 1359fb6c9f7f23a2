// The layer store's metadata: one typed record whose JSON form round-trips, a layer that
// counts only with both its image and its metadata, and a damaged record refused with
// the file named.
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/pipeline/layer_store.hpp"
#include "support/fake_runner.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

namespace kiln::build {
namespace {

namespace fs = std::filesystem;

LayerMeta
ab_layer()
{
  LayerMeta m;
  m.key = std::string(64, 'c');
  m.name = "ab";
  m.recipe = "node";
  m.guest = GuestFacts{"/dev/sda1", "centos", "rpm", "yum", 7, {{"/", "/dev/sda1"}, {"/boot", "/dev/sda2"}}};
  m.packages = {{"docker-ce", "3:19.03.15-3.el7", "x86_64"}, {"ipset", "7.1-1.el7", "x86_64"}};
  m.kernel = KernelFiles{"3.10.0-1160.el7.x86_64", "/c/layers/k.kernel", "/c/layers/k.initramfs"};
  m.dcos_verify = nlohmann::json::array({{{"name", "docker"}, {"pass", true}}});
  AbDisk ab;
  ab.layout.disk_guid = "11111111-2222-4333-8444-555555555555";
  ab.layout.disk_size = 8ull << 30;
  ab.layout.parts = {
    {"kiln-a", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", 1 << 20, 2ull << 30, "guid-a"},
    {"kiln-b", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", (2ull << 30) + (1 << 20), 2ull << 30, "guid-b"}};
  ab.filesystems = {{"kiln-a", "uuid-a"}};
  ab.kernel = "vmlinuz-3.10.0-1160.el7.x86_64";
  ab.initrd = "initramfs-3.10.0-1160.el7.x86_64.img";
  ab.grub = "prebuilt-efi";
  ab.grub_dirs = {"/boot/kiln/grub2"};
  ab.bundle = m.key + ".kbundle";
  ab.bundle_manifest = "{\"name\":\"node\"}";
  ab.bundle_digest = std::string(64, 'd');
  m.ab = ab;
  return m;
}

TEST(LayerStore, MetadataRoundTripsThroughItsJsonForm)
{
  LayerMeta m = ab_layer();
  LayerMeta back = layer_meta_from_json(to_json(m), "test");
  EXPECT_EQ(to_json(back), to_json(m));
  ASSERT_TRUE(back.ab && back.guest && back.kernel);
  EXPECT_EQ(back.ab->layout.at("kiln-b").start, (2ull << 30) + (1 << 20));
  EXPECT_EQ(back.packages.at(0).version, "3:19.03.15-3.el7");
  EXPECT_EQ(back.kernel->initramfs, "/c/layers/k.initramfs");
  EXPECT_EQ(back.guest->root, "/dev/sda1");
  EXPECT_EQ(back.guest->mounts.at("/boot"), "/dev/sda2");
  EXPECT_NE(std::string(test::error_of([&] { back.ab->layout.at("kiln-c"); }).what()).find("no partition kiln-c"),
            std::string::npos);

  // A base layer has no guest, packages or kernel, and says so by leaving them out.
  LayerMeta base;
  base.key = "b";
  base.name = "base";
  base.source = "debian.tar";
  nlohmann::json j = to_json(base);
  EXPECT_EQ(j, nlohmann::json({{"key", "b"}, {"name", "base"}, {"source", "debian.tar"}}));
  EXPECT_FALSE(layer_meta_from_json(j, "test").guest);

  // A layer of an older kiln has the facts but not the mounts: read without them, so the
  // stage on top of it inspects the guest.
  nlohmann::json old = to_json(m);
  old["guest"].erase("root");
  old["guest"].erase("mounts");
  LayerMeta older = layer_meta_from_json(old, "test");
  ASSERT_TRUE(older.guest);
  EXPECT_EQ(older.guest->distro, "centos");
  EXPECT_TRUE(older.guest->root.empty());
  EXPECT_TRUE(older.guest->mounts.empty());
}

TEST(LayerStore, ALayerCountsOnlyWithItsMetadataAndADamagedOneIsNamed)
{
  test::ScratchDir dir;
  LayerStore store(dir.path());
  LayerMeta m = ab_layer();
  util::write_file_atomic(store.image(m.key), "qcow2 bytes");
  EXPECT_FALSE(store.has(m.key)); // the image alone is a layer being written
  store.write(m);
  EXPECT_TRUE(store.has(m.key));
  EXPECT_EQ(to_json(store.read(m.key)), to_json(m));
  EXPECT_EQ(store.file(m.key, ".kbundle"), dir.path() / (m.key + ".kbundle"));

  util::write_file_atomic(store.meta_file(m.key), "{\"key\": \"x\"}");
  Error e = test::error_of([&] { store.read(m.key); });
  EXPECT_EQ(e.subject(), store.meta_file(m.key).string());
  EXPECT_TRUE(e.reason().starts_with("not a layer's metadata")) << e.reason();
  util::write_file_atomic(store.meta_file(m.key), "{");
  EXPECT_TRUE(test::error_of([&] { store.read(m.key); }).reason().starts_with("not JSON")) << e.reason();
}

TEST(LayerStore, AStageImageIsCopiedInSparseAndAtomically)
{
  test::ScratchDir dir;
  LayerStore store(dir.path());
  const std::string key(64, 'e');
  test::FakeRunner runner;
  // The fake does what cp does: the copy appears at the destination it was given.
  runner.answer = [](const test::FakeRunner::Call& call) {
    util::write_file_atomic(call.argv.back(), "qcow2 bytes");
    util::RunResult r;
    r.exit_code = 0;
    return r;
  };
  store.put_image(runner, "/scratch/working.qcow2", key);
  ASSERT_EQ(runner.calls.size(), 1u);
  const auto& argv = runner.calls[0].argv;
  ASSERT_EQ(argv.size(), 4u);
  EXPECT_EQ(argv[0], "cp");
  EXPECT_EQ(argv[1], "--sparse=always");
  EXPECT_EQ(argv[2], "/scratch/working.qcow2");
  EXPECT_EQ(fs::path(argv[3]).parent_path(), dir.path()); // a temporary beside the image, renamed over it
  EXPECT_NE(fs::path(argv[3]), store.image(key));
  EXPECT_EQ(test::read_text(store.image(key)), "qcow2 bytes");
  EXPECT_FALSE(fs::exists(argv[3]));
  EXPECT_FALSE(store.has(key)); // no layer until its metadata is written

  // A copy that fails leaves neither the image nor the temporary.
  const std::string other(64, 'f');
  runner.fail_with(1, "cp: error writing '/c/layers/x': No space left on device\n");
  Error e = test::error_of([&] { store.put_image(runner, "/scratch/working.qcow2", other); });
  EXPECT_EQ(std::string(e.what()), store.image(other).string() +
                                     ": cannot copy the stage layer: cp: error writing '/c/layers/x': No space left "
                                     "on device");
  EXPECT_FALSE(fs::exists(store.image(other)));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

} // namespace
} // namespace kiln::build
