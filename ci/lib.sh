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

# Configures and builds into build/ (or $KILN_BUILD_DIR): the Release build. Arguments
# replace the build folder and add cache settings (ci/sanitize: its own folder, Debug,
# KILN_SANITIZE=ON).
ci_build() {
  local dir=${1:-${KILN_BUILD_DIR:-$ci_root/build}}
  [ $# -gt 0 ] && shift
  cmake -S "$ci_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

# One line on the free space where the suite writes (the build tree, with its test cache,
# and $TMPDIR, with each test's scratch), and a warning when it is below what a whole run
# needs at its peak (README, "Measured"). A full disk otherwise surfaces as some tool's
# "Write error" in whichever test ran out first.
ci_report_disk() {
  local need_gib=$1 dir=${KILN_BUILD_DIR:-$ci_root/build} tmp=${TMPDIR:-/tmp} line="" low=0
  mkdir -p "$dir"
  local seen=""
  for d in "$dir" "$tmp"; do
    local fs free_kb
    fs=$(df -P "$d" | awk 'NR==2 {print $6}')
    case " $seen " in *" $fs "*) continue ;; esac
    seen="$seen $fs"
    free_kb=$(df -Pk "$d" | awk 'NR==2 {print $4}')
    line="$line${line:+, }$((free_kb / 1048576)) GiB free on $fs ($d)"
    [ "$free_kb" -ge $((need_gib * 1048576)) ] || low=1
  done
  echo "ci: $line"
  if [ "$low" -eq 1 ]; then
    echo "ci: warning: the whole suite needs about ${need_gib} GiB at its peak; tests may fail for want of disk" >&2
  fi
}
