#!/usr/bin/env bash
# The GPU checks of docs/PERFORMANCE.md ("On a GPU"), one script for a machine
# with an NVIDIA GPU; everything it prints goes to $OUT/gpu.log too (OUT defaults
# to /tmp/minima-gpu), with the runs' parquet files beside it.
#  0. auto: `--device auto` (the default) picks the GPU;
#  1. bench: resnet18 width 1 at batch 128 on cuda:0, minima against PyTorch, fp32
#     and autocast, channels-last weights off and on (benches/compare.rs --device cuda);
#  2. epoch: two epochs of width-1 ResNet18 on 50,000 CIFAR-10-format images per
#     precision, fp32, bf16 and fp16 (compare/gpu_epoch.rhai, `--device cuda`);
#  3. headline: scripts/paper/headline.rhai at paper scale, shortened (5,000
#     images, R = 2, 10 epochs, 2 seeds), `--jobs 2 --device cuda:all`.
# MINIMA_GPU_STEPS picks some of them (e.g. "bench"; default all four).
# The CIFAR-10-format images are random bytes written here (the steps measure
# speed, not accuracy). Binaries: with .gpu/ present (compare/gpu-pack.sh, for an
# offline machine that has PyTorch but no Rust) the packed ones on this machine's
# torch/lib; else the CUDA libtorch is bootstrapped and minima built, online.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=${OUT:-/tmp/minima-gpu}
mkdir -p "$out"
exec > >(tee "$out/gpu.log") 2>&1
date -u +"gpu.sh: %Y-%m-%d %H:%M UTC"
nvidia-smi -L || { echo "gpu.sh: no NVIDIA GPU here"; exit 1; }
grep -m1 "model name" /proc/cpuinfo; echo "cores: $(nproc)"
work=$(mktemp -d)
if [ -d .gpu ]; then
  want=$(cat .gpu/torch-version)
  have=$(python3 -c 'import torch; print(torch.__version__)') || exit 1
  if [ "${have%%+*}" != "$want" ]; then
    echo "gpu.sh: .gpu/ holds binaries built against torch $want, this machine has $have: run compare/gpu-pack.sh ${have%%+*} where cargo works"
    exit 1
  fi
  export LD_LIBRARY_PATH=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  for b in minima compare; do
    python3 -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' ".gpu/$b.xz" "$work/$b"
    chmod +x "$work/$b"
  done
  minima=$work/minima compare=$work/compare
  src=$(cat .gpu/source-dir)
  if [ ! -e "$src/compare/reference.py" ]; then mkdir -p "$(dirname "$src")" && ln -sfn "$repo" "$src"; fi
  export MINIMA_REFERENCE_PYTHON=${MINIMA_REFERENCE_PYTHON:-python3}
  mkdir -p "$work/data/fashion_mnist" && cp .gpu/fashion-mnist/*.gz "$work/data/fashion_mnist/"
else
  MINIMA_VARIANT=cuda ./scripts/bootstrap.sh
  MINIMA_REFERENCE_PYTHON=$(compare/install.sh)
  export MINIMA_REFERENCE_PYTHON
  cargo build --release --bin minima && cargo bench --bench compare --no-run || exit 1
  minima=$repo/target/release/minima
  compare=$(ls -t target/release/deps/compare-* | grep -v '\.d$' | head -1)
  mkdir -p "$work/data" && ln -s /usr/share/datasets/fashion-mnist "$work/data/fashion_mnist"
fi
export MINIMA_DATA=$work/data
python3 - "$work/data/cifar10/cifar-10-batches-bin" <<'PY'
import os, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    b = bytearray(os.urandom(10000 * 3073))
    b[0::3073] = bytes(x % 10 for x in os.urandom(10000))
    open(os.path.join(d, name), "wb").write(b)
open(os.path.join(d, "batches.meta.txt"), "w").write(
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")
PY
step() {
  local name=$1 limit=$2
  shift 2
  case " ${MINIMA_GPU_STEPS:-auto bench epoch headline} " in
    *" $name "*) ;;
    *) echo "== $name: skipped (MINIMA_GPU_STEPS)"; return ;;
  esac
  echo "== $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@"
  echo "== $name: exit $? after $((SECONDS - t0)) s"
}
echo 'print(`--device auto picks ${device()}`);' >"$work/auto.rhai"
step auto 60 "$minima" run "$work/auto.rhai" --out "$work/auto" -q
step bench "${MINIMA_GPU_BENCH_S:-240}" "$compare" --device cuda --archs resnet18 --widths 1 \
  --rounds "${MINIMA_GPU_ROUNDS:-3}" --seconds 2 --threads 8
step epoch 180 "$minima" run compare/gpu_epoch.rhai --device cuda --out "$out/epoch" -q
step headline 180 "$minima" run scripts/paper/headline.rhai --set scale=paper --set n_train=5000 \
  --set replicas=2 --set epochs=10 --set seeds=2 --out "$out/headline" --jobs 2 --device cuda:all
rm -rf "$work"
