#!/usr/bin/env bash
# Installs the reference PyTorch that minima's interoperability tests compare
# against: the full torch==2.13.0 wheel (the version tch 0.26 binds; its Python
# package imports only with the NVIDIA libraries it depends on, ~4.7 GB, about a
# minute the first time) plus numpy and safetensors, in a venv under the minima
# cache. Prints the venv's python path on stdout; progress goes to stderr.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/cache-venv.sh" pytorch-2.13.0 "torch, numpy, safetensors" \
  torch==2.13.0 numpy safetensors
