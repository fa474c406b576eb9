#!/usr/bin/env bash
# Runs every test: formatting and lints, Rust unit tests, then the Python differential
# suite against real MLX. Assumes scripts/setup.sh has run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release -p rmx-core
PYTHONPATH="$(pwd)/python" python3 -m pytest python/tests -q -p no:cacheprovider
