#!/usr/bin/env bash
# The benchmark's PyTorch side: the full torch==2.13.0 wheel (the libtorch version
# minima links) with numpy and safetensors, installed once by
# scripts/pytorch-reference.sh into the minima cache. Prints the venv's python.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec "$repo/scripts/pytorch-reference.sh"
