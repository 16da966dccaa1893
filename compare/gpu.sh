#!/usr/bin/env bash
# Prepared for a machine with an NVIDIA GPU (docs/PERFORMANCE.md, "On a GPU"):
# resnet18 width 1 at batch 128 on CUDA, fp32 and autocast, channels-last weights
# off and on, minima against the PyTorch reference, 3 rounds. About 8 minutes once
# built: the warm-up and 12 measured trainings of ~3 s per variant and side.
# Needs the CUDA libtorch (bootstrap with MINIMA_VARIANT=cuda; the first build
# against it recompiles tch) and the reference venv (compare/install.sh), both of
# which download when missing: run them while online, then this offline.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
MINIMA_VARIANT=cuda ./scripts/bootstrap.sh
nvidia-smi -L
MINIMA_REFERENCE_PYTHON=$(compare/install.sh)
export MINIMA_REFERENCE_PYTHON
cargo bench --bench compare --no-run
date -u +"measured %Y-%m-%d %H:%M UTC"
exec timeout 600 cargo bench --bench compare -- --device cuda --archs resnet18 --widths 1 \
  --rounds 3 --seconds 3 --threads "${MINIMA_BENCH_THREADS:-8}" "$@"
