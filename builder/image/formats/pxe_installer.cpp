#include "image/formats/pxe_installer.hpp"

#include "core/archive/error.hpp"
#include "core/archive/handles.hpp"
#include "core/crypto/signing.hpp"
#include "core/recipe/node_artifact.hpp"
#include "core/util/error.hpp"
#include "core/util/fs.hpp"
#include "core/util/process.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <fstream>
#include <memory>
#include <set>
#include <unistd.h>

namespace kiln::formats {

namespace fs = std::filesystem;

namespace {

// Kept as literals so they read as the shell scripts they are.
const char* const k_init = R"SH(#!/kiln/bin/busybox sh
# kiln PXE installer: writes the image named by kiln.install_url onto a disk with
# kiln-node, then reboots into it. Drivers come from the image's own initramfs.
export PATH=/kiln/bin:/usr/sbin:/usr/bin:/sbin:/bin
/kiln/bin/busybox mkdir -p /kiln/bin /proc /sys /dev /run /tmp /etc
/kiln/bin/busybox --install -s /kiln/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1

say() { echo "kiln-installer: $*"; }
arg() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}"; return 0 ;; esac
  done
  return 1
}
after() {
  case "$1" in
    reboot) sync; reboot -f ;;
    poweroff) sync; poweroff -f ;;
  esac
  say "starting a shell (exit to reboot)"
  setsid cttyhack sh
  sync
  reboot -f
}
failed() {
  say "FAILED: $*"
  after "$(arg kiln.install_failed || echo shell)"
}
node() { /usr/bin/kiln-node "$@"; }

url=$(arg kiln.install_url)
[ -n "$url" ] || failed "no kiln.install_url= on the kernel command line (the URL of NAME.raw)"

# Drivers: the image initramfs's udev loads what the hardware needs; without one,
# modprobe every modalias the kernel reports.
udevd=""
for candidate in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd /sbin/udevd; do
  [ -x "$candidate" ] && udevd=$candidate && break
done
if [ -n "$udevd" ]; then
  $udevd --daemon --resolve-names=never
  udevadm trigger --type=subsystems --action=add
  udevadm trigger --type=devices --action=add
  udevadm settle --timeout=60
else
  for alias in $(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u); do
    modprobe -q -b "$alias" 2>/dev/null
  done
fi

disk=$(arg kiln.install_disk)
if [ -z "$disk" ]; then
  found=""
  for dev in /sys/block/*; do
    name=${dev##*/}
    case "$name" in loop*|ram*|sr*|fd*|zram*|dm-*|md*) continue ;; esac
    [ "$(cat "$dev/removable" 2>/dev/null)" = 1 ] && continue
    found="$found /dev/$name"
  done
  set -- $found
  [ $# -eq 1 ] || failed "set kiln.install_disk= (disks found:${found:- none})"
  disk=$1
fi
i=0
while [ ! -b "$disk" ]; do
  i=$((i + 1))
  [ $i -le 30 ] || failed "$disk is not a block device"
  sleep 1
done

# Network: DHCP on the first interface that gets a lease.
case "$url" in
  http://*|https://*)
    ok=""
    for i in 1 2 3 4 5 6 7 8 9 10; do
      for dev in /sys/class/net/*; do
        iface=${dev##*/}
        [ "$iface" = lo ] && continue
        ip link set "$iface" up
        if udhcpc -i "$iface" -n -q -t 3 -s /kiln/udhcpc.script >/dev/null 2>&1; then
          ok=$iface
          break 2
        fi
      done
      sleep 1
    done
    [ -n "$ok" ] || failed "no network interface got a DHCP lease"
    say "network up on $ok ($(ip -4 -o addr show dev "$ok" | awk '{print $4}'))"
    ;;
esac

set -- install "$url" --disk "$disk" --trust /kiln/trust.d
[ "$(arg kiln.install_verify)" = no ] && set -- "$@" --no-verify-signature
case "$url" in https://*) [ -f /kiln/ca.pem ] && set -- "$@" --ca-file /kiln/ca.pem ;; esac
say "installing $url on $disk"
if node "$@"; then
  say "installed $url on $disk"
  after "$(arg kiln.install_done || echo reboot)"
else
  failed "kiln-node install exited with status $?"
fi
)SH";

