#!/usr/bin/env bash
# One idempotent setup step for both README commands: installs the Debian packages moewb needs
# (only those missing), then configures and builds a Release tree in build/ (ccache-backed).
# Fast when everything is already there. Usage: scripts/setup.sh [extra cmake -D options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${MOEWB_BUILD_DIR:-$ROOT/build}"

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  qt6-base-dev libqcustomplot-dev libgl-dev
  libtorch-dev libopenblas0-pthread libgloo-dev
  libhdf5-dev hdf5-tools nlohmann-json3-dev libpcre2-dev
  python3 python3-numpy python3-h5py
  xvfb xauth
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# libtorch must run on OpenBLAS, not Debian's reference BLAS (~40x slower).
if command -v update-alternatives >/dev/null; then
  blas="$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')"
  case "$blas" in
    *openblas*|"") ;;
    *) echo "setup: warning: libblas.so.3 points to $blas, not OpenBLAS; moewb will be slow" >&2 ;;
  esac
fi

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
ccache --max-size=5G >/dev/null 2>&1 || true

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
elif (($#)); then
  cmake "$BUILD" "$@"
fi
cmake --build "$BUILD" -j "$(nproc)"
