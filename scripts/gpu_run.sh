#!/usr/bin/env bash
# Runs on the GPU machine (no Rust there) from the repository root with the folder made by
# scripts/gpu_pack.sh (default .gpu/) and MLX's CPU wheels (.whl/, for the reference suite):
# the Rust GPU tests, the GPU test file, the whole differential suite with the GPU as the
# default device, then the GPU benchmark table.
set -uo pipefail
PACK="${1:-.gpu}"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/python PYTHONUNBUFFERED=1
cp "$PACK/_rmx.abi3.so" python/rmx/_rmx.abi3.so
cp "$PACK/test_gpu.py" python/tests/test_gpu.py
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv
status=0
for t in "$PACK"/bin/*; do echo "== $t"; "$t" -q || status=1; done
echo "== python/tests/test_gpu.py"
python3 -m pytest python/tests/test_gpu.py -q -p no:cacheprovider -n 8 -rf 2>&1 | grep -E "^(FAILED|ERROR)|passed|failed" | cut -c1-300 | tail -60 || status=1
if [ "${GPU_FULL_SUITE:-1}" = 1 ]; then
  echo "== whole suite, GPU as default device"
  timeout ${SUITE_TIMEOUT:-300} python3 -m pytest python/tests -q -p no:cacheprovider -m "not mlx_quirk" \
    -n 8 --ignore=python/tests/test_lm.py --ignore=python/tests/test_lm_families.py \
    --ignore=python/tests/test_lm_convert.py --ignore=python/tests/test_lm_server.py \
    --ignore=python/tests/test_rust_nn.py --ignore=python/tests/test_examples.py --ignore=python/tests/test_gpu.py -rf 2>&1 | grep -E "^(FAILED|ERROR)|passed|failed" | cut -c1-250 | tail -80
fi
echo "== bench"
python3 "$PACK/cuda.py" ${BENCH_ARGS:-}
exit $status