const char* const k_udhcpc_script = R"SH(#!/kiln/bin/busybox sh
# busybox udhcpc calls this with the lease in the environment.
case "$1" in
  deconfig)
    ifconfig "$interface" 0.0.0.0 up
    ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    for r in $router; do
      route add default gw "$r" dev "$interface"
      break
    done
    : > /etc/resolv.conf
    for d in $dns; do
      echo "nameserver $d" >> /etc/resolv.conf
    done
    ;;
esac
exit 0
)SH";

using ArchivePtr = archive::WriteHandle;
using EntryPtr = archive::EntryHandle;

// True when the ELF file has a PT_INTERP program header (it is dynamically linked).
bool
has_interpreter(const fs::path& file)
{
  std::string data = util::read_file(file);
  if (data.size() < sizeof(Elf64_Ehdr) || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0 ||
      data[EI_CLASS] != ELFCLASS64) {
    throw Error(file.string(), "not a 64-bit ELF executable");
  }
  Elf64_Ehdr eh;
  std::memcpy(&eh, data.data(), sizeof(eh));
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    std::uint64_t off = eh.e_phoff + static_cast<std::uint64_t>(i) * eh.e_phentsize;
    if (off + sizeof(Elf64_Phdr) > data.size()) {
      throw Error(file.string(), "truncated ELF program headers");
    }
    Elf64_Phdr ph;
    std::memcpy(&ph, data.data() + off, sizeof(ph));
    if (ph.p_type == PT_INTERP) {
      return true;
    }
  }
  return false;
}

class CpioWriter {
public:
  // Appends the archive at `fd`'s current offset.
  CpioWriter(int fd, const std::string& subject) : m_subject(subject), m_a(archive_write_new())
  {
    if (!m_a) {
      throw Error(subject, "cannot create a libarchive writer");
    }
    check(archive_write_set_format_cpio_newc(m_a.get()));
    // gzip: every kernel kiln images boot (EL7's 3.10 too) unpacks it.
    check(archive_write_add_filter_gzip(m_a.get()));
    // libarchive stamps the moment of writing into the gzip header unless told not to: the
    // installer must be the same bytes in every build of the same inputs.
    check(archive_write_set_filter_option(m_a.get(), "gzip", "timestamp", nullptr));
    check(archive_write_set_bytes_in_last_block(m_a.get(), 1));
    check(archive_write_open_fd(m_a.get(), fd));
  }

  void directory(const std::string& name)
  {
    if (!m_dirs.insert(name).second) {
      return;
    }
    EntryPtr e = entry(name, AE_IFDIR, 0755);
    check(archive_write_header(m_a.get(), e.get()));
  }

  void file(const std::string& name, const std::string& data, unsigned mode)
  {
    parents(name);
    EntryPtr e = entry(name, AE_IFREG, mode);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    check(archive_write_header(m_a.get(), e.get()));
    if (!data.empty() && archive_write_data(m_a.get(), data.data(), data.size()) < 0) {
      fail();
    }
  }

  void symlink(const std::string& name, const std::string& target)
  {
    parents(name);
    EntryPtr e = entry(name, AE_IFLNK, 0777);
    archive_entry_set_symlink(e.get(), target.c_str());
    check(archive_write_header(m_a.get(), e.get()));
  }

  void close() { check(archive_write_close(m_a.get())); }

private:
  void parents(const std::string& name)
  {
    for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1)) {
      directory(name.substr(0, pos));
    }
  }

  EntryPtr entry(const std::string& name, unsigned type, unsigned mode)
  {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), mode);
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_mtime(e.get(), 0, 0); // reproducible
    archive_entry_set_nlink(e.get(), type == AE_IFDIR ? 2 : 1);
    archive_entry_set_size(e.get(), 0); // cpio wants a size on every entry
    return e;
  }

  void check(int rc)
  {
    if (rc != ARCHIVE_OK) {
      fail();
    }
  }

  [[noreturn]] void fail() { throw Error(m_subject, archive::error_message(m_a.get(), "libarchive failed")); }

  std::string m_subject;
  ArchivePtr m_a;
  std::set<std::string> m_dirs;
};

