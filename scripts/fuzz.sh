#!/usr/bin/env bash
# fuzz.sh [SECONDS] [TARGET...]: build and run the libFuzzer targets tests/fuzz/fuzz_*.cpp.
#
# Each target (all of them when none is named; name them as "idx" or "fuzz_idx") is
# built with clang++ -fsanitize=fuzzer,address,undefined and run for SECONDS seconds
# (default 60) on a copy of its seed corpus tests/fuzz/corpus/<name>/, so the
# repository's corpus is never changed. Binaries and any crashing inputs go to
# $NNMARK_FUZZ_OUT (default build-fuzz/ in the repository). Extra compiler flags can be
# given in $FUZZ_CXXFLAGS, extra libFuzzer flags in $FUZZ_ARGS.
# Exit code: 0 all targets clean, 1 a target failed, 2 usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${NNMARK_FUZZ_OUT:-$root/build-fuzz}"
cxx="${CXX_FUZZ:-clang++}"

# The comment block at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
seconds=60
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds="$1"; shift
fi

available=()
for source in "$root"/tests/fuzz/fuzz_*.cpp; do
  [[ -e "$source" ]] && available+=("$(basename "$source" .cpp)")
done
if [[ ${#available[@]} -eq 0 ]]; then
  echo "fuzz.sh: no fuzz targets found in $root/tests/fuzz/" >&2; exit 1
fi

targets=()
if [[ $# -eq 0 ]]; then
  targets=("${available[@]}")
else
  for name in "$@"; do
    name="fuzz_${name#fuzz_}"
    if [[ ! -f "$root/tests/fuzz/$name.cpp" ]]; then
      echo "fuzz.sh: unknown target '${name#fuzz_}'; available: ${available[*]#fuzz_}" >&2
      usage >&2; exit 2
    fi
    targets+=("$name")
  done
fi

command -v "$cxx" >/dev/null || { echo "fuzz.sh: $cxx not found (install clang)" >&2; exit 1; }
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/nnmark-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

failed=()
for target in "${targets[@]}"; do
  name="${target#fuzz_}"
  echo "== $name: build"
  # shellcheck disable=SC2086  # FUZZ_CXXFLAGS is a list of flags
  "$cxx" -std=c++20 -O1 -g -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    ${FUZZ_CXXFLAGS:-} -I"$root/include" -I/usr/include/stb "$root/tests/fuzz/$target.cpp" -o "$out/$target" -lz

  corpus="$work/$name"
  mkdir -p "$corpus" "$out/$name-artifacts"
  if [[ -d "$root/tests/fuzz/corpus/$name" ]]; then
    cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"
  else
    echo "fuzz.sh: no seed corpus tests/fuzz/corpus/$name/, starting from nothing" >&2
  fi

  echo "== $name: fuzz for ${seconds}s"
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  if "$out/$target" "$corpus" -max_total_time="$seconds" -print_final_stats=1 \
       -artifact_prefix="$out/$name-artifacts/" ${FUZZ_ARGS:-} 2>"$work/$name.log"; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$name.log" || true
    echo "== $name: clean"
  else
    tail -n 40 "$work/$name.log"
    echo "== $name: FAILED (crashing input in $out/$name-artifacts/)"
    failed+=("$name")
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: failures in: ${failed[*]}" >&2; exit 1
fi
echo "fuzz.sh: all targets ran ${seconds}s without a failure: ${targets[*]#fuzz_}"
