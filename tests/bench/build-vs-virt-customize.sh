#!/usr/bin/env bash
# Benchmark (not a test): kiln build against the equivalent virt-customize command line,
# on the same Debian base image, in one run. Prints a table and the ratios the build
# issue asks for. Usage: tests/bench/build-vs-virt-customize.sh [BUILD_DIR] [OLD_BUILD_DIR]
#   - the two-stage preparation: cold, nothing changed, the last stage changed;
#   - the four disk formats (raw + bmap, qcow2, vmdk, vhd) from the cached final layer:
#     kiln converts them side by side; with OLD_BUILD_DIR an older kiln does the same
#     work in the same run (its figure beside the new one);
#   - the same recipe with `layout: ab`: the A/B stage alone (slot A copied from the
#     cached final layer inside the appliance, GRUB, the slot bundle), which
#     virt-customize has no counterpart for; and the A/B recipe cold, where the A/B stage
#     shares the stages' launch (with OLD_BUILD_DIR, an older kiln's cold A/B build too).
# Needs: a built kiln, libguestfs-tools (virt-customize), mmdebstrap (for the base).
# Where qemu aborts under KVM, run it with LIBGUESTFS_BACKEND_SETTINGS=force_tcg: kiln's
# probe finds that out by itself, virt-customize does not.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${1:-$root/build}/builder/kiln
old_kiln=${2:+$2/builder/kiln}
work=$(mktemp -d /var/tmp/kiln-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v virt-customize >/dev/null || { echo "bench: virt-customize missing (apt-get install libguestfs-tools)" >&2; exit 2; }

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

# The base: a Debian bookworm image made by kiln itself, outside the timed runs.
cat >"$work/base.yaml" <<'YAML'
name: benchbase
base:
  bootstrap:
    suite: bookworm
    variant: minbase
    # A kernel and GRUB: the A/B layout installs the image's own boot loader.
    packages: [systemd, systemd-sysv, passwd, udev, kmod, initramfs-tools, linux-image-cloud-amd64, grub2-common,
               grub-pc-bin, grub-efi-amd64-bin, xfsprogs]
size: 2G
sysprep: false
trim: false
outputs: {formats: [qcow2]}
YAML
"$kiln" build "$work/base.yaml" -o "$work/base" --cache "$work/cache" >/dev/null 2>&1
base=$work/base/benchbase.qcow2

# The typical DC/OS preparation: a file, an overlay, SELinux mode, a mask, a group, a first-boot unit.
mkdir -p "$work/overlays/node/etc/docker"
echo '{"storage-driver": "overlay2"}' >"$work/overlays/node/etc/docker/daemon.json"
echo v1 >"$work/last.txt"
cat >"$work/prep.yaml" <<YAML
name: bench
base: {path: $base, format: qcow2}
sysprep: false
trim: false
outputs: {formats: [qcow2]}
stages:
  - name: prep
    steps:
      - file: {path: /etc/motd, content: "dc/os node\n"}
      - overlay: node
      - selinux: {mode: permissive}
      - systemd: {mask: [firewalld.service]}
      - group: {name: nogroup2, gid: 65533}
      - firstboot: {name: hello, script: 'echo hello'}
  - name: last
    steps:
      - file: {path: /etc/kiln-last, src: last.txt}
YAML

t=$(now)
"$kiln" build -v "$work/prep.yaml" -o "$work/out" --cache "$work/kcache" >"$work/cold.log" 2>&1
kiln_cold=$(elapsed "$t")
t=$(now)
"$kiln" build "$work/prep.yaml" -o "$work/out" --cache "$work/kcache" >/dev/null 2>&1
kiln_noop=$(elapsed "$t")
echo v2 >"$work/last.txt"
t=$(now)
"$kiln" build "$work/prep.yaml" -o "$work/out" --cache "$work/kcache" >/dev/null 2>&1
kiln_last=$(elapsed "$t")

# The four disk formats from the cached final layer (a fresh output directory each).
formats=(--format raw --format qcow2 --format vmdk --format vhd)
t=$(now)
"$kiln" build "$work/prep.yaml" -o "$work/formats-new" --cache "$work/kcache" "${formats[@]}" >/dev/null 2>&1
kiln_formats=$(elapsed "$t")
kiln_formats_old=-
if [ -n "$old_kiln" ]; then
  # Its own copy of the cache (layers it cannot read are rebuilt here, untimed).
  cp -a --sparse=always "$work/kcache" "$work/kcache-old"
  "$old_kiln" build "$work/prep.yaml" -o "$work/formats-old" --cache "$work/kcache-old" >/dev/null 2>&1
  t=$(now)
  "$old_kiln" build "$work/prep.yaml" -o "$work/formats-old" --cache "$work/kcache-old" "${formats[@]}" >/dev/null 2>&1
  kiln_formats_old=$(elapsed "$t")
fi

# layout: ab on the same stages: only the A/B stage runs.
sed 's/^name: bench$/name: bench-ab/' "$work/prep.yaml" >"$work/prep-ab.yaml"
cat >>"$work/prep-ab.yaml" <<'YAML'
layout: ab
ab: {esp_size: 32M, boot_size: 64M, slot_size: 2G, data_size: 512M}
YAML
t=$(now)
"$kiln" build "$work/prep-ab.yaml" -o "$work/out-ab" --cache "$work/kcache" >"$work/ab.log" 2>&1 || { cat "$work/ab.log" >&2; exit 1; }
kiln_ab=$(elapsed "$t")

# The A/B recipe cold, in a cache of its own: the stages and the A/B stage share one
# launch (an older kiln launches again for the A/B stage and inspects the guest again).
t=$(now)
"$kiln" build -v "$work/prep-ab.yaml" -o "$work/out-ab-cold" --cache "$work/kcache-ab" >"$work/ab-cold.log" 2>&1 ||
  { cat "$work/ab-cold.log" >&2; exit 1; }
kiln_ab_cold=$(elapsed "$t")
kiln_ab_cold_old=-
if [ -n "$old_kiln" ]; then
  t=$(now)
  "$old_kiln" build "$work/prep-ab.yaml" -o "$work/out-ab-cold-old" --cache "$work/kcache-ab-old" >/dev/null 2>&1
  kiln_ab_cold_old=$(elapsed "$t")
fi

cp --sparse=always "$base" "$work/vc.qcow2"
cat >"$work/firstboot.sh" <<'SH'
echo hello
SH
t=$(now)
virt-customize -q -a "$work/vc.qcow2" --no-network \
  --write /etc/motd:"dc/os node" \
  --copy-in "$work/overlays/node/etc:/" \
  --run-command 'mkdir -p /etc/selinux; echo SELINUX=permissive > /etc/selinux/config' \
  --link /dev/null:/etc/systemd/system/firewalld.service \
  --run-command 'groupadd -g 65533 nogroup2' \
  --firstboot "$work/firstboot.sh" \
  --upload "$work/last.txt":/etc/kiln-last >/dev/null
vc=$(elapsed "$t")

printf '%-44s %8s\n' "run" "seconds"
printf '%-44s %8.1f\n' "kiln build, cold (2 stages, 1 launch)" "$kiln_cold" \
  "kiln build, nothing changed" "$kiln_noop" \
  "kiln build, one file of the last stage changed" "$kiln_last" \
  "virt-customize, the same steps" "$vc" \
  "kiln build, layout ab (the A/B stage alone)" "$kiln_ab" \
  "kiln build, layout ab, cold (1 launch)" "$kiln_ab_cold" \
  "kiln build, raw+qcow2+vmdk+vhd from the cache" "$kiln_formats"
[ -n "$old_kiln" ] && printf '%-44s %8.1f\n' "older kiln, the same four formats" "$kiln_formats_old" \
  "older kiln, layout ab, cold" "$kiln_ab_cold_old"
echo "where the cold build's time went (kiln build -v):"
grep -o 'time: .*' "$work/cold.log" | sed 's/^/  /'
echo "where the cold A/B build's time went (kiln build -v):"
grep -o 'time: .*' "$work/ab-cold.log" | sed 's/^/  /'
printf 'ratio kiln cold / virt-customize: %.2f\n' "$(echo "$kiln_cold / $vc" | bc -l)"
printf 'ratio kiln last-stage rebuild / virt-customize: %.2f\n' "$(echo "$kiln_last / $vc" | bc -l)"
printf 'ratio kiln cold + A/B stage / virt-customize: %.2f\n' "$(echo "($kiln_cold + $kiln_ab) / $vc" | bc -l)"
[ -n "$old_kiln" ] && printf 'ratio four formats new / old: %.2f\n' "$(echo "$kiln_formats / $kiln_formats_old" | bc -l)" &&
  printf 'ratio cold A/B build new / old: %.2f\n' "$(echo "$kiln_ab_cold / $kiln_ab_cold_old" | bc -l)"
true
