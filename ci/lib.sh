# Shared by ci/test and ci/bake. Sourced, not run.
ci_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Installs what ci/packages.txt lists and is missing: idempotent, and quick when all is there.
ci_ensure_packages() {
  local wanted missing=()
  wanted=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ci_root/ci/packages.txt")
  for pkg in $wanted; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ci: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Configures and builds into build/ (or $KILN_BUILD_DIR).
ci_build() {
  local dir=${KILN_BUILD_DIR:-$ci_root/build}
  cmake -S "$ci_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}
