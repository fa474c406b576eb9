#!/usr/bin/env bash
# Sets up a fresh machine: Python packages (numpy, pytest, maturin, real MLX as the test
# reference, safetensors and gguf for the IO tests, scikit-learn for the digits data of the
# examples) and a release build of the rmx Python extension into python/rmx/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check numpy pytest maturin 'mlx[cpu]==0.32.4' \
    safetensors gguf scikit-learn
cargo build --release -p rmx-python
cp target/release/lib_rmx.so python/rmx/_rmx.abi3.so
# Rust examples; python/tests/test_rust_nn.py runs target/release/examples/parity
cargo build --release -p rmx-nn --examples
echo "rmx built: PYTHONPATH=$(pwd)/python python3 -c 'import rmx.core as mx'"
