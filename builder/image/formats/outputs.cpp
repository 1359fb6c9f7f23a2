#include "image/formats/outputs.hpp"

#include "core/bmap/bmap.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "image/formats/pxe_installer.hpp"
#include "image/formats/qemu_img.hpp"

#include <cerrno>
#include <unistd.h>

namespace kiln::formats {

namespace fs = std::filesystem;

namespace {

const std::uint64_t k_mib = 1 << 20;

void
copy_out(const fs::path& from, const fs::path& to)
{
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    throw Error(to.string(), "cannot copy " + from.string() + ": " + ec.message());
  }
}

} // namespace

std::vector<Written>
write_format(util::Runner& runner, recipe::OutputFormat format_kind, const Source& source, const std::string& stem,
             const fs::path& dir, bool compress)
{
  using recipe::OutputFormat;
  const std::string format = recipe::format_name(format_kind);
  const std::string subject = "output " + format;
  const std::string image = source.image.string();
  if (format_kind == OutputFormat::qcow2) {
    std::vector<std::string> args{"convert", "-q", "-O", "qcow2"};
    if (compress) {
      args.push_back("-c");
    }
    args.insert(args.end(), {image, (dir / (stem + ".qcow2")).string()});
    qemu_img(runner, subject, args);
    return {{stem + ".qcow2", "image", "qcow2"}};
  }
  if (format_kind == OutputFormat::raw) {
    fs::path raw = dir / (stem + ".raw");
    qemu_img(runner, subject, {"convert", "-q", "-O", "raw", image, raw.string()});
    bmap::write_bmap_file(raw, dir / (stem + ".raw.bmap"));
    return {{stem + ".raw", "image", "raw"}, {stem + ".raw.bmap", "bmap", "bmap"}};
  }
  if (format_kind == OutputFormat::vmdk) {
    qemu_img(
      runner, subject,
      {"convert", "-q", "-O", "vmdk", "-o", "subformat=streamOptimized", image, (dir / (stem + ".vmdk")).string()});
    return {{stem + ".vmdk", "image", "vmdk"}};
  }
  if (format_kind == OutputFormat::vhd) {
    // Azure wants a fixed VHD whose virtual size is a whole number of MiB; force_size
    // keeps qemu from rounding it to a CHS geometry.
    std::uint64_t size = image_info(runner, source.image).virtual_size;
    std::string input = image;
    fs::path aligned = dir / ("." + stem + ".vhd-aligned.qcow2");
    if (size % k_mib != 0) {
      create_overlay(runner, subject, source.image, "qcow2", aligned, (size / k_mib + 1) * k_mib);
      input = aligned.string();
    }
    qemu_img(
      runner, subject,
      {"convert", "-q", "-O", "vpc", "-o", "subformat=fixed,force_size=on", input, (dir / (stem + ".vhd")).string()});
    fs::remove(aligned);
    return {{stem + ".vhd", "image", "vhd"}};
  }
  if (format_kind == OutputFormat::pxe) {
    if (source.kernel.empty() || source.initramfs.empty()) {
      throw Error("output pxe", "the image has no kernel and initramfs under /boot");
    }
    copy_out(source.kernel, dir / (stem + ".vmlinuz"));
    if (source.layout == recipe::Layout::ab) {
      // An A/B image is not booted over the network but installed: the installer
      // ramdisk writes it to the machine's disk (pxe_installer.hpp).
      InstallerInputs in;
      in.image_initramfs = source.initramfs;
      in.node_artifact = source.node_artifact;
      in.busybox = find_static_busybox();
      in.trust_keys = source.trust_keys;
      in.revoked = source.revoked;
      if (fs::is_regular_file("/etc/ssl/certs/ca-certificates.crt")) {
        in.ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
      }
      write_installer_initramfs(in, dir / (stem + ".initrd"));
      util::write_file_atomic(dir / (stem + ".ipxe"), installer_ipxe_script(stem, source.kernel_cmdline));
      return {
        {stem + ".vmlinuz", "kernel", "pxe"}, {stem + ".initrd", "initramfs", "pxe"}, {stem + ".ipxe", "ipxe", "pxe"}};
    }
    copy_out(source.initramfs, dir / (stem + ".initrd"));
    std::string script = "#!ipxe\n"
                         "# Boots " +
                         stem +
                         " over the network: kernel and initramfs from beside this script.\n"
                         "kernel " +
                         stem + ".vmlinuz initrd=" + stem + ".initrd" +
                         (source.kernel_cmdline.empty() ? "" : " " + source.kernel_cmdline) +
                         "\n"
                         "initrd " +
                         stem +
                         ".initrd\n"
                         "boot\n";
    util::write_file_atomic(dir / (stem + ".ipxe"), script);
    return {
      {stem + ".vmlinuz", "kernel", "pxe"}, {stem + ".initrd", "initramfs", "pxe"}, {stem + ".ipxe", "ipxe", "pxe"}};
  }
  throw Error("output " + format, "no writer for this format (internal error)");
}

} // namespace kiln::formats
