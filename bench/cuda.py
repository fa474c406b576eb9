"""rmx on the GPU against PyTorch and (when importable) MLX's CUDA backend on the same GPU,
in one run (issue 10's anchors).

    PYTHONPATH=python python3 bench/cuda.py [--quick] [--mlx-site DIR]

`--mlx-site` names a folder with `mlx` + `mlx-cuda-13` installed (`pip install --target`);
MLX is then imported from there, beside rmx, and runs every workload too: rmx and MLX share
the API, so each workload is written once for both. Each workload is timed as the median
of several timed loops: rmx and MLX build the lazy graph, ``eval`` it, and the loop ends with
``synchronize()``; torch runs eagerly (or `torch.compile`d where the row says compiled) and
ends with ``torch.cuda.synchronize()``. Inputs are random and resident on the device before
timing. Prints ms per call, the ratios to torch and MLX, and GB/s or TFLOP/s where the
workload has a byte or flop count.
"""

import argparse
import importlib
import statistics
import sys
import time

import numpy as np

import rmx.core as rmx

try:
    import torch
except ImportError:  # the table then has no torch column
    torch = None


def timed(run, sync, reps, loops=5):
    run()
    sync()
    samples = []
    for _ in range(loops):
        t0 = time.perf_counter()
        for _ in range(reps):
            run()
        sync()
        samples.append((time.perf_counter() - t0) / reps)
    return statistics.median(samples)


def array_runner(m, fn, inputs):
    def run():
        m.eval(fn(m, *inputs))

    return run


