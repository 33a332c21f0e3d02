#!/usr/bin/env bash
# bench.sh [--quick] [--json] [--build-dir DIR] [--torch-malloc jemalloc|glibc]:
# nnmark against PyTorch, and against ONNX Runtime for inference, side by side.
#
# Installs what is missing (Debian's python3-torch, libopenblas0-openmp and
# libjemalloc2, with apt-get as root; the build dependencies are
# scripts/install-deps.sh's), says which BLAS torch uses, builds bench_models and
# bench_gemm (CMake, Release, -march=native) in build/ (or DIR), then measures, each
# case with nnmark and PyTorch one after the other, same thread count (1 and 2):
#   - paper-mnist and paper-cifar10: training images/s at batch 128, inference
#     images/s at batch 1 and 256, the ratio nnmark/PyTorch, GFLOP/s and the fraction
#     of the fp32 FMA peak (measured by bench_gemm, per core, times the threads); for
#     inference also ONNX Runtime (npm onnxruntime-node, installed into DIR/onnxruntime
#     with --ignore-scripts when missing: its CPU binaries ship in the package; the nets
#     exported from PyTorch, opset 13; bench/onnxruntime_bench.js, same threads and
#     batch) and the ratio to the faster of PyTorch and ONNX Runtime
#   - sgemm GFLOP/s at n = 256, 1024, 2048: nnmark, Eigen (bench_gemm) and OpenBLAS
#     (torch.mm); nnmark's fraction of the peak is against the FMA loop run in turns
#     with the product on as many threads (bench_gemm, 'pk/core'), since the VM's
#     speed drifts within seconds
#   - training thread scaling 1 -> 2, per network and framework, from training
#     windows at 1 and 2 threads taken in turns (5 rounds, the best of each thread
#     count): the cases above run every one-thread case first, minutes before the
#     two-thread ones, and a shared machine's speed drifts more than that over minutes;
#     two threads are as fast as the slower of the two cores, and on the project's VM
#     one core is at times half available, so 3 rounds gave 1.55-1.98x for the same code
#   - peak resident memory of paper-mnist training with the full MNIST training set
#     loaded (bench_models --mnist-rss; fetches datasets/mnist/ when missing)
# Each case is timed as the best of 3 windows after a warm-up (5 s per case, 1.5 s
# with --quick), so the slower windows, where other processes took the cores, drop out.
#
# Output: one table; with --json, one JSON object instead:
#   cases: [{net, mode, batch, threads, nnmark_ips, torch_ips, ratio, nnmark_gflops,
#            torch_gflops, nnmark_peak_fraction, torch_peak_fraction; inference also
#            onnxruntime_ips, ratio_onnxruntime and ratio_best (to the faster of the two)}]
#   sgemm: [{n, threads, nnmark_gflops, eigen_gflops, openblas_gflops, peak_fraction,
#            peak_gflops_per_core}]
#   fma_peak_gflops (per core), train_scaling_1_to_2 ({net: {nnmark, torch}}),
#   peak_rss_mb, and the context: load averages, torch's BLAS, seconds per case.
# Progress and build output go to stderr.
# PyTorch's setup: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, so OpenBLAS picks its
# kernels for this CPU itself; and jemalloc with purging off (LD_PRELOAD), as PyTorch's
# CPU performance guide advises. With glibc's malloc every large activation is a fresh
# mmap whose page faults dominate torch's large batches (3-6x slower at batch 256 on
# the project's machine); nnmark reuses its buffers. --torch-malloc glibc measures
# torch as it comes. OMP_WAIT_POLICY and the like are passed on to both unchanged.
# Environment: NNMARK_BENCH_JOBS (build jobs, default 1: the machine is shared).
# Exit code: 0 done, 1 a step failed, 2 usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=/usr/bin/python3  # Debian's python3-torch is importable only by the system Python

# The comment block at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

