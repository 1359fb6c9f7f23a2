#!/bin/bash
# kiln-node reimage against `bmaptool copy` and `dd`: the same root file system image
# written to the same target (slot B of an A/B disk, reached through a loop device),
# then a rewrite of the unchanged image (kiln-node's compare path). Two cases in one run:
#   1 GiB image, DATA_MIB of data, the disk a file on the work directory's disk;
#   4 GiB image, 4 x DATA_MIB of data, the disk a file on tmpfs (a stand-in for a fast
#     device: what is left is kiln-node's own cost, not the disk's).
# With OLD_NODE, a second kiln-node binary (an older build) runs the same writes, so the
# old and new figures come from the same run.
#
#   tests/bench/reimage-vs-bmaptool.sh [BUILD_DIR] [DATA_MIB] [OLD_NODE]
#
# Needs root (loop devices, tmpfs), bmaptool (bmap-tools), sfdisk (fdisk), mkfs.ext4,
# python3. The bundle is packed here with python's tarfile from bmaptool's own bmap, so
# kiln-node and bmaptool copy exactly the same ranges; it is unsigned
# (--no-verify-signature): signature checking costs microseconds and is not what is
# measured. Page caches are dropped before each run, and every writer ends with its data
# on the device (fsync): kiln-node and bmaptool by themselves, dd through conv=fsync.
# kiln-node also reads every mapped byte back; the others do not.
set -euo pipefail

