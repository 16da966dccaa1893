#!/usr/bin/env bash
# One-time set-up for minima on a Debian machine: Rust toolchain check, libtorch
# (PyTorch 2.13.0, the version tch 0.26 binds) in a per-user cache outside the repo,
# and a git-ignored .cargo/config.toml that points cargo at it. Idempotent: a second
# run only checks and prints. Every clone and CI run on the machine reuses the cache.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
torch_version=2.13.0
cache=${MINIMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minima}

say() { printf 'bootstrap: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; exit 1
  fi
}

apt_ready=0
apt_install() {
  if [ "$apt_ready" = 0 ]; then as_root apt-get update -qq; apt_ready=1; fi
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v cargo >/dev/null; then
  say "cargo not found: install Rust with rustup (https://rustup.rs), then run this again"
  exit 1
fi
command -v cc >/dev/null || apt_install build-essential
command -v python3 >/dev/null || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
# The real image data set every Debian machine can have offline: benchmarks and
# CPU-scale scripts read it from /usr/share/datasets/fashion-mnist.
[ -d /usr/share/datasets/fashion-mnist ] || apt_install dataset-fashion-mnist

# The CUDA build needs the full wheel with its NVIDIA libraries (~4.7 GB); on a
# machine without a GPU the wheel alone plus the two NVIDIA runtime libraries that
# libtorch_cuda links against is enough (~1.2 GB) and installs in seconds.
if [ -n "${MINIMA_VARIANT:-}" ]; then
  variant=$MINIMA_VARIANT
elif command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  variant=cuda
else
  variant=cpu
fi
dest=$cache/libtorch/$torch_version-$variant
torch_dir=$dest/venv/lib/python3*/site-packages/torch

if [ -f "$dest/.complete" ]; then
  say "libtorch $torch_version ($variant) already in $dest"
else
  say "installing libtorch $torch_version ($variant) into $dest"
  rm -rf "$dest"
  mkdir -p "$dest"
  python3 -m venv "$dest/venv"
  pip=("$dest/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  if [ "$variant" = cuda ]; then
    "${pip[@]}" "torch==$torch_version"
  else
    "${pip[@]}" --no-deps "torch==$torch_version" \
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  fi
  touch "$dest/.complete"
  say "libtorch installed"
fi
# shellcheck disable=SC2086
torch_dir=$(echo $torch_dir)
[ -d "$torch_dir/lib" ] || { say "no torch/lib under $dest: remove it and run again"; exit 1; }

# cargo reads [env] for build scripts, rustc and the programs it runs, so
# `cargo build`, `cargo test` and `cargo run` find libtorch with nothing exported.
mkdir -p "$repo/.cargo"
config=$repo/.cargo/config.toml
wanted="# written by scripts/bootstrap.sh; not tracked
[env]
LIBTORCH = \"$torch_dir\""
if [ "$(cat "$config" 2>/dev/null)" != "$wanted" ]; then
  printf '%s\n' "$wanted" >"$config"
  say "wrote $config (LIBTORCH=$torch_dir)"
else
  say "cargo already points at $torch_dir"
fi
