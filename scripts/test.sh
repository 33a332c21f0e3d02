#!/usr/bin/env bash
# Runs the whole nnmark test suite: builds with CMake and with Meson and runs every
# test in both, then once more under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: scripts/test.sh [--quick]   (--quick: the CMake build only)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  -h|--help) sed -n '2,4p' "$0" | sed 's/^# //'; exit 0 ;;
  "") ;;
  *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
jobs="$(nproc)"
passed=0; failed=0; failures=()
start=$SECONDS

# Meson must list every source file that CMake finds by globbing.
for f in tests/*/test_*.cpp; do
  grep -q "'${f#tests/}'" tests/meson.build ||
    { echo "test.sh: $f is missing from tests/meson.build (run scripts/gen-meson-tests.py)" >&2; exit 1; }
done
for f in examples/nnmark/*.cpp; do
  grep -q "'${f#examples/}'" examples/meson.build || { echo "test.sh: $f is missing from examples/meson.build" >&2; exit 1; }
done

# run_ctest NAME BUILD_DIR [cmake options...]
run_ctest() {
  local name="$1" dir="$2"; shift 2
  echo "== $name: configure and build ($dir) at $((SECONDS - start)) s"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== $name: test at $((SECONDS - start)) s"
  local log="$dir/ctest.log" rc=0
  (cd "$dir" && ctest --output-on-failure -j 1 2>&1) | tee "$log" || rc=$?
  count_results "$name" "$log" "$rc"
}

# count_results NAME LOG RC: adds the passed/failed tests of a ctest or meson log.
count_results() {
  local name="$1" log="$2" rc="$3" p f
  p=$(grep -cE '^ *[0-9]+/[0-9]+ (Test +#[0-9]+: .* Passed|.* OK )' "$log" || true)
  f=$(grep -cE '^ *[0-9]+/[0-9]+ (Test +#[0-9]+: .*(Failed|Exception|Timeout)|.* (FAIL|TIMEOUT|ERROR) )' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failures+=("$name")
}

# The benchmarks are compiled by the Meson build (and run by scripts/bench.sh), not here.
run_ctest cmake build -DNNMARK_BENCH=OFF
if [ "$quick" -eq 0 ]; then
  # The CMake build above is the optimized one users run; the Meson build proves the
  # second build system and runs the suite again at -O1, which halves its compile time
  # (the benchmarks keep their own -O3) and tries the code at another optimization level.
  echo "== meson: configure and build (build-meson, -O1) at $((SECONDS - start)) s"
  if [ -d build-meson ]; then meson configure build-meson -Doptimization=1 >/dev/null
  else meson setup build-meson -Doptimization=1 >/dev/null; fi
  meson compile -C build-meson -j "$jobs"
  echo "== meson: test at $((SECONDS - start)) s"
  rc=0; meson test -C build-meson --print-errorlogs --num-processes 1 2>&1 | tee build-meson/test.log || rc=$?
  count_results meson build-meson/test.log "$rc"

  # Sanitizers: -O1 without debug info keeps the instrumented build and run short
  # (reports still name the functions).
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_ctest asan-ubsan build-asan -DNNMARK_SANITIZE=ON -DNNMARK_BENCH=OFF -DCMAKE_CXX_FLAGS_RELEASE="-O1"
fi

echo "== test.sh finished in $((SECONDS - start)) s"
[ ${#failures[@]} -eq 0 ] || echo "failed in: ${failures[*]}"
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
