#!/usr/bin/env bash
# Builds the CUDA-enabled Python extension and the rmx-cuda test binaries here (the GPU
# machine has no Rust toolchain) and packs them, with the GPU test and benchmark files,
# into DEST (default .gpu/, git-ignored) for scripts/gpu_run.sh to use on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-.gpu}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -p rmx-python -p rmx-lm --features rmx-python/cuda,rmx-lm/cuda
cargo test --release -p rmx-cuda --no-run 2>&1 | tee /tmp/gpu_pack_tests.log
rm -rf "$DEST" && mkdir -p "$DEST/bin"
cp "$TARGET/release/lib_rmx.so" "$DEST/_rmx.abi3.so"
cp "$TARGET/release/rmx-lm" "$DEST/rmx-lm"
grep -o '(target/[^)]*\|([^)]*/release/deps/[^)]*' /tmp/gpu_pack_tests.log | tr -d '(' | while read -r t; do
  cp "$t" "$DEST/bin/"
done
cp python/tests/test_gpu*.py python/tests/gpu_util.py bench/cuda.py bench/cuda_models.py bench/streams.py bench/make_random_llama.py scripts/gpu_run.sh "$DEST/"
strip "$DEST"/bin/* "$DEST/rmx-lm" "$DEST/_rmx.abi3.so"
# the carry limit is 64 MiB: the big CPU-vs-GPU test binary stays here, the rest is gzipped
rm -f "$DEST"/bin/gpu_matches_cpu-*
gzip -1 "$DEST/rmx-lm" "$DEST/_rmx.abi3.so" "$DEST"/bin/*
ls -la "$DEST" "$DEST/bin"
