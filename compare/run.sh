#!/usr/bin/env bash
# minima against PyTorch on this machine, one command (docs/PERFORMANCE.md):
#   compare/run.sh [--quick] [--rounds N] [--archs mlp,cnn,...] [--widths 0.25,1]
#                [--threads N] [--seconds S] [--no-scaling]
# Installs the reference PyTorch the first time, builds minima with the release
# profile (cargo bench) and prints markdown tables on stdout; progress on stderr.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
[ -f .cargo/config.toml ] || ./scripts/bootstrap.sh
MINIMA_REFERENCE_PYTHON=$(compare/install.sh)
export MINIMA_REFERENCE_PYTHON
exec cargo bench --bench compare -- "$@"
