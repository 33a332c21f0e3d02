#!/usr/bin/env bash
# nnmark quickstart: from a fresh machine to a watermarked MNIST model, verified.
#   1. installs the Debian packages nnmark needs (when missing)
#   2. fetches MNIST (SHA-256 verified) into datasets/mnist/
#   3. builds the nnmark tool at build/nnmark
#   4. trains the paper's MNIST network with a "TEST" content watermark whose triggers
#      carry secret random labels, writes its key and prints the commitment to publish
#   5. verifies the watermark through the model's predictions alone, against that
#      commitment; random labels give a p-value that holds for any model that never saw
#      the key (README: "What a p-value from nnmark means")
# Usage: scripts/quickstart.sh [EPOCHS]   (default 3: a few minutes on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
case "${1:-}" in
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
epochs="${1:-3}"
[[ "$epochs" =~ ^[1-9][0-9]*$ ]] || { echo "quickstart.sh: EPOCHS must be a positive integer, got '$epochs'" >&2; exit 2; }

step() { printf '\n== %s\n' "$*"; }

step "1/5 packages"
bash scripts/install-deps.sh

step "2/5 MNIST"
bash datasets/fetch.sh mnist

step "3/5 build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target nnmark_tool

step "4/5 embed a content watermark while training the paper's MNIST network ($epochs epochs)"
mkdir -p runs/quickstart
model=runs/quickstart/mnist-content.safetensors
key=runs/quickstart/mnist-content.key
rm -f "$model.checkpoint"
build/nnmark embed --dataset mnist --trigger content --labels random --epochs "$epochs" --out "$model" --key-out "$key"
commitment="$(build/nnmark key inspect --key "$key" --json | sed -n 's/.*"commitment": *"\([0-9a-f]\{64\}\)".*/\1/p')"
[ -n "$commitment" ] || { echo "quickstart.sh: could not read the commitment of $key" >&2; exit 1; }
printf 'Publish this commitment (with a date) before deploying the model:\n  %s\n' "$commitment"

step "5/5 verify the watermark from the model's answers alone"
build/nnmark verify --model "$model" --key "$key" --expect-commitment "$commitment"

printf '\nDone. Model: %s  Key: %s\nCommitment: %s\nNext: build/nnmark --help\n' "$model" "$key" "$commitment"
