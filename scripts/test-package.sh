#!/usr/bin/env bash
# Installs nnmark the ways a user would and builds tests/package/consumer against each:
#   1. cmake --install (the library alone: no tool, tests or benchmarks) into a temporary
#      prefix; the consumer built with find_package(nnmark) and with pkg-config from it
#   2. meson install into another prefix; the consumer built with pkg-config from it,
#      and with nnmark as a Meson subproject (dependency('nnmark'))
#   3. the two installed trees hold the same files (CMake's package aside) and the same
#      nnmark.pc, and neither mentions what only the tool and the tests use (CLI11,
#      cpp-httplib, doctest); the package files name none of the project's
#      own flags (warnings, -march=native, sanitizers)
# Each consumer fails unless NNMARK_VERSION_STRING is the version its build system found,
# so CMakeLists.txt, meson.build and core/version.hpp cannot drift apart.
# Usage: scripts/test-package.sh   (about 40 s on two cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "test-package.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
consumer="$root/tests/package/consumer"
start=$SECONDS

step() { printf '== test-package: %s at %d s\n' "$*" $((SECONDS - start)); }
fail() { echo "test-package.sh: $*" >&2; exit 1; }

# pkg_config_consumer PREFIX NAME: main.cpp built with the nnmark.pc under PREFIX, and run.
pkg_config_consumer() {
  local pc_path="$1/share/pkgconfig" out="$work/consumer-$2" version
  version="$(PKG_CONFIG_PATH="$pc_path" pkg-config --modversion nnmark)"
  # shellcheck disable=SC2046  # the flags are words
  g++ -std=c++20 -DNNMARK_PACKAGE_VERSION="\"$version\"" "$consumer/main.cpp" -o "$out" \
    $(PKG_CONFIG_PATH="$pc_path" pkg-config --cflags --libs nnmark)
  "$out"
}

step "cmake --install"
cmake -S "$root" -B "$work/cmake-build" -G Ninja -DNNMARK_TOOL=OFF -DNNMARK_TESTS=OFF -DNNMARK_BENCH=OFF >/dev/null
cmake --install "$work/cmake-build" --prefix "$work/cmake-prefix" >/dev/null

step "consumer with find_package(nnmark CONFIG)"
cmake -S "$consumer" -B "$work/consumer-cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/cmake-prefix" >/dev/null
cmake --build "$work/consumer-cmake-build" >/dev/null
"$work/consumer-cmake-build/consumer"

step "consumer with pkg-config, CMake's install"
pkg_config_consumer "$work/cmake-prefix" cmake-pc

step "meson install"
meson setup "$work/meson-build" "$root" --prefix "$work/meson-prefix" -Dtool=false -Dtests=false -Dbench=false >/dev/null
meson install -C "$work/meson-build" --quiet >/dev/null

step "consumer with pkg-config, Meson's install"
pkg_config_consumer "$work/meson-prefix" meson-pc

step "consumer with nnmark as a Meson subproject"
cp -r "$consumer" "$work/superproject"
mkdir "$work/superproject/subprojects"
ln -s "$root" "$work/superproject/subprojects/nnmark"
meson setup "$work/superproject-build" "$work/superproject" --force-fallback-for=nnmark >/dev/null
ninja -C "$work/superproject-build" >/dev/null
"$work/superproject-build/consumer"

step "the installed trees"
installed_files() { (cd "$1" && find . -type f ! -path './share/cmake/nnmark/*' | sort); }
diff <(installed_files "$work/cmake-prefix") <(installed_files "$work/meson-prefix") ||
  fail "cmake --install and meson install put different files (< cmake, > meson)"
diff "$work/cmake-prefix/share/pkgconfig/nnmark.pc" "$work/meson-prefix/share/pkgconfig/nnmark.pc" ||
  fail "CMake and Meson configure nnmark.pc differently (< cmake, > meson)"
for tree in "$work/cmake-prefix" "$work/meson-prefix"; do
  leaks="$(grep -rIli -E 'cli11|httplib|doctest' "$tree" || true)"
  [ -z "$leaks" ] || fail "expected none of CLI11, cpp-httplib, doctest in the installed tree, found them in: $leaks"
  # The package files, not the headers, whose comments may name flags.
  flags="$(grep -rIl -E -e '-march=|-W(all|extra|pedantic)|-fsanitize' "$tree/share" || true)"
  [ -z "$flags" ] || fail "expected none of the project's own build flags in the package files, found them in: $flags"
done
echo "test-package.sh: $(installed_files "$work/cmake-prefix" | wc -l) files installed alike by CMake and Meson; 4 consumers built and ran, in $((SECONDS - start)) s"
