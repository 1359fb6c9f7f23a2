// The PXE installer ramdisk of an A/B image: the image's own initramfs, then kiln's
// gzip'd cpio with /init, busybox and the kiln-node artifact (the same tree kiln puts
// into slot A) and nothing of the build host's libraries. Checked with the real tools:
// busybox sh parses /init, busybox cpio lists and unpacks the archive, and the unpacked
// artifact is the artifact, file by file.
#include "core/crypto/sha256.hpp"
#include "core/crypto/signing.hpp"
#include "core/util/fs.hpp"
#include "image/formats/pxe_installer.hpp"
#include "support/node_artifact.hpp"
#include "support/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

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
  for (const char* key :
       {"kiln.install_url", "kiln.install_disk", "kiln.install_verify", "kiln.install_done", "kiln.install_failed"}) {
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
  auto made =
    util::run({"sh", "-c", "cd \"$0\" && echo init | busybox cpio -o -H newc > ../image.cpio", image_root.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  fs::create_directories(dir / "keys");
  crypto::KeyPairFiles key = crypto::generate_keypair(dir / "keys", "release");

  const fs::path artifact = test::make_node_artifact(dir / "artifact");

  formats::InstallerInputs in;
  in.image_initramfs = dir / "image.cpio";
  in.node_artifact = artifact;
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

  // Exactly kiln's files and the artifact's: no libraries collected from the host.
  std::vector<std::string> names = cpio_list(dir / "kiln.cpio.gz");
  std::vector<std::string> expected = {
    "init", "kiln", "kiln/bin", "kiln/bin/busybox", "kiln/udhcpc.script", "kiln/trust.d", "kiln/trust.d/release.pem"};
  for (fs::recursive_directory_iterator it(artifact), end; it != end; ++it) {
    expected.push_back(it->path().lexically_relative(artifact).string());
  }
  std::sort(names.begin(), names.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(names, expected);

  // Unpacked, the artifact is the same tree (same digest: contents, modes, symlinks).
  fs::path root = dir / "unpacked";
  fs::create_directories(root);
  auto unpack =
    util::run({"sh", "-c", "cd \"$0\" && gzip -dc < ../kiln.cpio.gz | busybox cpio -i -d 2>/dev/null", root.string()});
  ASSERT_EQ(unpack.exit_code, 0) << unpack.err;
  fs::path unpacked_node = dir / "unpacked-node";
  fs::create_directories(unpacked_node);
  fs::rename(root / "usr", unpacked_node / "usr");
  EXPECT_EQ(crypto::sha256_tree(unpacked_node), crypto::sha256_tree(artifact));
  EXPECT_EQ(fs::read_symlink(unpacked_node / "usr/lib/kiln/node/lib/libnode.so"), "libnode.so.1");
  // /init runs the artifact's launcher at its node path; no loader or library path of ours.
  std::string init = util::read_file(root / "init");
  EXPECT_NE(init.find("node() { /usr/bin/kiln-node \"$@\"; }"), std::string::npos);
  EXPECT_EQ(init.find("--library-path"), std::string::npos);
  EXPECT_EQ(init.find("/kiln/lib"), std::string::npos);
}

// The installer is the same bytes whenever it is written (gzip's header would carry the
// moment of writing).
TEST_F(PxeInstaller, WrittenTwiceASecondApartIsTheSameBytes)
{
  test::require_program("busybox", "busybox-static");
  test::write_text(dir / "image.cpio", "");
  formats::InstallerInputs in;
  in.image_initramfs = dir / "image.cpio";
  in.node_artifact = test::make_node_artifact(dir / "artifact");
  in.busybox = formats::find_static_busybox();
  formats::write_installer_initramfs(in, dir / "first.initrd");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  formats::write_installer_initramfs(in, dir / "second.initrd");
  EXPECT_EQ(crypto::sha256_file(dir / "first.initrd"), crypto::sha256_file(dir / "second.initrd"));
}

TEST_F(PxeInstaller, ASingleExecutableArtifactBecomesUsrBinKilnNode)
{
  test::require_program("busybox", "busybox-static");
  test::write_text(dir / "image.cpio", "");
  formats::InstallerInputs in;
  in.image_initramfs = dir / "image.cpio";
  in.node_artifact = KILN_NODE_BIN;
  in.busybox = formats::find_static_busybox();
  formats::write_installer_initramfs(in, dir / "node.initrd");
  fs::copy_file(dir / "node.initrd", dir / "kiln.cpio.gz");
  std::vector<std::string> names = cpio_list(dir / "kiln.cpio.gz");
  EXPECT_NE(std::find(names.begin(), names.end(), "usr/bin/kiln-node"), names.end());
  for (const auto& name : names) {
    EXPECT_EQ(name.find("/lib"), std::string::npos) << name;
  }
  fs::path root = dir / "unpacked";
  fs::create_directories(root);
  auto unpack =
    util::run({"sh", "-c", "cd \"$0\" && gzip -dc < ../kiln.cpio.gz | busybox cpio -i -d 2>/dev/null", root.string()});
  ASSERT_EQ(unpack.exit_code, 0) << unpack.err;
  EXPECT_EQ(util::read_file(root / "usr/bin/kiln-node"), util::read_file(KILN_NODE_BIN));
  EXPECT_EQ(fs::status(root / "usr/bin/kiln-node").permissions() & fs::perms::owner_exec, fs::perms::owner_exec);
}

TEST_F(PxeInstaller, MissingImageInitramfsNamesIt)
{
  formats::InstallerInputs in;
  in.image_initramfs = dir / "absent.img";
  in.node_artifact = test::make_node_artifact(dir / "artifact");
  in.busybox = "/bin/busybox";
  Error e = test::error_of([&] { formats::write_installer_initramfs(in, dir / "x.initrd"); });
  EXPECT_NE(std::string(e.what()).find("absent.img"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(dir / "x.initrd"));
}

} // namespace
} // namespace kiln
