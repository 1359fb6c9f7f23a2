#!/bin/bash
# kiln-node reimage against `bmaptool copy` and `dd`: the same root file system image
# written to the same target (slot B of an A/B disk image file, reached through a loop
# device), then a rewrite of the unchanged image (kiln-node's skip path).
#
#   tests/bench/reimage-vs-bmaptool.sh [BUILD_DIR] [DATA_MIB]
#
# Needs root (loop devices), bmaptool (bmap-tools), sfdisk (fdisk), mkfs.ext4, python3.
# The bundle is packed here with python's tarfile from bmaptool's own bmap, so kiln-node
# and bmaptool copy exactly the same ranges; it is unsigned (--no-verify-signature):
# signature checking costs microseconds and is not what is measured. Page caches are
# dropped before each run, and every writer ends with its data on the device (fsync):
# kiln-node and bmaptool by themselves, dd through conv=fsync.
set -euo pipefail

build=${1:-build}
data_mib=${2:-300}
node=$(realpath "$build/builder/kiln-node")
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench.XXXXXX")
loops=()
cleanup() {
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

say "== rootfs: 1 GiB ext4 with ${data_mib} MiB of incompressible files"
mkdir -p "$work/tree/usr/lib/bench"
for i in $(seq 1 $((data_mib / 10))); do
  head -c $((10 << 20)) /dev/urandom > "$work/tree/usr/lib/bench/f$i"
done
mkfs.ext4 -q -F -O ^metadata_csum -E root_owner=0:0 -d "$work/tree" "$work/rootfs.img" 1G
rm -rf "$work/tree"
bmaptool -q create -o "$work/rootfs.bmap" "$work/rootfs.img"

say "== bundle (python tarfile, members in abi.hpp order)"
python3 - "$work" <<'EOF'
import hashlib, io, json, re, sys, tarfile
work = sys.argv[1]
bmap = open(f"{work}/rootfs.bmap", "rb").read()
size = int(re.search(rb"<ImageSize>\s*(\d+)", bmap).group(1))
ranges = [tuple(map(int, m.group(1).split(b"-"))) if b"-" in m.group(1) else (int(m.group(1)),) * 2
          for m in re.finditer(rb">\s*([0-9-]+)\s*</Range>", bmap)]
img = open(f"{work}/rootfs.img", "rb")
def chunks():
    for first, last in ranges:
        img.seek(first * 4096)
        left = min((last + 1) * 4096, size) - first * 4096
        while left:
            b = img.read(min(left, 1 << 20)); left -= len(b); yield b
h, n = hashlib.sha256(), 0
for b in chunks(): h.update(b); n += len(b)
manifest = {"kiln_manifest": 1, "name": "bench", "kiln_version": "0.1.0", "libguestfs_version": "",
            "recipe": {"name": "bench", "digest": "a" * 64}, "inputs": [], "stages": [], "packages": [],
            "files": [{"name": "rootfs.bmap", "role": "bmap", "format": "bmap",
                       "sha256": hashlib.sha256(bmap).hexdigest(), "size": len(bmap)},
                      {"name": "rootfs.data", "role": "rootfs-data", "format": "packed-ranges",
                       "sha256": h.hexdigest(), "size": n}]}
text = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
class Joined(io.RawIOBase):
    def __init__(self): self.it, self.buf = chunks(), b""
    def readable(self): return True
    def readinto(self, b):
        while not self.buf:
            try: self.buf = next(self.it)
            except StopIteration: return 0
        k = min(len(b), len(self.buf)); b[:k] = self.buf[:k]; self.buf = self.buf[k:]; return k
with tarfile.open(f"{work}/bench.kbundle", "w", format=tarfile.PAX_FORMAT) as t:
    for name, data in (("manifest.json", text), ("rootfs.bmap", bmap)):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    i = tarfile.TarInfo("rootfs.data"); i.size = n; t.addfile(i, io.BufferedReader(Joined(), 1 << 20))
EOF

say "== A/B disk: slots of 1.25 GiB"
truncate -s 3G "$work/disk.img"
printf 'label: gpt\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=kiln-bios\nsize=2MiB, type=U, name=kiln-esp\nsize=8MiB, name=kiln-boot\nsize=1280MiB, name=kiln-a\nsize=1280MiB, name=kiln-b\nname=kiln-data\n' |
  sfdisk -q "$work/disk.img"
read -r boot_start boot_size < <(sfdisk -J "$work/disk.img" | python3 -c \
  'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"]; print(p[2]["start"]*512, p[2]["size"]*512)')
read -r b_start b_size < <(sfdisk -J "$work/disk.img" | python3 -c \
  'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"]; print(p[4]["start"]*512, p[4]["size"]*512)')
mkdir -p "$work/boot/grub"
grub-editenv "$work/boot/grub/grubenv" create
grub-editenv "$work/boot/grub/grubenv" set kiln_order="A B" kiln_A_state=good kiln_A_tries=0 kiln_B_state=empty kiln_B_tries=0
mkfs.ext4 -q -F -O ^metadata_csum -d "$work/boot" "$work/boot.fs" 8M
dd if="$work/boot.fs" of="$work/disk.img" bs=1M seek=$((boot_start >> 20)) conv=notrunc status=none

disk_loop=$(losetup --show -f "$work/disk.img"); loops+=("$disk_loop")
slot_loop=$(losetup --show -f -o "$b_start" --sizelimit "$b_size" "$work/disk.img"); loops+=("$slot_loop")
garbage() { # fill the slot's first GiB with non-zero bytes so every writer starts from dirt
  dd if=/dev/urandom of="$slot_loop" bs=4M count=256 conv=fsync status=none
}

run() { # label, command...
  local label=$1; shift
  drop_caches
  local t0; t0=$(now)
  "$@" > "$work/out.$label" 2> "$work/err.$label" || { cat "$work/err.$label" >&2; exit 1; }
  local t1; t1=$(now)
  elapsed "$t0" "$t1"
}

garbage
t_kiln=$(run kiln "$node" --disk "$disk_loop" --booted A --json reimage "$work/bench.kbundle" --no-verify-signature)
t_rewrite=$(run rewrite "$node" --disk "$disk_loop" --booted A --json reimage "$work/bench.kbundle" --no-verify-signature)
garbage
t_bmap=$(run bmaptool bmaptool -q copy --bmap "$work/rootfs.bmap" "$work/rootfs.img" "$slot_loop")
garbage
t_dd=$(run dd dd if="$work/rootfs.img" of="$slot_loop" bs=4M conv=fsync status=none)

mapped=$(python3 -c "import json; print(json.load(open('$work/out.kiln'))['mapped_bytes'] >> 20)")
written=$(python3 -c "import json; print(json.load(open('$work/out.rewrite'))['written_bytes'])")
printf 'image 1024 MiB, mapped %s MiB; target: a loop device over slot B of a disk image file\n' "$mapped"
printf '%-34s %8s s\n' "kiln-node reimage (bundle)" "$t_kiln" "bmaptool copy (raw + bmap)" "$t_bmap" \
  "dd bs=4M conv=fsync (raw)" "$t_dd" "kiln-node reimage, unchanged image" "$t_rewrite"
printf 'rewrite wrote %s bytes\n' "$written"
python3 -c "print(f'ratio kiln/bmaptool {$t_kiln/$t_bmap:.2f}, kiln/dd {$t_kiln/$t_dd:.2f}, rewrite/kiln {$t_rewrite/$t_kiln:.2f}')"
