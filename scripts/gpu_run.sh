#!/usr/bin/env bash
# Runs on the GPU machine (no Rust there) from the repository root with the folder made by
# scripts/gpu_pack.sh (default .gpu/) and MLX's CPU wheels (.whl/, for the reference suite):
# the Rust GPU tests, the GPU test file, the whole differential suite with the GPU as the
# default device, then the GPU benchmark table.
set -uo pipefail
PACK="${1:-.gpu}"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# MLX's CPU wheels for the reference suite (installed by an earlier call when .whl is absent)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD/python PYTHONUNBUFFERED=1
for z in "$PACK"/*.gz "$PACK"/bin/*.gz; do [ -f "$z" ] && gunzip -f "$z"; done
chmod +x "$PACK"/bin/* "$PACK/rmx-lm"
cp "$PACK/_rmx.abi3.so" python/rmx/_rmx.abi3.so
cp "$PACK"/test_gpu*.py "$PACK/gpu_util.py" python/tests/
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv
status=0
for t in "$PACK"/bin/*; do echo "== $t"; "$t" -q || status=1; done
echo "== python/tests/test_gpu*.py"
python3 -m pytest python/tests/test_gpu*.py -q -p no:cacheprovider -n 8 -rf 2>&1 | grep -E "^(FAILED|ERROR)|passed|failed" | cut -c1-300 | tail -60 || status=1
if [ "${GPU_FULL_SUITE:-1}" = 1 ]; then
  echo "== whole suite, GPU as default device"
  timeout -s INT ${SUITE_TIMEOUT:-300} python3 -m pytest python/tests -q -p no:cacheprovider -m "not mlx_quirk" \
    -n 8 --ignore=python/tests/test_lm.py --ignore=python/tests/test_lm_families.py \
    --ignore=python/tests/test_lm_convert.py --ignore=python/tests/test_lm_server.py \
    --ignore=python/tests/test_rust_nn.py --ignore=python/tests/test_rust_nn_transpose.py --ignore=python/tests/test_examples.py --ignore-glob="*/test_gpu*.py" -rf 2>&1 | grep -E "^(FAILED|ERROR)|passed|failed" | cut -c1-250 | tail -80
fi
echo "== bench"
# MLX-CUDA beside rmx when its wheel was carried over in parts (/tmp/mlxc, see docs/BENCHMARKS.md)
if [ ! -d /tmp/site-cuda ] && ls /tmp/mlxc/mlxcuda.part.* >/dev/null 2>&1; then
  cat /tmp/mlxc/mlxcuda.part.* > /tmp/mlxc/mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site-cuda \
    .whl/mlx-0.32.4-cp312-*.whl /tmp/mlxc/mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl
fi
MLX_ARG=""; [ -d /tmp/site-cuda ] && MLX_ARG="--mlx-site /tmp/site-cuda"
PYTHONPATH=$PWD/python python3 "$PACK/cuda.py" ${BENCH_ARGS:-} $MLX_ARG
echo "== decoder layer and MLP training step (rmx, torch, JAX, MLX)"
PYTHONPATH=$PWD/python python3 "$PACK/cuda_models.py" $MLX_ARG
if [ "${GPU_STREAMS:-1}" = 1 ]; then
  echo "== streams: MLP training loop, async_eval against eval (GPU default device)"
  PYTHONPATH=$PWD/python python3 "$PACK/streams.py" --steps 50 --repeats 5
fi
if [ "${GPU_DECODE:-1}" = 1 ]; then
  echo "== rmx-lm decode, Llama-3.2-1B-shaped random weights (bf16, then 4-bit)"
  M=/tmp/llama1b; [ -f $M/model.safetensors ] || python3 "$PACK/make_random_llama.py" $M
  "$PACK/rmx-lm" benchmark --model $M -p 128 -g 128 -n 3 --device gpu || status=1
  # the same with the decode step uncaptured, then on the host path (static_decode.rs)
  RMX_LM_CUDA_GRAPH=0 "$PACK/rmx-lm" benchmark --model $M -p 128 -g 128 -n 3 --device gpu | tail -1
  RMX_LM_STATIC_DECODE=0 "$PACK/rmx-lm" benchmark --model $M -p 128 -g 128 -n 3 --device gpu | tail -1
  # and without programmatic dependent launch (launch.rs)
  RMX_CUDA_PDL=0 "$PACK/rmx-lm" benchmark --model $M -p 128 -g 128 -n 3 --device gpu | tail -1
  echo "== greedy tokens with and without the CUDA graph (must be equal)"
  P="The quick brown fox jumps over the lazy dog and then runs far away into the forest"
  for g in 1 0; do
    RMX_LM_CUDA_GRAPH=$g "$PACK/rmx-lm" generate --model $M --prompt "$P" --ignore-chat-template \
      --max-tokens 300 --temp 0 --print-ids --device gpu | tail -1 | md5sum
  done
  [ -d $M-4bit ] || "$PACK/rmx-lm" convert --model $M --out $M-4bit -q --device gpu || status=1
  "$PACK/rmx-lm" benchmark --model $M-4bit -p 128 -g 128 -n 3 --device gpu || status=1
  if [ "${GPU_PROFILE:-0}" = 1 ] && command -v nsys >/dev/null; then
    echo "== nsys: CUDA API time of a short bf16 decode"
    nsys profile -o /tmp/decode --force-overwrite true -t cuda "$PACK/rmx-lm" benchmark --model $M -p 16 -g 64 -n 1 --device gpu >/dev/null 2>&1
    nsys stats -r cuda_api_sum,cuda_gpu_kern_sum /tmp/decode.nsys-rep 2>/dev/null | head -60
  fi
fi
exit $status