def workloads(quick):
    """(name, inputs as NumPy (dtype name), fn(m, *xs), torch fn(*ts) or None, bytes, flops,
    reps). Each `fn` runs on rmx.core and mlx.core alike."""
    rng = np.random.default_rng(0)
    big = 1 << (22 if quick else 28)  # 256M elements, as the anchors
    n = 2048 if quick else 8192
    u = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)  # noqa: E731
    rows = []
    x, y = u(big), u(big)
    rows.append(("add f32 (3 x 4 B/elem)", [(x, "float32"), (y, "float32")],
                 lambda m, a, b: a + b, lambda a, b: a + b, 12 * big, None, 10))
    chain = lambda m, a: m.exp(m.sin(a) * 2 + 1) * a  # noqa: E731
    tchain = lambda a: torch.exp(torch.sin(a) * 2 + 1) * a  # noqa: E731
    rows.append(("exp(sin(x)*2+1)*x f32 eager", [(x, "float32")], chain, tchain, 8 * big,
                 None, 5))
    compiled = {}

    def chain_compiled(m, a):
        if m not in compiled:
            compiled[m] = m.compile(lambda a: m.exp(m.sin(a) * 2 + 1) * a)
        return compiled[m](a)

    tcompiled = torch.compile(tchain) if torch else None
    rows.append(("exp(sin(x)*2+1)*x f32 compiled", [(x, "float32")], chain_compiled,
                 tcompiled, 8 * big, None, 5))
    s = rng.standard_normal((n, n)).astype(np.float32)
    rows.append((f"softmax {n}x{n} bf16", [(s, "bfloat16")],
                 lambda m, a: m.softmax(a, axis=-1), lambda a: torch.softmax(a, dim=-1),
                 4 * n * n, None, 20))
    ga, gb = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
    rows.append((f"matmul {n}^3 bf16", [(ga, "bfloat16"), (gb, "bfloat16")],
                 lambda m, a, b: a @ b, lambda a, b: a @ b, None, 2 * n ** 3, 10))
    fa = u(4096, 4096)
    rows.append(("sum 4096^2 f32 (all)", [(fa, "float32")], lambda m, a: m.sum(a),
                 lambda a: torch.sum(a), 4 * 4096 * 4096, None, 20))
    rows.append(("sum 4096^2 f32 axis=0", [(fa, "float32")], lambda m, a: m.sum(a, axis=0),
                 lambda a: torch.sum(a, dim=0), 4 * 4096 * 4096, None, 20))
    rows.append(("cumsum 4096^2 f32 axis=-1", [(fa, "float32")],
                 lambda m, a: m.cumsum(a, axis=-1), lambda a: torch.cumsum(a, dim=-1),
                 8 * 4096 * 4096, None, 20))
    rows.append(("cumsum 4096^2 f32 axis=0", [(fa, "float32")],
                 lambda m, a: m.cumsum(a, axis=0), lambda a: torch.cumsum(a, dim=0),
                 8 * 4096 * 4096, None, 20))
    rows.append(("sort 4096^2 f32 axis=-1", [(fa, "float32")],
                 lambda m, a: m.sort(a, axis=-1), lambda a: torch.sort(a, dim=-1)[0],
                 8 * 4096 * 4096, None, 10))
    line = u(1 << 20)
    rows.append(("argsort 1M f32 (one line)", [(line, "float32")],
                 lambda m, a: m.argsort(a), lambda a: torch.argsort(a, stable=True),
                 8 << 20, None, 10))
    q1 = rng.standard_normal((1, 32, 1, 64)).astype(np.float32)
    k1 = rng.standard_normal((1, 8, 2048, 64)).astype(np.float32)
    v1 = rng.standard_normal((1, 8, 2048, 64)).astype(np.float32)

    def tsdpa(q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    rows.append(("sdpa decode 32/8 heads x 2048 keys bf16",
                 [(q1, "bfloat16"), (k1, "bfloat16"), (v1, "bfloat16")],
                 lambda m, q, k, v: m.fast.scaled_dot_product_attention(q, k, v, scale=0.125),
                 tsdpa, 2 * 2 * 8 * 2048 * 64, None, 50))
    wd = rng.standard_normal((4096, 4096)).astype(np.float32)
    xq = rng.standard_normal((1, 4096)).astype(np.float32)
    rows.append(("gemv 1x4096 @ (4096x4096)^T bf16", [(xq, "bfloat16"), (wd, "bfloat16")],
                 lambda m, a, w: a @ w.T, lambda a, w: a @ w.T, 2 * 4096 * 4096, None, 50))
    wg = rng.standard_normal((16384, 2048)).astype(np.float32)
    xg = rng.standard_normal((1, 2048)).astype(np.float32)
    rows.append(("gemv 1x2048 @ (16384x2048)^T bf16 (64 MiB > L2)", [(xg, "bfloat16"), (wg, "bfloat16")],
                 lambda m, a, w: a @ w.T, lambda a, w: a @ w.T, 2 * 16384 * 2048, None, 50))
    quantized = {}

    def qmm(m, a, w):
        if m not in quantized:
            quantized[m] = m.quantize(w, group_size=64, bits=4)
            m.eval(*quantized[m])
        return m.quantized_matmul(a, *quantized[m], group_size=64, bits=4)

    rows.append(("qmm 4-bit 1x4096 @ (4096x4096)^T bf16 (torch: bf16 gemv)",
                 [(xq, "bfloat16"), (wd, "bfloat16")], qmm, lambda a, w: a @ w.T,
                 4096 * 4096 // 2 + 2 * 4096 * 64 * 2, None, 50))
    return rows


def as_module_arrays(m, inputs):
    xs = []
    for a, dtype in inputs:
        v = m.array(a)
        if dtype != "float32":
            v = v.astype(getattr(m, dtype))
        xs.append(v)
    m.eval(*xs)
    return xs


def as_torch(inputs):
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    return [torch.from_numpy(a).to("cuda").to(dt[d]) for a, d in inputs]


def per_op_overhead(m, kind="scalar"):
    """Seconds per op of a 100-op chain on 16 elements: `z + 1` (a Python scalar), `z + one`
    (a device array), `-z` (unary), or the 1000-op `z * 1.0001 + 0.5` chain compiled."""
    small = m.array(np.random.default_rng(1).uniform(size=16).astype(np.float32))
    one = m.ones((16,))
    m.eval(small, one)
    step = {"scalar": lambda z: z + 1, "array": lambda z: z + one, "unary": lambda z: -z}

    if kind == "compiled":
        def body(z):
            for _ in range(500):
                z = z * 1.0001 + 0.5
            return z

        f = m.compile(body)
        return timed(lambda: m.eval(f(small)), m.synchronize, 20)

    def chain():
        z = small
        for _ in range(100):
            z = step[kind](z)
        m.eval(z)

    return timed(chain, m.synchronize, 20) / 100


def modules(mlx_site):
    """rmx, and MLX's CUDA backend imported from `mlx_site` when given and usable."""
    mods = {"rmx": rmx}
    if mlx_site:
        sys.path.insert(0, mlx_site)
        try:
            mlx = importlib.import_module("mlx.core")
            if mlx.is_available(mlx.gpu):
                mods["mlx"] = mlx
            else:
                print("MLX imported but has no GPU; MLX column left out")
        except Exception as e:  # noqa: BLE001 - a missing MLX only drops its column
            print(f"MLX-CUDA not importable ({e}); MLX column left out")
    return mods


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--mlx-site", default=None)
    p.add_argument("--filter", default=None,
                   help="only the workloads whose name contains this (no overhead rows)")
    args = p.parse_args()
    mods = modules(args.mlx_site)
    results = []
    for name, inputs, fn, tfn, nbytes, flops, reps in workloads(args.quick):
        if args.filter and args.filter not in name:
            continue
        times = {}
        for label, m in mods.items():
            times[label] = timed(array_runner(m, fn, as_module_arrays(m, inputs)),
                                 m.synchronize, reps)
        if torch and tfn:
            try:
                ts = as_torch(inputs)
                times["torch"] = timed(lambda: tfn(*ts), torch.cuda.synchronize, reps)
            except Exception as e:  # noqa: BLE001 - e.g. torch.compile without a compiler
                print(f"torch failed on {name}: {type(e).__name__}: {e}"[:300])
        results.append((name, times, nbytes, flops))
    if not args.filter:  # the overhead rows
        for kind in ["array", "unary", "compiled"]:
            label = {"array": "eager per-op overhead, z + device array",
                     "unary": "eager per-op overhead, -z",
                     "compiled": "1000-op elementwise graph, compiled (whole call)"}[kind]
            t = {lab: per_op_overhead(m, kind) for lab, m in mods.items()}
            # (torch.compile of 1000 ops takes minutes to build; the anchor is 38 us)
            results.append((label, t, None, None))
        times = {label: per_op_overhead(m) for label, m in mods.items()}
        if torch:
            t = torch.rand(16, device="cuda")

            def tchain():
                z = t
                for _ in range(100):
                    z = z + 1

            times["torch"] = timed(tchain, torch.cuda.synchronize, 20) / 100
        results.append(("eager per-op overhead (16 elems, 100 ops)", times, None, None))

    print(f"device: {rmx.device_info(rmx.gpu)}")
    cols = [c for c in ["rmx", "torch", "mlx"] if any(c in r[1] for r in results)]
    head = "".join(f"{c + ' ms':>11s}" for c in cols)
    ratios = "".join(f"{'rmx/' + c:>10s}" for c in cols[1:])
    print(f"{'workload':58s}{head}{ratios} {'rmx rate':>12s}")
    for name, t, nbytes, flops in results:
        r = t["rmx"]
        rate = ""
        if nbytes:
            rate = f"{nbytes / r / 1e9:7.0f} GB/s"
        elif flops:
            rate = f"{flops / r / 1e12:7.0f} TF/s"
        cells = "".join(f"{t.get(c, float('nan')) * 1e3:11.4f}" for c in cols)
        rs = "".join(f"{r / t.get(c, float('nan')):10.2f}" for c in cols[1:])
        print(f"{name:58s}{cells}{rs} {rate:>12s}")


if __name__ == "__main__":
    main()
