"""rmx on the GPU against PyTorch on the same GPU, in one run (issue 10's anchors).

    PYTHONPATH=python python3 bench/cuda.py [--quick]

Each workload is timed as the median of several timed loops: rmx builds the lazy graph,
``mx.eval``s it, and the loop ends with ``mx.synchronize()``; torch runs eagerly and ends
with ``torch.cuda.synchronize()``. Inputs are random (never zeros) and resident on the
device before timing. Prints a table: ms per call, the ratio rmx/torch, and GB/s or
TFLOP/s where the workload has a byte or flop count.
"""

import argparse
import statistics
import time

import numpy as np

import rmx.core as mx

try:
    import torch
except ImportError:  # the table then has rmx only
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


def rmx_run(fn):
    def run():
        mx.eval(fn())

    return run


def rmx_sync():
    mx.synchronize()


def torch_sync():
    torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    big = 1 << (22 if args.quick else 28)  # 256M elements, as the anchors
    rows = []

    xa = mx.random.uniform(shape=(big,))
    ya = mx.random.uniform(shape=(big,))
    mx.eval(xa, ya)
    tx = torch.rand(big, device="cuda") if torch else None
    ty = torch.rand(big, device="cuda") if torch else None

    def add_row(name, rfn, tfn, reps, nbytes=None, flops=None):
        r = timed(rmx_run(rfn), rmx_sync, reps)
        t = timed(tfn, torch_sync, reps) if (torch and tfn) else float("nan")
        rows.append((name, r, t, nbytes, flops))

    add_row("add f32 (3 x 4 B/elem)", lambda: xa + ya, lambda: tx + ty, 10, 12 * big)
    add_row("exp(sin(x)*2+1)*x f32 eager", lambda: mx.exp(mx.sin(xa) * 2 + 1) * xa,
            lambda: torch.exp(torch.sin(tx) * 2 + 1) * tx, 5, 8 * big)
    n = 2048 if args.quick else 8192
    sb = mx.random.normal(shape=(n, n)).astype(mx.bfloat16)
    mx.eval(sb)
    tsb = torch.randn(n, n, device="cuda", dtype=torch.bfloat16) if torch else None
    add_row(f"softmax {n}x{n} bf16", lambda: mx.softmax(sb, axis=-1),
            lambda: torch.softmax(tsb, dim=-1), 20, 4 * n * n)
    ga = mx.random.normal(shape=(n, n)).astype(mx.bfloat16)
    gb = mx.random.normal(shape=(n, n)).astype(mx.bfloat16)
    mx.eval(ga, gb)
    tga = torch.randn(n, n, device="cuda", dtype=torch.bfloat16) if torch else None
    tgb = torch.randn(n, n, device="cuda", dtype=torch.bfloat16) if torch else None
    add_row(f"matmul {n}^3 bf16", lambda: ga @ gb, lambda: tga @ tgb, 10, None, 2 * n ** 3)
    fa = mx.random.normal(shape=(4096, 4096))
    mx.eval(fa)
    tfa = torch.randn(4096, 4096, device="cuda") if torch else None
    add_row("sum 4096^2 f32 (all)", lambda: mx.sum(fa), lambda: torch.sum(tfa), 20, 4 * 4096 * 4096)
    add_row("sum 4096^2 f32 axis=0", lambda: mx.sum(fa, axis=0), lambda: torch.sum(tfa, dim=0), 20,
            4 * 4096 * 4096)
    small = mx.random.uniform(shape=(16,))
    mx.eval(small)
    tsmall = torch.rand(16, device="cuda") if torch else None

    def chain_rmx():
        y = small
        for _ in range(100):
            y = y + 1
        return y

    def chain_torch():
        y = tsmall
        for _ in range(100):
            y = y + 1
        return y

    r = timed(rmx_run(chain_rmx), rmx_sync, 20) / 100
    t = timed(chain_torch, torch_sync, 20) / 100 if torch else float("nan")
    rows.append(("eager per-op overhead (16 elems)", r, t, None, None))

    print(f"device: {mx.device_info(mx.gpu)}")
    print(f"{'workload':38s} {'rmx ms':>10s} {'torch ms':>10s} {'rmx/torch':>9s} {'rmx rate':>14s}")
    for name, r, t, nbytes, flops in rows:
        rate = ""
        if nbytes:
            rate = f"{nbytes / r / 1e9:8.0f} GB/s"
        elif flops:
            rate = f"{flops / r / 1e12:8.0f} TF/s"
        print(f"{name:38s} {r * 1e3:10.4f} {t * 1e3:10.4f} {r / t:9.2f} {rate:>14s}")


if __name__ == "__main__":
    main()