quick=0 json=0 build="$root/build" torch_malloc=jemalloc
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --json) json=1 ;;
    --build-dir) [[ $# -ge 2 ]] || { echo "bench.sh: --build-dir needs a directory" >&2; exit 2; }
                 build="$2"; shift ;;
    --torch-malloc) [[ "${2:-}" == jemalloc || "${2:-}" == glibc ]] ||
                      { echo "bench.sh: --torch-malloc expects jemalloc or glibc" >&2; exit 2; }
                    torch_malloc="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
seconds=$([[ $quick -eq 1 ]] && echo 1.5 || echo 5)
load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"

say() { echo "bench.sh: $*" >&2; }
fail() { say "$*"; exit 1; }

# --- what is needed --------------------------------------------------------------
# The build dependencies are scripts/install-deps.sh's business; the comparison needs
# torch, OpenBLAS (without it Debian's torch runs sgemm on the reference BLAS) and
# jemalloc.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for package in python3-torch libopenblas0-openmp libjemalloc2; do installed "$package" || missing+=("$package"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ "$(id -u)" -eq 0 ]] || fail "missing ${missing[*]}; as root: apt-get install ${missing[*]}"
  say "installing ${missing[*]}"
  apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
  apt_install || { apt-get update -qq >&2 && apt_install; } || fail "apt-get could not install ${missing[*]}"
fi
"$python" -c 'import torch' 2>/dev/null || fail "$python cannot import torch (Debian package python3-torch)"
command -v node >/dev/null && command -v npm >/dev/null || fail "ONNX Runtime needs Node.js and npm (Debian: nodejs npm)"

# --- how torch runs, and which BLAS it uses ----------------------------------------
torch_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
if [[ $torch_malloc == jemalloc ]]; then
  jemalloc="$(dpkg -L libjemalloc2 | grep -m1 '/libjemalloc\.so\.2$')" || fail "libjemalloc.so.2 not found"
  torch_env+=(LD_PRELOAD="$jemalloc" MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1)
fi
blas_alternative="$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ { print $2 }')"

# --- build -------------------------------------------------------------------------
say "building bench_models and bench_gemm in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNNMARK_NATIVE=ON -DNNMARK_SANITIZE=OFF \
  -DNNMARK_BENCH=ON >&2 || fail "cmake could not configure $build"
cmake --build "$build" --target bench_models bench_gemm -j "${NNMARK_BENCH_JOBS:-1}" >&2 ||
  fail "the bench targets did not build"

# ONNX Runtime: the npm package in $build/onnxruntime, and the two nets as ONNX.
ort_dir="$build/onnxruntime"
ort_version=1.31.1
if [[ ! -e "$ort_dir/node_modules/onnxruntime-node/package.json" ]]; then
  say "installing onnxruntime-node@$ort_version into $ort_dir"
  mkdir -p "$ort_dir"
  npm install --prefix "$ort_dir" --ignore-scripts --no-audit --no-fund "onnxruntime-node@$ort_version" >&2 ||
    fail "npm could not install onnxruntime-node"
fi
for net in paper-mnist paper-cifar10; do
  "$python" "$root/bench/torch_bench.py" export --net "$net" --out "$ort_dir/$net.onnx" >/dev/null 2>&1 ||
    fail "PyTorch could not export $net to ONNX"
done

mnist="$root/datasets/mnist"
if [[ ! -e "$mnist/train-images-idx3-ubyte" && ! -e "$mnist/train-images-idx3-ubyte.gz" ]]; then
  say "fetching MNIST into $mnist"
  bash "$root/datasets/fetch.sh" mnist >&2 || fail "could not fetch MNIST (datasets/fetch.sh mnist)"
fi

# --- measurements: one JSON line per result in $results ---------------------------
results="$(mktemp)"
trap 'rm -f "$results"' EXIT

# record LABEL JSON: one result, as one line of $results.
record() { printf '{"label": "%s", "result": %s}\n' "$1" "${2//$'\n'/ }" >>"$results"; }

# run LABEL THREADS COMMAND...: one measurement with OMP_NUM_THREADS=THREADS.
run() {
  local label="$1" threads="$2"; shift 2
  say "$label: ${1##*/}"
  local out
  out="$(OMP_NUM_THREADS="$threads" "$@")" || fail "failed: $*"
  record "$label" "$out"
}

# One PyTorch process per thread count answers all of that count's measurements
# (torch_bench.py serve): importing torch takes seconds, 15 times per run otherwise.
start_torch() {
  coproc TORCH { OMP_NUM_THREADS="$1" "${torch_env[@]}" "$python" "$root/bench/torch_bench.py" serve; }
}
# torch_run LABEL COMMAND: one measurement by the PyTorch process.
torch_run() {
  local label="$1" out
  say "$label: torch"
  echo "$2" >&"${TORCH[1]}"
  IFS= read -r out <&"${TORCH[0]}" || fail "the PyTorch process ended during '$2'"
  record "$label" "$out"
}
stop_torch() {
  local pid="$TORCH_PID"
  eval "exec ${TORCH[1]}>&-"
  wait "$pid"
}

run gemm 2 "$build/bench_gemm" --json
for threads in 1 2; do
  start_torch "$threads"
  [[ $threads -eq 1 ]] && torch_run info info
  torch_run openblas "sgemm --threads $threads"
  for net in paper-mnist paper-cifar10; do
    for mode_batch in train:128 infer:1 infer:256; do
      args=(--net "$net" --mode "${mode_batch%:*}" --batch "${mode_batch#*:}" --threads "$threads" --seconds "$seconds")
      label="case $net ${mode_batch/:/ batch } threads $threads"
      run "$label" "$threads" "$build/bench_models" "${args[@]}" --json
      torch_run "$label" "case ${args[*]}"
      if [[ ${mode_batch%:*} == infer ]]; then
        run "$label" "$threads" env NODE_PATH="$ort_dir/node_modules" node "$root/bench/onnxruntime_bench.js" \
          --model "$ort_dir/$net.onnx" --batch "${mode_batch#*:}" --threads "$threads" --seconds "$seconds"
      fi
    done
  done
  stop_torch
done
# Thread scaling: for each network, training at 1 and 2 threads in turns, nnmark and
# PyTorch (one process per measurement, so that OMP_NUM_THREADS takes effect).
for net in paper-mnist paper-cifar10; do
  for round in 1 2 3 4 5; do
    for threads in 1 2; do
      args=(--net "$net" --mode train --batch 128 --threads "$threads" --seconds "$seconds")
      run "scaling $net round $round threads $threads" "$threads" "$build/bench_models" "${args[@]}" --json
      run "scaling $net round $round threads $threads" "$threads" "${torch_env[@]}" "$python" \
        "$root/bench/torch_bench.py" case "${args[@]}"
    done
  done
done
run memory 2 "$build/bench_models" --mnist-rss "$mnist" --steps $([[ $quick -eq 1 ]] && echo 10 || echo 40) --threads 2 --json
load_at_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ------------------------------------------------------------------------
"$python" - "$results" "$json" "$seconds" "$load_at_start" "$load_at_end" "$blas_alternative" \
  "$torch_malloc" "${OMP_WAIT_POLICY:-unset}" "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" <<'PYTHON'
import json, sys

results_file, as_json, seconds, load_start, load_end, alternative, torch_malloc, wait_policy, cores, cpu = sys.argv[1:]
lines = [json.loads(line) for line in open(results_file)]
torch_info = next(l["result"] for l in lines if l["label"] == "info")
gemm = next(l["result"] for l in lines if l["label"] == "gemm")
peak = gemm["peak_gflops_per_core"]
memory = next(l["result"] for l in lines if l["label"] == "memory")

def by_framework(label):
    out = {}
    for l in lines:
        if l["label"] == label:
            out.setdefault(l["result"]["framework"], []).append(l["result"])
    return out

def ratio(a, b):
    return a / b if a and b else None

# The cases, in run order: the nnmark and the torch result of each label.
cases = []
for label in dict.fromkeys(l["label"] for l in lines if l["label"].startswith("case ")):
    found = by_framework(label)
    onnxruntime = found.get("onnxruntime") or [None] * len(found["nnmark"])  # inference cases only
    for ours, theirs, ort in zip(found["nnmark"], found["torch"], onnxruntime):
        flops = ours["flops_per_image"]
        budget = peak * ours["threads"]
        case = {"net": ours["net"], "mode": ours["mode"], "batch": ours["batch"], "threads": ours["threads"],
                "nnmark_ips": ours["images_per_second"], "torch_ips": theirs["images_per_second"],
                "ratio": ratio(ours["images_per_second"], theirs["images_per_second"]),
                "nnmark_gflops": ours["images_per_second"] * flops / 1e9,
                "torch_gflops": theirs["images_per_second"] * flops / 1e9,
                "nnmark_peak_fraction": ours["images_per_second"] * flops / 1e9 / budget,
                "torch_peak_fraction": theirs["images_per_second"] * flops / 1e9 / budget}
        if ort:
            best_reference = max(theirs["images_per_second"], ort["images_per_second"])
            case.update({"onnxruntime_ips": ort["images_per_second"],
                         "ratio_onnxruntime": ratio(ours["images_per_second"], ort["images_per_second"]),
                         "ratio_best": ratio(ours["images_per_second"], best_reference)})
        cases.append(case)

openblas = {(r["n"], l["result"]["threads"]): r["gflops"] for l in lines if l["label"] == "openblas"
            for r in l["result"]["results"]}
gemm_results = {(r["n"], r["threads"], r["library"]): r for r in gemm["results"]}
sgemm = []
for n, threads in sorted({(n, t) for n, t, _ in gemm_results}):
    ours = gemm_results.get((n, threads, "nnmark"), {})
    # The fraction bench_gemm measured against the peak taken in turns with the product.
    sgemm.append({"n": n, "threads": threads, "nnmark_gflops": ours.get("gflops"),
                  "eigen_gflops": gemm_results.get((n, threads, "eigen"), {}).get("gflops"),
                  "openblas_gflops": openblas.get((n, threads)),
                  "peak_fraction": ours.get("fraction_of_peak"),
                  "peak_gflops_per_core": ours.get("peak_gflops_per_core")})

# Thread scaling from the alternating rounds: the best images/s at 2 threads over the
# best at 1, per network and framework.
best = {}
for l in lines:
    if l["label"].startswith("scaling "):
        r = l["result"]
        key = (r["net"], r["framework"], r["threads"])
        best[key] = max(best.get(key, 0), r["images_per_second"])
scaling = {}
for (net, framework, threads) in best:
    scaling.setdefault(net, {})[framework] = ratio(best.get((net, framework, 2)), best.get((net, framework, 1)))

blas = torch_info["blas"]
report = {"cases": cases, "sgemm": sgemm, "fma_peak_gflops": peak, "train_scaling_1_to_2": scaling,
          "peak_rss_mb": memory["peak_rss_mb"],
          "peak_rss": {k: memory[k] for k in ("dataset_images", "dataset_megabytes", "loading_peak_rss_mb", "steps",
                                              "batch", "threads")},
          "seconds_per_case": float(seconds), "load_average_start": load_start, "load_average_end": load_end,
          "omp_wait_policy": wait_policy,
          "cores": int(cores), "cpu": cpu, "simd_lanes_fp32": gemm.get("simd_lanes_fp32"),
          "onnxruntime": {"version": next((l["result"]["version"] for l in lines
                                           if l["result"].get("framework") == "onnxruntime"), None)},
          "torch": {"version": torch_info["version"], "build_blas": torch_info["build_blas"],
                    "blas_libraries": blas.get("libraries"), "openblas_core": blas.get("openblas_corename"),
                    "openblas_config": blas.get("openblas_config"), "libblas_alternative": alternative,
                    "libtorch_links": torch_info.get("libtorch_links"), "parallel_backend": torch_info["parallel_backend"],
                    "cpu_capability": torch_info["cpu_capability"], "mkldnn": torch_info["mkldnn"],
                    "allocator": torch_malloc}}
if as_json == "1":
    print(json.dumps(report, indent=1))
    sys.exit(0)

def num(x, width, digits=0):
    return f"{x:{width}.{digits}f}" if x is not None else f"{'-':>{width}}"

def pct(x):
    return f"{100 * x:3.0f}%" if x is not None else "   -"

print(f"nnmark vs PyTorch {torch_info['version']} on {cores} cores ({cpu})")
print(f"load average (1/5/15 min) at start: {load_start}; at end: {load_end}"
      " -- other processes on these cores make every figure noisy")
if float(load_start.split()[0]) > int(cores) - 1:
    print(f"WARNING: a load of {load_start.split()[0]} on {cores} cores leaves less than one idle core: the 2-thread "
          "figures measure waiting for descheduled threads more than either engine")
print(f"timing: per case, warm-up, then best of 3 windows of {float(seconds) / 3:.2f} s; "
      f"nnmark and torch one after the other, OMP_NUM_THREADS = threads, OMP_WAIT_POLICY {wait_policy}")
print(f"torch BLAS: {blas.get('library')} {blas.get('openblas_corename') or ''} (build BLAS_INFO="
      f"{torch_info['build_blas']}, libblas.so.3 -> {alternative or '?'}); libtorch_cpu links "
      f"{torch_info.get('libtorch_links') or '?'}")
print(f"torch convolutions: oneDNN (mkldnn {'on' if torch_info['mkldnn'] else 'off'}), ATen kernels "
      f"{torch_info['cpu_capability']}; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset; allocator {torch_malloc}")
print(f"fp32 FMA peak (bench_gemm, one core, {gemm.get('simd_lanes_fp32')} lanes): {peak:.1f} GFLOP/s; "
      "'% pk' = GFLOP/s / (peak x threads)")
print("GF/s count the direct convolution's multiply-adds for both frameworks; Winograd's 3x3 convolutions "
      "(nnmark's, and oneDNN's where it picks them) do 2.25-4x fewer, so an effective '% pk' may pass 100")
print()
print(f"{'network':<14}{'mode':<6}{'batch':>6}{'thr':>4} | {'nnmark img/s':>12}{'torch img/s':>12}{'ratio':>7} |"
      f" {'ORT img/s':>10}{'ratio':>7}{'vs best':>8} | {'nnmark GF/s':>11}{'% pk':>5} {'torch GF/s':>10}{'% pk':>5}")
for c in cases:
    print(f"{c['net']:<14}{c['mode']:<6}{c['batch']:>6}{c['threads']:>4} | {num(c['nnmark_ips'], 12)}"
          f"{num(c['torch_ips'], 12)}{num(c['ratio'], 7, 2)} | {num(c.get('onnxruntime_ips'), 10)}"
          f"{num(c.get('ratio_onnxruntime'), 7, 2)}{num(c.get('ratio_best'), 8, 2)} | {num(c['nnmark_gflops'], 11, 1)}"
          f"{pct(c['nnmark_peak_fraction'])} {num(c['torch_gflops'], 10, 1)}{pct(c['torch_peak_fraction'])}")
print()
print(f"{'sgemm n':<14}{'thr':>4} | {'nnmark GF/s':>11}{'% pk':>5}{'pk/core':>8}{'Eigen':>8}{'OpenBLAS':>10}"
      f"{'nnmark/OpenBLAS':>17}")
for s in sgemm:
    print(f"{s['n']:<14}{s['threads']:>4} | {num(s['nnmark_gflops'], 11, 1)}{pct(s['peak_fraction'])}"
          f"{num(s['peak_gflops_per_core'], 8, 1)}"
          f"{num(s['eigen_gflops'], 8, 1)}{num(s['openblas_gflops'], 10, 1)}"
          f"{num(ratio(s['nnmark_gflops'], s['openblas_gflops']), 17, 2)}")
print()
for net, per in scaling.items():
    print(f"training thread scaling 1 -> 2, {net}: nnmark {num(per.get('nnmark'), 0, 2)}x, "
          f"torch {num(per.get('torch'), 0, 2)}x")
print(f"peak resident memory, paper-mnist training with the full MNIST training set loaded "
      f"({memory['dataset_images']} images, {memory['dataset_megabytes']:.1f} MB as bytes), "
      f"{memory['steps']} steps of {memory['batch']}, {memory['threads']} threads: {memory['peak_rss_mb']:.1f} MB "
      f"(peak after loading, before training: {memory['loading_peak_rss_mb']:.1f} MB)")
slower = [f"{c['net']} {c['mode']} b{c['batch']} t{c['threads']} ({c['ratio']:.2f})"
          for c in cases if c["ratio"] is not None and c["ratio"] < 1]
print("nnmark slower than torch in: " + (", ".join(slower) if slower else "no case"))
slower = [f"{c['net']} b{c['batch']} t{c['threads']} ({c['ratio_onnxruntime']:.2f})"
          for c in cases if c.get("ratio_onnxruntime") is not None and c["ratio_onnxruntime"] < 1]
print("nnmark slower than ONNX Runtime in: " + (", ".join(slower) if slower else "no case"))
PYTHON
