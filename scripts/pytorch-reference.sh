#!/usr/bin/env bash
# Installs the reference PyTorch that minima's interoperability tests compare
# against: the full torch==2.13.0 wheel (the version tch 0.26 binds; its Python
# package imports only with the NVIDIA libraries it depends on, ~4.7 GB) plus numpy
# and safetensors, in a venv under the minima cache. Idempotent: later runs reuse
# the venv. Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail

torch_version=2.13.0
cache=${MINIMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minima}
dest=$cache/pytorch-$torch_version
python=$dest/venv/bin/python

say() { printf 'pytorch-reference: %s\n' "$*" >&2; }

if [ -f "$dest/.complete" ]; then
  say "PyTorch $torch_version already in $dest"
else
  command -v python3 >/dev/null || { say "python3 not found: run scripts/bootstrap.sh first"; exit 1; }
  mkdir -p "$cache"
  # One installer at a time: parallel test runs on one machine wait for the first.
  exec 9>"$cache/.pytorch-$torch_version.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    say "installing torch==$torch_version, numpy and safetensors into $dest (about 1 minute and 4.7 GB the first time)"
    rm -rf "$dest"
    mkdir -p "$dest"
    python3 -m venv "$dest/venv"
    "$python" -m pip install --quiet --disable-pip-version-check \
      "torch==$torch_version" numpy safetensors >&2
    "$python" -c 'import torch, numpy, safetensors' >&2
    touch "$dest/.complete"
    say "installed"
  fi
fi
printf '%s\n' "$python"
