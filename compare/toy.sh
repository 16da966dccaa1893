#!/usr/bin/env bash
# Figure 1's network trained by minima and by an eager PyTorch loop, side by side
# (docs/PERFORMANCE.md): compare/toy.sh [EPOCHS] [ROUNDS]. Alternates the two for
# ROUNDS rounds at 1 thread, then prints a markdown table of the medians.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
epochs=${1:-2000}
rounds=${2:-3}
[ -f .cargo/config.toml ] || ./scripts/bootstrap.sh
python=$(compare/install.sh)
cargo build --release --quiet
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rate() { grep -o 'images_per_s [0-9.e+]*' | cut -d' ' -f2; }
minima=() torch=()
for r in $(seq "$rounds"); do
  minima+=("$(target/release/minima run compare/toy.rhai --set epochs="$epochs" --out "$out/$r" 2>/dev/null | rate)")
  torch+=("$("$python" compare/toy_reference.py "$epochs" | rate)")
  echo "round $r: minima ${minima[-1]} images/s, PyTorch ${torch[-1]} images/s" >&2
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
m=$(median "${minima[@]}") t=$(median "${torch[@]}")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "Figure 1's network (2-100-100-2), 100 points, batch 10, vanilla SGD, $epochs epochs, 1 thread, $cpu, medians of $rounds rounds"
echo
echo "| minima images/s | PyTorch images/s | ratio |"
echo "|---|---|---|"
awk -v m="$m" -v t="$t" 'BEGIN { printf "| %.0f | %.0f | **%.2f** |\n", m, t, m / t }'
