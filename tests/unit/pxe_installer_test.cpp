// The PXE installer ramdisk of an A/B image: the image's own initramfs, then kiln's
// gzip'd cpio with /init, busybox, kiln-node and every library it loads. Checked with
// the real tools: busybox sh parses /init, busybox cpio lists and unpacks the archive,
// and the unpacked kiln-node runs with nothing but the bundled libraries.
#include "core/crypto/signing.hpp"
#include "core/util/fs.hpp"
#include "image/formats/pxe_installer.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

namespace kiln {
namespace {

namespace fs = std::filesystem;

class PxeInstaller : public ::testing::Test {
protected:
  test::ScratchDir dir;
};

// Splits the installer into the image's part and kiln's gzip stream (the first gzip
// magic after the image's bytes).
std::string
kiln_part(const std::string& installer, size_t image_size)
{
  EXPECT_GE(installer.size(), image_size);
  return installer.substr((image_size + 3) / 4 * 4);
}

std::vector<std::string>
cpio_list(const fs::path& gz)
{
  auto r = util::run({"sh", "-c", "gzip -dc < \"$0\" | busybox cpio -t 2>/dev/null", gz.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return test::lines(r.out);
}

TEST_F(PxeInstaller, InitScriptIsValidShell)
{
  test::require_program("busybox", "busybox-static");
  test::write_text(dir / "init", formats::installer_init_script());
  auto r = util::run({"busybox", "sh", "-n", (dir / "init").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string init = formats::installer_init_script();
  for (const char* key : {"kiln.install_url", "kiln.install_disk", "kiln.install_verify", "kiln.install_done",
                          "kiln.install_failed"}) {
    EXPECT_NE(init.find(key), std::string::npos) << key;
  }
}

TEST_F(PxeInstaller, IpxeScriptPassesTheInstallKeys)
{
  std::string s = formats::installer_ipxe_script("node", "console=ttyS0");
  EXPECT_EQ(s.rfind("#!ipxe\n", 0), 0u);
  EXPECT_NE(s.find("kernel node.vmlinuz initrd=node.initrd console=ttyS0 kiln.install_url=${kiln_install_url} "
                   "kiln.install_disk=${kiln_install_disk}\n"),
            std::string::npos)
    << s;
  EXPECT_NE(s.find("isset ${kiln_install_url} || goto no_url"), std::string::npos) << s;
}

TEST_F(PxeInstaller, RefusesADynamicBusybox)
{
  ::setenv("KILN_BUSYBOX", "/bin/true", 1);
  Error e = test::error_of([] { formats::find_static_busybox(); });
  ::unsetenv("KILN_BUSYBOX");
  EXPECT_NE(std::string(e.what()).find("busybox-static"), std::string::npos) << e.what();
}

TEST_F(PxeInstaller, ImageInitramfsThenKilnsArchive)
{
  test::require_program("busybox", "busybox-static");
  // A stand-in image initramfs: an uncompressed cpio with the image's /init.
  fs::path image_root = dir / "image-root";
  test::write_text(image_root / "init", "#!/bin/sh\necho image init\n");
  auto made = util::run({"sh", "-c", "cd \"$0\" && echo init | busybox cpio -o -H newc > ../image.cpio",
                         image_root.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  fs::create_directories(dir / "keys");
  crypto::KeyPairFiles key = crypto::generate_keypair(dir / "keys", "release");

  formats::InstallerInputs in;
  in.image_initramfs = dir / "image.cpio";
  in.node_binary = KILN_NODE_BIN;
  in.busybox = formats::find_static_busybox();
  in.trust_keys = {key.public_key};
  fs::path out = dir / "node.initrd";
  formats::write_installer_initramfs(in, out);

  std::string image = util::read_file(in.image_initramfs);
  std::string installer = util::read_file(out);
  ASSERT_EQ(installer.compare(0, image.size(), image), 0) << "the image's initramfs comes first, unchanged";
  std::string ours = kiln_part(installer, image.size());
  ASSERT_GE(ours.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(ours[0]), 0x1f); // gzip
  EXPECT_EQ(static_cast<unsigned char>(ours[1]), 0x8b);
  test::write_text(dir / "kiln.cpio.gz", ours);

  std::vector<std::string> names = cpio_list(dir / "kiln.cpio.gz");
  for (const char* name : {"init", "kiln/bin/busybox", "kiln/bin/kiln-node", "kiln/udhcpc.script",
                           "kiln/trust.d/release.pem", "kiln/lib/libc.so.6", "kiln/lib/ld-linux-x86-64.so.2"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  for (const auto& lib : formats::shared_libraries(KILN_NODE_BIN)) {
    EXPECT_NE(std::find(names.begin(), names.end(), "kiln/lib/" + lib.filename().string()), names.end()) << lib;
  }

  // Unpacked, kiln-node runs through the bundled loader, and every library it loads
  // comes from the bundle.
  fs::path root = dir / "unpacked";
  fs::create_directories(root);
  auto unpack = util::run({"sh", "-c", "cd \"$0\" && gzip -dc < ../kiln.cpio.gz | busybox cpio -i -d 2>/dev/null",
                           root.string()});
  ASSERT_EQ(unpack.exit_code, 0) << unpack.err;
  const std::string loader = (root / "kiln/lib/ld-linux-x86-64.so.2").string();
  const std::string libs = (root / "kiln/lib").string();
  auto version = util::run({loader, "--library-path", libs, (root / "kiln/bin/kiln-node").string(), "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out.rfind("kiln-node ", 0), 0u) << version.out;
  auto trace = util::run({loader, "--list", "--library-path", libs, (root / "kiln/bin/kiln-node").string()});
  ASSERT_EQ(trace.exit_code, 0) << trace.err;
  for (const auto& line : test::lines(trace.out)) {
    auto arrow = line.find("=> ");
    if (arrow != std::string::npos) {
      EXPECT_EQ(line.find(libs), arrow + 3) << "loaded from outside the bundle: " << line;
    }
  }
  // /init names the bundled loader.
  std::string init = util::read_file(root / "init");
  EXPECT_NE(init.find("/kiln/lib/ld-linux-x86-64.so.2 --library-path /kiln/lib /kiln/bin/kiln-node"),
            std::string::npos);
  EXPECT_EQ(init.find("@LOADER@"), std::string::npos);
}

TEST_F(PxeInstaller, MissingImageInitramfsNamesIt)
{
  formats::InstallerInputs in;
  in.image_initramfs = dir / "absent.img";
  in.node_binary = KILN_NODE_BIN;
  in.busybox = "/bin/busybox";
  Error e = test::error_of([&] { formats::write_installer_initramfs(in, dir / "x.initrd"); });
  EXPECT_NE(std::string(e.what()).find("absent.img"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(dir / "x.initrd"));
}

} // namespace
} // namespace kiln
