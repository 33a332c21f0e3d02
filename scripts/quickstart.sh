#!/usr/bin/env bash
# nnmark quickstart: from a fresh machine to a trained, evaluated MNIST model.
#   1. installs the Debian packages nnmark needs (when missing)
#   2. fetches MNIST (SHA-256 verified) into datasets/mnist/
#   3. builds the nnmark tool at build/nnmark
#   4. trains the paper's MNIST network and evaluates it
# Usage: scripts/quickstart.sh [EPOCHS]   (default 3: about two minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
epochs="${1:-3}"
[[ "$epochs" =~ ^[1-9][0-9]*$ ]] || { echo "quickstart.sh: EPOCHS must be a positive integer, got '$epochs'" >&2; exit 2; }

step() { printf '\n== %s\n' "$*"; }

step "1/4 packages"
bash scripts/install-deps.sh

step "2/4 MNIST"
bash datasets/fetch.sh mnist

step "3/4 build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target nnmark_tool

step "4/4 train the paper's MNIST network for $epochs epochs"
mkdir -p runs/quickstart
model=runs/quickstart/mnist.safetensors
rm -f "$model.checkpoint"
build/nnmark train --dataset mnist --epochs "$epochs" --out "$model"
build/nnmark eval --model "$model" --dataset mnist

printf '\nDone. Model: %s\nNext: build/nnmark --help\n' "$model"