build=${1:-build}
data_mib=${2:-300}
node=$(realpath "$build/builder/kiln-node")
old_node=${3:+$(realpath "$3")}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-bench.XXXXXX")
loops=()
mounts=()
cleanup() {
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

# bench_case LABEL IMAGE_MIB DATA_MIB DIR: one image, its bundle and an A/B disk in DIR.
bench_case() {
  local label=$1 image_mib=$2 data_mib=$3 dir=$4
  say "== $label: rootfs of ${image_mib} MiB ext4 with ${data_mib} MiB of incompressible files"
  mkdir -p "$dir/tree/usr/lib/bench"
  for i in $(seq 1 $((data_mib / 10))); do
    head -c $((10 << 20)) /dev/urandom > "$dir/tree/usr/lib/bench/f$i"
  done
  mkfs.ext4 -q -F -O ^metadata_csum -E root_owner=0:0 -d "$dir/tree" "$dir/rootfs.img" "${image_mib}M"
  rm -rf "$dir/tree"
  bmaptool -q create -o "$dir/rootfs.bmap" "$dir/rootfs.img"
  pack_bundle "$dir"

  local slot_mib=$((image_mib + 256))
  truncate -s $((2 * slot_mib + 64))M "$dir/disk.img"
  printf 'label: gpt\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649, name=kiln-bios\nsize=2MiB, type=U, name=kiln-esp\nsize=8MiB, name=kiln-boot\nsize=%sMiB, name=kiln-a\nsize=%sMiB, name=kiln-b\nname=kiln-data\n' \
    "$slot_mib" "$slot_mib" | sfdisk -q "$dir/disk.img"
  local parts boot_start b_start b_size
  parts=$(sfdisk -J "$dir/disk.img" | python3 -c \
    'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"]; print(p[2]["start"]*512, p[4]["start"]*512, p[4]["size"]*512)')
  read -r boot_start b_start b_size <<< "$parts"
  mkdir -p "$dir/boot/grub"
  grub-editenv "$dir/boot/grub/grubenv" create
  grub-editenv "$dir/boot/grub/grubenv" set kiln_order="A B" kiln_A_state=good kiln_A_tries=0 kiln_B_state=empty kiln_B_tries=0
  mkfs.ext4 -q -F -O ^metadata_csum -d "$dir/boot" "$dir/boot.fs" 8M
  dd if="$dir/boot.fs" of="$dir/disk.img" bs=1M seek=$((boot_start >> 20)) conv=notrunc status=none
  cp "$dir/boot.fs" "$dir/boot.clean"

  local disk_loop slot_loop
  disk_loop=$(losetup --show -f "$dir/disk.img"); loops+=("$disk_loop")
  slot_loop=$(losetup --show -f -o "$b_start" --sizelimit "$b_size" "$dir/disk.img"); loops+=("$slot_loop")
  garbage() { # fill the image's extent of the slot with non-zero bytes: every writer starts from dirt
    dd if=/dev/urandom of="$slot_loop" bs=4M count=$((image_mib / 4)) conv=fsync status=none
  }
  fresh_env() { # slot B empty again, no journal: each kiln-node run starts as the first did
    dd if="$dir/boot.clean" of="$disk_loop" bs=1M seek=$((boot_start >> 20)) conv=fsync status=none
  }
  run() { # name, command...
    local name=$1; shift
    drop_caches
    local t0; t0=$(now)
    "$@" > "$dir/out.$name" 2> "$dir/err.$name" || { cat "$dir/err.$name" >&2; exit 1; }
    local t1; t1=$(now)
    elapsed "$t0" "$t1"
  }
  reimage() { "$1" --disk "$disk_loop" --booted A --json reimage "$dir/bench.kbundle" --no-verify-signature; }

  local t_new t_rew_new t_old=- t_rew_old=- t_bmap t_dd t_read
  garbage; fresh_env
  t_new=$(run new reimage "$node")
  t_rew_new=$(run rewrite-new reimage "$node")
  if [ -n "$old_node" ]; then
    garbage; fresh_env
    t_old=$(run old reimage "$old_node")
    t_rew_old=$(run rewrite-old reimage "$old_node")
  fi
  garbage
  t_bmap=$(run bmaptool bmaptool -q copy --bmap "$dir/rootfs.bmap" "$dir/rootfs.img" "$slot_loop")
  garbage
  t_dd=$(run dd dd if="$dir/rootfs.img" of="$slot_loop" bs=4M conv=fsync status=none)
  t_read=$(run read dd if="$slot_loop" of=/dev/null bs=4M count=$((image_mib / 4)) status=none)

  local mapped mode
  mapped=$(python3 -c "import json; print(json.load(open('$dir/out.new'))['mapped_bytes'] >> 20)")
  mode=$(python3 -c "import json; j=json.load(open('$dir/out.rewrite-new')); print(j['write_mode'], j['written_bytes'])")
  # The device's floor for a verified write: the mapped bytes written at dd's write
  # bandwidth plus read back at its read bandwidth.
  local floor
  floor=$(python3 -c "print(f'{$mapped / ($image_mib / $t_dd) + $mapped / ($image_mib / $t_read):.2f}')")
  printf '\n%s: image %s MiB, mapped %s MiB\n' "$label" "$image_mib" "$mapped"
  printf '| writer | old kiln-node | new kiln-node | bmaptool copy | dd bs=4M |\n|---|---|---|---|---|\n'
  printf '| write the image | %s s | %s s | %s s | %s s |\n' "$t_old" "$t_new" "$t_bmap" "$t_dd"
  printf '| rewrite it unchanged | %s s | %s s | – | – |\n' "$t_rew_old" "$t_rew_new"
  printf 'new rewrite: mode and bytes written: %s\n' "$mode"
  printf 'ratios: new/bmaptool %s' "$(ratio "$t_new" "$t_bmap")"
  [ -n "$old_node" ] && printf ', old/bmaptool %s' "$(ratio "$t_old" "$t_bmap")"
  printf ', new rewrite/bmaptool %s, new/device floor %s (floor %s s: mapped bytes written + read back at dd'"'"'s speeds)\n' \
    "$(ratio "$t_rew_new" "$t_bmap")" "$(ratio "$t_new" "$floor")" "$floor"
}

pack_bundle() { # DIR: DIR/bench.kbundle from DIR/rootfs.img and DIR/rootfs.bmap
python3 - "$1" <<'EOF'
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
}

bench_case "1 GiB slot image, disk file on $(findmnt -no FSTYPE -T "$work")" 1024 "$data_mib" "$work/small"
mkdir -p "$work/tmpfs"
mount -t tmpfs -o size=$((2 * 4352 + 4 * data_mib + 2048))M kiln-bench "$work/tmpfs"
mounts+=("$work/tmpfs")
bench_case "4 GiB slot image, disk file on tmpfs" 4096 $((4 * data_mib)) "$work/tmpfs"
