#!/usr/bin/python3
"""torch_bench: the PyTorch side of nnmark's speed comparison (scripts/bench.sh runs both).

Measures what bench/bench_models.cpp measures for nnmark, the same way, and prints one
JSON object (one line):

  torch_bench.py case --net paper-mnist|paper-cifar10 --mode train|infer --batch N
                      --threads T [--seconds S]
      steady-state images/s. The network is include/nnmark/model/paper_models.hpp built
      with nn.Sequential (float32, NCHW). Inputs are random in [0, 1), labels random.
      Warm-up iterations first (at least 2 and 15% of S), then 3 windows of S/3 seconds
      (each at least one iteration); the best window's images/s is the result, the mean
      over all windows is printed too.
        train: zero_grad, forward (train mode: dropout on), cross-entropy, backward, one
               step of SGD(lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4) -- nnmark's
               default recipe.
        infer: eval() and torch.no_grad().
  torch_bench.py sgemm --threads T [--sizes 256,1024,2048]
      C = A B for square float32 matrices with torch.mm, which calls the BLAS torch was
      linked against (Debian: libblas.so.3, OpenBLAS once libopenblas0-openmp is
      installed). Best GFLOP/s over repetitions worth ~0.4 s, as bench/bench_gemm.cpp.
  torch_bench.py export --net NET --out FILE.onnx
      the network, in eval mode, as ONNX (torch.onnx.export, opset 13, a dynamic batch
      axis) for ONNX Runtime (bench/onnxruntime_bench.js); prints {"net", "onnx"}.
  torch_bench.py serve
      reads the commands above from standard input, one per line ("case --net ..."),
      and answers each with one JSON line: torch is imported once for many cases.
  torch_bench.py info
      torch's version, build BLAS, parallel backend, the BLAS library actually loaded
      (with OpenBLAS's core name and configuration when it is OpenBLAS) and what ldd
      says libtorch_cpu links for BLAS and LAPACK.

Run it with /usr/bin/python3: Debian's python3-torch is importable only there.
Threads: torch.set_num_threads(T); the caller sets OMP_NUM_THREADS=T as well.
"""

import argparse
import ctypes
import json
import re
import shlex
import subprocess
import sys
import time

import torch
from torch import nn

# name: (input channels, image side, first conv width, second conv width, dense units)
PAPER_NETS = {
    "paper-mnist": (1, 28, 32, 64, 200),
    "paper-cifar10": (3, 32, 64, 128, 256),
}
CLASSES = 10
TIMING_WINDOWS = 3


def paper_net(name):
    """The network and its input item (C, H, W):
    conv3x3 relu conv3x3 relu maxpool2, twice; flatten dense relu dropout dense relu dense."""
    channels, side, first, second, units = PAPER_NETS[name]
    item = (channels, side, side)
    layers = []
    for width in (first, second):
        layers += [nn.Conv2d(channels, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(), nn.MaxPool2d(2)]
        channels, side = width, (side - 4) // 2  # two valid 3x3 convolutions, then a 2x2 pool
    layers += [nn.Flatten(), nn.Linear(channels * side * side, units), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(units, units), nn.ReLU(), nn.Linear(units, CLASSES)]
    return nn.Sequential(*layers), item


def measure(iteration, batch, seconds):
    """Warm up, then time `iteration` (one batch) in windows; the same rule as bench_models."""
    warm_start = time.perf_counter()
    done = 0
    while done < 2 or time.perf_counter() - warm_start < 0.15 * seconds:
        iteration()
        done += 1
    best, iterations, total_seconds = 0.0, 0, 0.0
    for _ in range(TIMING_WINDOWS):
        done = 0
        start = time.perf_counter()
        while True:
            iteration()
            done += 1
            if time.perf_counter() - start >= seconds / TIMING_WINDOWS:
                break
        elapsed = time.perf_counter() - start
        best = max(best, done * batch / elapsed)
        iterations += done
        total_seconds += elapsed
    return best, iterations * batch / total_seconds, iterations


def run_case(args):
    torch.manual_seed(1)
    net, item = paper_net(args.net)
    images = torch.rand(args.batch, *item)
    labels = torch.randint(0, CLASSES, (args.batch,))
    if args.mode == "train":
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        loss_fn = nn.CrossEntropyLoss()

        def iteration():
            optimizer.zero_grad()
            loss_fn(net(images), labels).backward()
            optimizer.step()
    else:
        net.eval()

        def iteration():
            with torch.no_grad():
                net(images)
    best, mean, iterations = measure(iteration, args.batch, args.seconds)
    return {"framework": "torch", "net": args.net, "mode": args.mode, "batch": args.batch,
            "threads": torch.get_num_threads(), "images_per_second": best, "mean_images_per_second": mean,
            "iterations": iterations}


def sgemm_gflops(n):
    a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)  # warm caches and the BLAS thread pool
    flops = 2.0 * n * n * n
    best, total, rep = 0.0, 0.0, 0
    while rep < 30 and (rep < 3 or total < 0.4):
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        elapsed = time.perf_counter() - start
        total += elapsed
        best = max(best, flops / elapsed / 1e9)
        rep += 1
    return best


