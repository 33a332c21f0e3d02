#!/usr/bin/env bash
# Runs the whole nnmark test suite: builds with CMake (optimized, as users build it) and
# with Meson (instrumented with AddressSanitizer + UndefinedBehaviorSanitizer) and runs
# every test in both; in between, scripts/test-package.sh installs nnmark both ways and
# builds a consumer project against each install.
# Usage: scripts/test.sh [--quick]   (--quick: the CMake build and the package test only)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  -h|--help) sed -n '2,6p' "$0" | sed 's/^# //'; exit 0 ;;
  "") ;;
  *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

bash scripts/install-deps.sh
jobs="$(nproc)"
passed=0; failed=0; skipped=0; failures=()
start=$SECONDS

# Meson must list every source file that CMake finds by globbing.
for f in tests/*/test_*.cpp; do
  grep -q "'${f#tests/}'" tests/meson.build ||
    { echo "test.sh: $f is missing from tests/meson.build (run scripts/gen-meson-tests.py)" >&2; exit 1; }
done
for f in tools/nnmark/*.cpp; do
  grep -q "'${f#tools/nnmark/}'" tools/nnmark/meson.build || { echo "test.sh: $f is missing from tools/nnmark/meson.build" >&2; exit 1; }
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

# count_results NAME LOG RC: adds the passed/failed/skipped tests of a ctest or meson log
# (a test program that exits 77 is "***Skipped" in ctest's log and "SKIP" in meson's).
count_results() {
  local name="$1" log="$2" rc="$3" p f s
  p=$(grep -cE '^ *[0-9]+/[0-9]+ (Test +#[0-9]+: .* Passed|.* OK )' "$log" || true)
  f=$(grep -cE '^ *[0-9]+/[0-9]+ (Test +#[0-9]+: .*(Failed|Exception|Timeout)|.* (FAIL|TIMEOUT|ERROR) )' "$log" || true)
  s=$(grep -cE '^ *[0-9]+/[0-9]+ (Test +#[0-9]+: .*\*\*\*Skipped|.* SKIP )' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$f" -eq 0 ] || failures+=("$name")
}

# run_entry NAME COMMAND...: COMMAND as one entry of the suite, passed when it exits 0.
run_entry() {
  local name="$1" rc=0; shift
  echo "== $name at $((SECONDS - start)) s"
  "$@" || rc=$?
  if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); echo "== $name: passed"
  else failed=$((failed + 1)); failures+=("$name"); echo "== $name: failed (exit $rc)"; fi
}

# The CMake build is the optimized one users run; it also compiles the benchmarks
# (scripts/bench.sh runs them).
run_ctest cmake build -DNNMARK_BENCH=ON
# nnmark installed by CMake and by Meson, used by a consumer project (about 40 s).
run_entry package bash scripts/test-package.sh
if [ "$quick" -eq 0 ]; then
  # The Meson build proves the second build system and is the sanitized run: ASan+UBSan
  # at -Og without debug info (reports still name the functions). Measured on two cores:
  # -Og builds the instrumented suite in 256 s against 562 s at -O1, and the tests run
  # as fast (83 s against 85 s). meson test halts on the first UBSan report and
  # LeakSanitizer checks the tool's processes too.
  echo "== meson + asan-ubsan: configure and build (build-meson) at $((SECONDS - start)) s"
  meson_options=(-Doptimization=g -Db_sanitize=address,undefined -Dbench=false)
  if [ -d build-meson ]; then meson configure build-meson "${meson_options[@]}" >/dev/null
  else meson setup build-meson "${meson_options[@]}" >/dev/null; fi
  meson compile -C build-meson -j "$jobs"
  echo "== meson + asan-ubsan: test at $((SECONDS - start)) s"
  rc=0
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-meson --print-errorlogs --num-processes 1 2>&1 | tee build-meson/test.log || rc=$?
  count_results meson-asan-ubsan build-meson/test.log "$rc"
fi

echo "== test.sh finished in $((SECONDS - start)) s"
[ ${#failures[@]} -eq 0 ] || echo "failed in: ${failures[*]}"
echo "suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