// The kiln-node artifact at the paths it has on a node: the ROOT tree as it is (files,
// symlinks, modes), or a single executable as usr/bin/kiln-node.
void
add_node_artifact(CpioWriter& cpio, const recipe::NodeArtifact& node)
{
  if (!node.directory) {
    cpio.file(std::string(recipe::k_node_artifact_bin), util::read_file(node.path), 0755);
    return;
  }
  std::error_code ec;
  std::vector<fs::path> entries;
  for (fs::recursive_directory_iterator it(node.path, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec) {
    throw Error(node.path.string(), "cannot read the kiln-node artifact: " + ec.message());
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& path : entries) {
    const std::string name = path.lexically_relative(node.path).generic_string();
    fs::file_status st = fs::symlink_status(path, ec);
    if (fs::is_symlink(st)) {
      cpio.symlink(name, fs::read_symlink(path).string());
    } else if (fs::is_directory(st)) {
      cpio.directory(name);
    } else if (fs::is_regular_file(st)) {
      cpio.file(name, util::read_file(path), static_cast<unsigned>(st.permissions()) & 07777);
    } else {
      throw Error(path.string(), "unsupported file type in the kiln-node artifact");
    }
  }
}

} // namespace

fs::path
find_static_busybox()
{
  fs::path busybox;
  if (const char* env = std::getenv("KILN_BUSYBOX"); env != nullptr && *env != '\0') {
    busybox = env;
  } else if (std::string p = util::find_program("busybox"); !p.empty()) {
    busybox = p;
  } else if (fs::is_regular_file("/bin/busybox")) {
    busybox = "/bin/busybox";
  }
  if (busybox.empty() || !fs::is_regular_file(busybox)) {
    throw Error("output pxe", "the installer needs a static busybox (Debian: busybox-static; or set KILN_BUSYBOX)");
  }
  if (has_interpreter(fs::canonical(busybox))) {
    throw Error(busybox.string(), "busybox is dynamically linked; the installer needs a static one "
                                  "(Debian: busybox-static; or set KILN_BUSYBOX)");
  }
  return busybox;
}

std::string
installer_init_script()
{
  return k_init;
}

std::string
installer_ipxe_script(const std::string& stem, const std::string& kernel_cmdline)
{
  return "#!ipxe\n"
         "# kiln: installs " +
         stem +
         " (an A/B whole-disk image) onto this machine's disk and reboots into it.\n"
         "# Set kiln_install_url to the URL of " +
         stem + ".raw (" + stem + ".raw.bmap and " + stem +
         ".manifest.json beside it)\n"
         "# and optionally kiln_install_disk (e.g. /dev/sda), then chain this script.\n"
         "isset ${kiln_install_url} || goto no_url\n"
         "kernel " +
         stem + ".vmlinuz initrd=" + stem + ".initrd" + (kernel_cmdline.empty() ? "" : " " + kernel_cmdline) + " " +
         std::string(k_install_url_key) + "=${kiln_install_url} " + std::string(k_install_disk_key) +
         "=${kiln_install_disk}\n"
         "initrd " +
         stem +
         ".initrd\n"
         "boot\n"
         ":no_url\n"
         "echo kiln: set kiln_install_url to the URL of " +
         stem + ".raw, then chain " + stem +
         ".ipxe\n"
         "exit 1\n";
}

void
write_installer_initramfs(const InstallerInputs& inputs, const fs::path& out)
{
  const std::string subject = "output pxe installer";
  const recipe::NodeArtifact node = recipe::describe_node_artifact(inputs.node_artifact);

  util::AtomicFile file(out);
  // The image's own initramfs first (its drivers and tools), padded to 4 bytes as the
  // kernel expects before the next archive.
  std::string image = util::read_file(inputs.image_initramfs);
  image.resize((image.size() + 3) / 4 * 4, '\0');
  file.write(image);
  {
    CpioWriter cpio(file.fd(), subject);
    cpio.file("init", installer_init_script(), 0755);
    cpio.file("kiln/udhcpc.script", k_udhcpc_script, 0755);
    cpio.file("kiln/bin/busybox", util::read_file(inputs.busybox), 0755);
    add_node_artifact(cpio, node);
    cpio.directory("kiln/trust.d");
    for (const auto& key : inputs.trust_keys) {
      cpio.file("kiln/trust.d/" + key.stem().string() + ".pem", util::read_file(key), 0644);
    }
    if (inputs.revoked) {
      cpio.file("kiln/trust.d/" + std::string(crypto::k_revocation_list_name), util::read_file(*inputs.revoked), 0644);
    }
    if (!inputs.ca_bundle.empty()) {
      cpio.file("kiln/ca.pem", util::read_file(inputs.ca_bundle), 0644);
    }
    cpio.close();
  }
  file.commit();
}

} // namespace kiln::formats
