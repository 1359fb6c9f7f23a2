#!/usr/bin/env bash
# Fails when kiln-node needs libguestfs; as a control, kiln itself must need it
# (so the check cannot pass by reading nothing).
set -euo pipefail
node=$1 kiln=$2
if readelf -d "$node" | grep -q 'libguestfs'; then
  echo "kiln-node links libguestfs:"; readelf -d "$node" | grep NEEDED; exit 1
fi
readelf -d "$kiln" | grep -q 'libguestfs' || { echo "control failed: kiln does not show libguestfs"; exit 1; }
echo "kiln-node NEEDED: $(readelf -d "$node" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
