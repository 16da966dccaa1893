#!/usr/bin/env bash
# A Python venv under the minima cache, made once: `scripts/cache-venv.sh NAME
# MODULES PACKAGE...` installs the pip PACKAGEs into $cache/NAME/venv, checks that
# `import MODULES` works, and prints the venv's python path on stdout (progress on
# stderr). Idempotent (a `.complete` marker), one installer at a time (a lock), so
# parallel test runs on one machine wait for the first. Used by
# scripts/pytorch-reference.sh and scripts/readers.sh.
set -euo pipefail

name=$1 modules=$2
shift 2
cache=${MINIMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minima}
dest=$cache/$name
python=$dest/venv/bin/python

say() { printf '%s: %s\n' "$name" "$*" >&2; }

if [ -f "$dest/.complete" ]; then
  say "$* already in $dest"
else
  command -v python3 >/dev/null || { say "python3 not found: run scripts/bootstrap.sh first"; exit 1; }
  mkdir -p "$cache"
  exec 9>"$cache/.$name.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    say "installing $* into $dest"
    rm -rf "$dest"
    mkdir -p "$dest"
    python3 -m venv "$dest/venv"
    "$python" -m pip install --quiet --disable-pip-version-check "$@" >&2
    "$python" -c "import $modules" >&2
    touch "$dest/.complete"
    say "installed"
  fi
fi
printf '%s\n' "$python"
