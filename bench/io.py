"""Save/load benchmark (issue 6): rmx against MLX in one run, interleaved repetitions,
medians.

- a 1 GiB float16 safetensors file (8 tensors of 128 MiB): save time (against the raw
  write rate of the same bytes measured in the same run) and load time-to-first-use
  (load, then evaluate one tensor);
- the SmolLM2-135M GGUF (fetched by scripts/fetch_fixtures.sh): load time-to-first-use and
  load-everything, and save_gguf of its float tensors.

    PYTHONPATH=python python3 bench/io.py [--repeats 5] [--dir /tmp/rmx-io-bench]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python", "tests"))


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleave(cases, repeats):
    """cases: {name: callable}; returns {name: median seconds}."""
    times = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            times[k].append(timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/rmx-io-bench")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    import mlx.core as mlx
    import rmx.core as rmx

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  nproc={os.cpu_count()}  load={os.getloadavg()[0]:.2f}  "
          f"repeats={args.repeats}  dir={args.dir}")
    rng = np.random.default_rng(0)
    n = 64 * 1024 * 1024  # 128 MiB of float16 per tensor
    raw = [rng.integers(0, 0x7BFF, n, dtype=np.uint16).view(np.float16) for _ in range(8)]
    arrays = {}
    for lib in (rmx, mlx):
        arrays[lib.__name__] = {f"t{i}": lib.array(r) for i, r in enumerate(raw)}
        lib.eval(list(arrays[lib.__name__].values()))
    path = {k: os.path.join(args.dir, f"{k.split('.')[0]}.safetensors") for k in arrays}
    blob = b"".join(r.tobytes() for r in raw)
    raw_path = os.path.join(args.dir, "raw.bin")

    def write_raw():
        with open(raw_path, "wb") as f:
            f.write(blob)

    save = interleave({
        "raw write": write_raw,
        "rmx save_safetensors": lambda: rmx.save_safetensors(path["rmx.core"], arrays["rmx.core"]),
        "mlx save_safetensors": lambda: mlx.save_safetensors(path["mlx.core"], arrays["mlx.core"]),
    }, args.repeats)
    gib = len(blob) / 2**30
    for k, t in save.items():
        print(f"{k:28s} {t * 1e3:9.1f} ms  {gib / t:6.2f} GiB/s")
    print(f"rmx save rate / raw write rate = {save['raw write'] / save['rmx save_safetensors']:.2f} (bar >= 0.70)")

    def first_use(lib, p, name):
        return lambda: lib.eval(lib.load(p)[name])

    load = interleave({
        "rmx load + first tensor": first_use(rmx, path["rmx.core"], "t3"),
        "mlx load + first tensor": first_use(mlx, path["mlx.core"], "t3"),
    }, args.repeats)
    for k, t in load.items():
        print(f"{k:28s} {t * 1e3:9.2f} ms")
    print(f"time to first use, MLX / rmx = {load['mlx load + first tensor'] / load['rmx load + first tensor']:.2f} "
          "(bar >= 1)")

    from fixtures import smollm2_gguf
    gguf = str(smollm2_gguf())

    def load_all(lib):
        return lambda: lib.eval(list(lib.load(gguf).values()))

    name = "token_embd.weight"
    g = interleave({
        "rmx gguf load + first": first_use(rmx, gguf, name),
        "mlx gguf load + first": first_use(mlx, gguf, name),
        "rmx gguf load all": load_all(rmx),
        "mlx gguf load all": load_all(mlx),
    }, args.repeats)
    for k, t in g.items():
        print(f"{k:28s} {t * 1e3:9.2f} ms")
    print(f"GGUF time to first use, MLX / rmx = {g['mlx gguf load + first'] / g['rmx gguf load + first']:.2f} "
          "(bar >= 1)")

    floats = {lib.__name__: {k: v for k, v in lib.load(gguf).items() if v.dtype in (lib.float16, lib.float32)}
              for lib in (rmx, mlx)}
    gs = interleave({
        "rmx save_gguf (floats)": lambda: rmx.save_gguf(os.path.join(args.dir, "r.gguf"), floats["rmx.core"]),
        "mlx save_gguf (floats)": lambda: mlx.save_gguf(os.path.join(args.dir, "m.gguf"), floats["mlx.core"]),
    }, args.repeats)
    for k, t in gs.items():
        print(f"{k:28s} {t * 1e3:9.2f} ms")
    for p in list(path.values()) + [raw_path]:
        os.remove(p)


if __name__ == "__main__":
    main()
