#!/bin/bash
# fsimage::make_ext4_from_tar on a real tree: the tree tarred twice in two member orders
# (readdir's and sorted), each made into an ext4 image of SIZE_MIB; prints the times,
# checks the two images are byte-identical and that e2fsck finds nothing to fix.
#
#   tests/bench/ext4-from-tar.sh [BUILD_DIR] [TREE] [SIZE_MIB]
#
# Defaults: build, /usr/share, 1536. Needs GNU tar and e2fsprogs; no root.
set -euo pipefail

build=${1:-build}
tree=${2:-/usr/share}
size_mib=${3:-1536}
program=$(realpath "$build/tests/ext4-from-tar")
work=$(mktemp -d "${TMPDIR:-/var/tmp}/kiln-ext4-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

tar -C "$tree" --numeric-owner --xattrs -cf "$work/readdir.tar" .
tar -C "$tree" --numeric-owner --xattrs --sort=name -cf "$work/sorted.tar" .
echo "tree $tree: $(du -sm "$work/readdir.tar" | cut -f1) MiB of tar"
for order in readdir sorted; do
  printf '%-8s ' "$order"
  "$program" "$work/$order.tar" "$work/$order.ext4" "$size_mib" 1700000000
done
a=$(sha256sum <"$work/readdir.ext4")
b=$(sha256sum <"$work/sorted.ext4")
[ "$a" = "$b" ] && echo "identical images: ${a%% *}" || { echo "images differ"; exit 1; }
e2fsck -fn "$work/readdir.ext4" >/dev/null 2>&1 && echo "e2fsck -fn: clean"
