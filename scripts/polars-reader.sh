#!/usr/bin/env bash
# Installs the readers that tests/live_read.rs polls a live run folder with:
# Python polars and duckdb (the ways docs/RESULTS.md documents for reading
# results), in a venv under the minima cache. Idempotent: later runs reuse the
# venv. Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail

cache=${MINIMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minima}
dest=$cache/readers
python=$dest/venv/bin/python

say() { printf 'polars-reader: %s\n' "$*" >&2; }

if [ -f "$dest/.complete" ]; then
  say "polars and duckdb already in $dest"
else
  command -v python3 >/dev/null || { say "python3 not found: run scripts/bootstrap.sh first"; exit 1; }
  mkdir -p "$cache"
  # One installer at a time: parallel test runs on one machine wait for the first.
  exec 9>"$cache/.readers.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    say "installing polars and duckdb into $dest (about 100 MB the first time)"
    rm -rf "$dest"
    mkdir -p "$dest"
    python3 -m venv "$dest/venv"
    "$python" -m pip install --quiet --disable-pip-version-check polars duckdb >&2
    "$python" -c 'import polars, duckdb' >&2
    touch "$dest/.complete"
    say "installed"
  fi
fi
printf '%s\n' "$python"