def run_sgemm(args):
    sizes = [int(n) for n in args.sizes.split(",")]
    return {"framework": "torch", "library": loaded_blas().get("library", "unknown"),
            "threads": torch.get_num_threads(), "results": [{"n": n, "gflops": sgemm_gflops(n)} for n in sizes]}


def mapped_libraries(pattern):
    """Paths of the shared libraries this process has mapped whose path matches `pattern`."""
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if re.search(pattern, line)})


def loaded_blas():
    """The BLAS shared libraries this process has mapped, and OpenBLAS's own report."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure the BLAS is loaded and initialized
    paths = mapped_libraries(r"lib(open)?blas[^/]*\.so")
    info = {"libraries": paths}
    openblas = [p for p in paths if "openblas" in p]
    if openblas:
        lib = ctypes.CDLL(openblas[0])
        for name in ("openblas_get_corename", "openblas_get_config"):
            function = getattr(lib, name, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                info[name.replace("openblas_get_", "openblas_")] = function().decode().strip()
        info["library"] = "OpenBLAS"
    else:
        info["library"] = "reference BLAS" if paths else "none found"
    return info


def libtorch_links():
    """What libtorch_cpu's dynamic linking resolves for BLAS and LAPACK (ldd)."""
    libtorch = mapped_libraries(r"libtorch_cpu[^/]*\.so")
    if not libtorch:
        return None
    ldd = subprocess.run(["ldd", libtorch[0]], capture_output=True, text=True, check=False).stdout
    links = [re.sub(r"\s*\(0x[0-9a-f]+\)", "", line.strip()) for line in ldd.splitlines()]
    return "; ".join(link for link in links if re.search(r"blas|lapack", link))


def run_info(_args):
    config = torch.__config__.show()
    build_blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    capability = re.search(r"CPU capability usage: (\S+)", config)
    backend = re.search(r"ATen parallel backend: (.*)", torch.__config__.parallel_info())
    return {"framework": "torch", "version": torch.__version__,
            "build_blas": build_blas.group(1) if build_blas else "unknown",
            "mkldnn": torch.backends.mkldnn.is_available(),
            "parallel_backend": backend.group(1).strip() if backend else "unknown",
            "cpu_capability": capability.group(1) if capability else "unknown",
            "blas": loaded_blas(), "libtorch_links": libtorch_links()}


def run_export(args):
    net, item = paper_net(args.net)
    net.eval()
    torch.onnx.export(net, torch.rand(1, *item), args.out, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return {"net": args.net, "onnx": args.out}


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value
    return parse


def command_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    case = commands.add_parser("case", help="images/s of one network, mode, batch and thread count")
    case.add_argument("--net", choices=sorted(PAPER_NETS), required=True)
    case.add_argument("--mode", choices=["train", "infer"], required=True)
    case.add_argument("--batch", type=positive(int), required=True)
    case.add_argument("--threads", type=positive(int), required=True)
    case.add_argument("--seconds", type=positive(float), default=3.0)
    case.set_defaults(run=run_case)
    sgemm = commands.add_parser("sgemm", help="GFLOP/s of torch.mm on square float32 matrices")
    sgemm.add_argument("--threads", type=positive(int), required=True)
    sgemm.add_argument("--sizes", default="256,1024,2048")
    sgemm.set_defaults(run=run_sgemm)
    export = commands.add_parser("export", help="the network as ONNX, for ONNX Runtime")
    export.add_argument("--net", choices=sorted(PAPER_NETS), required=True)
    export.add_argument("--out", required=True)
    export.set_defaults(run=run_export)
    info = commands.add_parser("info", help="torch's build and the BLAS it has loaded")
    info.set_defaults(run=run_info)
    commands.add_parser("serve", help="run the commands read from standard input, one per line")
    return parser


def execute(args):
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    print(json.dumps(args.run(args)), flush=True)


def main():
    parser = command_parser()
    args = parser.parse_args()
    if args.command != "serve":
        execute(args)
        return
    for line in sys.stdin:
        execute(parser.parse_args(shlex.split(line)))


if __name__ == "__main__":
    sys.exit(main())
