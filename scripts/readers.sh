#!/usr/bin/env bash
# Installs the Parquet readers that tests/live_read.rs polls a live run folder
# with: Python polars and DuckDB, at the versions the docs' read calls were
# checked against, in a venv under the minima cache. Idempotent: later runs reuse
# the venv. Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail

polars_version=2.1.0
duckdb_version=2.0.1
cache=${MINIMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minima}
dest=$cache/readers
python=$dest/venv/bin/python

say() { printf 'readers: %s\n' "$*" >&2; }

if [ -f "$dest/.complete" ]; then
  say "polars $polars_version and duckdb $duckdb_version already in $dest"
else
  command -v python3 >/dev/null || { say "python3 not found: run scripts/bootstrap.sh first"; exit 1; }
  mkdir -p "$cache"
  # One installer at a time: parallel test runs on one machine wait for the first.
  exec 9>"$cache/.readers.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    say "installing polars==$polars_version and duckdb==$duckdb_version into $dest"
    rm -rf "$dest"
    mkdir -p "$dest"
    python3 -m venv "$dest/venv"
    "$python" -m pip install --quiet --disable-pip-version-check \
      "polars==$polars_version" "duckdb==$duckdb_version" >&2
    "$python" -c 'import polars, duckdb' >&2
    touch "$dest/.complete"
    say "installed"
  fi
fi
printf '%s\n' "$python"
