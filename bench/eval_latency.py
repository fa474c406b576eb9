"""Latency of one small evaluation, rmx beside MLX (CPU) in one run: `eval(a + b)` on 16
elements, one call of a compiled 1000-op elementwise chain on 16 elements (the
`compile` per-call cost, issue 5; bench/cuda.py times the same chain on the GPU), and the
first call of a newly compiled 100-op graph (trace, simplify, fuse and run: issue 5's
"first-call compile under 20 ms"). Medians of `--repeats` rounds of 200 calls (20 for the
first-call row, each compiling a new function).

    PYTHONPATH=python python3 bench/eval_latency.py
"""

import argparse
import time

import numpy as np


def rounds(fn, repeats, calls=200):
    fn()
    out = []
    for _ in range(repeats):
        ts = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        out.append(np.median(ts))
    return float(np.median(out)) * 1e6


def measure(m, repeats):
    small = m.array(np.random.default_rng(1).uniform(size=16).astype(np.float32))
    one = m.ones((16,))
    m.eval(small, one)

    def body(z):
        for _ in range(500):
            z = z * 1.0001 + 0.5
        return z

    f = m.compile(body)

    def first_call():
        # a new function object each time, so compile's cache misses and the call traces
        def graph(z, w):
            for i in range(20):  # 5 ops each: sin, *, +, -, maximum
                z = m.sin(z) * w + (0.5 + i)
                z = m.maximum(z, w - i)
            return z

        m.eval(m.compile(graph)(small, one))

    return {"eval(a + b), 16 elements": rounds(lambda: m.eval(small + one), repeats),
            "compiled 1000-op chain, one call": rounds(lambda: m.eval(f(small)), repeats),
            "first call of a compiled 100-op graph": rounds(first_call, repeats, calls=20)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import mlx.core as mx
    import rmx.core as rx
    r, x = measure(rx, args.repeats), measure(mx, args.repeats)
    print(f"{'workload':40s}{'rmx us':>10s}{'MLX us':>10s}{'MLX/rmx':>9s}")
    for k in r:
        print(f"{k:40s}{r[k]:10.2f}{x[k]:10.2f}{x[k] / r[k]:9.2f}")
    first = r["first call of a compiled 100-op graph"] / 1e3
    print(f"issue 5 bar, first call of a compiled 100-op graph < 20 ms: "
          f"{'PASS' if first < 20 else 'FAIL'} ({first:.2f} ms)")


if __name__ == "__main__":
    main()
