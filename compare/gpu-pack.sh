#!/usr/bin/env bash
# Builds minima and the compare benchmark here for an offline GPU machine that has
# PyTorch but no Rust toolchain and no network (the device machines this project
# is sometimes lent), and packs them into .gpu/ (git-ignored) for compare/gpu.sh:
#   compare/gpu-pack.sh 2.11.0      # the torch version on the GPU machine
# The binaries link libtorch dynamically, so they are built against that version's
# PyPI wheel (its lib and include folders, in the minima cache) and run there on the
# machine's own torch/lib: same version, same C++ symbols. Fashion-MNIST travels
# too (the benchmark's data). In its own target folder, so the usual build is not
# invalidated.
set -euo pipefail
version=${1:?usage: compare/gpu-pack.sh TORCH_VERSION (the torch version on the GPU machine, e.g. 2.11.0)}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${MINIMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minima}
wheel=$cache/libtorch/$version-wheel
if [ ! -f "$wheel/.complete" ]; then
  rm -rf "$wheel" && mkdir -p "$wheel"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: "torch==$version" -d "$wheel"
  unzip -q "$wheel"/torch-*.whl 'torch/lib/*' 'torch/include/*' -d "$wheel"
  rm "$wheel"/torch-*.whl
  touch "$wheel/.complete"
fi
# tch wraps every operator of the libtorch it binds; those an older libtorch lacks
# become throwing stubs in a patched copy of torch-sys (compare/gpu_stub_ops.py).
sys_src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/torch-sys-0.26.0 | head -1)
patched=$cache/torch-sys-0.26.0-for-$version
if [ ! -f "$patched/.complete" ]; then
  rm -rf "$patched" && cp -a "$sys_src" "$patched"
  python3 "$repo/compare/gpu_stub_ops.py" "$patched/libtch/torch_api_generated.cpp" "$wheel/torch/include"
  touch "$patched/.complete"
fi
export LIBTORCH=$wheel/torch LIBTORCH_BYPASS_VERSION_CHECK=1
export CARGO_TARGET_DIR=$cache/target-gpu-$version
cd "$repo"
# Seeded from the usual release build: only torch-sys, tch and minima rebuild.
if [ ! -d "$CARGO_TARGET_DIR/release" ] && [ -d target/release ]; then
  mkdir -p "$CARGO_TARGET_DIR" && cp -a target/release "$CARGO_TARGET_DIR/"
fi
# The patch rewrites Cargo.lock's torch-sys entry: the tracked one is put back.
cp Cargo.lock "$CARGO_TARGET_DIR/Cargo.lock.tracked"
trap 'cp "$CARGO_TARGET_DIR/Cargo.lock.tracked" Cargo.lock' EXIT
patch=(--config "patch.crates-io.torch-sys.path=\"$patched\"")
cargo build "${patch[@]}" --release --bin minima
cargo bench "${patch[@]}" --bench compare --no-run
bench=$(ls -t "$CARGO_TARGET_DIR"/release/deps/compare-* | grep -v '\.d$' | head -1)
rm -rf .gpu && mkdir -p .gpu/fashion-mnist
for b in "$CARGO_TARGET_DIR/release/minima:minima" "$bench:compare"; do
  strip -o ".gpu/${b##*:}" "${b%%:*}"
  xz -T2 -6 ".gpu/${b##*:}"
done
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/fashion-mnist/
echo "$version" >.gpu/torch-version
# The benchmark finds compare/reference.py under the source folder it was built in.
echo "$repo" >.gpu/source-dir
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >>.git/info/exclude
du -sh .gpu
