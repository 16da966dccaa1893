#!/usr/bin/env bash
# Installs the Parquet readers that tests/live_read.rs polls a live run folder
# with: Python polars and DuckDB, at the versions the docs' read calls were
# checked against, in a venv under the minima cache. Idempotent: later runs reuse
# the venv. Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/cache-venv.sh" readers "polars, duckdb" polars==2.1.0 duckdb==2.0.1
