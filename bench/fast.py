"""Benchmark of the fused `fast` ops: rmx.core.fast vs mlx.core.fast (CPU) vs the same
function written with ordinary rmx ops (the composite), with ratios.

    PYTHONPATH=python python3 bench/fast.py [--repeats N] [--quick]

Workloads: scaled_dot_product_attention at B=1, H=8, L=1024, D=64 f32 (no mask and
causal), rms_norm / layer_norm on 4096x4096 f32, rope on (1, 32, 4096, 128) f32.
Timings are medians of back-to-back repetitions after a warm-up (bench/harness.py), graph building and
eval included.
"""

import argparse
import os
import sys

import blas_quiet  # noqa: F401 - before NumPy: OpenBLAS threads must not spin
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import measure  # noqa: E402

import mlx.core as mx  # noqa: E402
import rmx.core as rx  # noqa: E402


def composite_sdpa(m, q, k, v, scale, causal):
    s = (q * scale) @ m.swapaxes(k, -1, -2)
    if causal:
        L = q.shape[2]
        keep = m.arange(L)[:, None] >= m.arange(L)[None]
        s = m.where(keep, s, m.array(np.finfo(np.float32).min, dtype=s.dtype))
    return m.softmax(s, axis=-1, precise=True) @ v


def composite_rms(m, x, w, eps):
    return x * m.rsqrt(m.mean(m.square(x), axis=-1, keepdims=True) + eps) * w


def composite_ln(m, x, w, b, eps):
    mu = m.mean(x, axis=-1, keepdims=True)
    xc = x - mu
    return xc * m.rsqrt(m.mean(m.square(xc), axis=-1, keepdims=True) + eps) * w + b


def composite_rope(m, x, dims, base, offset):
    T, half = x.shape[-2], dims // 2
    inv = m.exp(m.arange(half, dtype=m.float32) * (-np.log(base) / half))
    th = (m.arange(T, dtype=m.float32) + offset)[:, None] * inv[None]
    c, s = m.cos(th), m.sin(th)
    x1, x2 = x[..., :half], x[..., half:dims]
    return m.concatenate([x1 * c - x2 * s, x1 * s + x2 * c, x[..., dims:]], axis=-1)


def workloads(quick):
    g = np.random.default_rng(0)
    L = 256 if quick else 1024
    n = 1024 if quick else 4096
    q, k, v = (g.standard_normal((1, 8, L, 64)).astype(np.float32) for _ in range(3))
    x = g.standard_normal((n, n)).astype(np.float32)
    w, b = g.standard_normal(n).astype(np.float32), g.standard_normal(n).astype(np.float32)
    r = g.standard_normal((1, 32, n, 128)).astype(np.float32)
    sc = 64 ** -0.5
    out = []
    for causal in (False, True):
        mask = "causal" if causal else None
        out.append((f"sdpa B=1 H=8 L={L} D=64 f32{' causal' if causal else ''}", (q, k, v), {
            "rmx": lambda m, q, k, v, mask=mask: m.fast.scaled_dot_product_attention(
                q, k, v, scale=sc, mask=mask),
            "mlx": lambda m, q, k, v, mask=mask: m.fast.scaled_dot_product_attention(
                q, k, v, scale=sc, mask=mask),
            "rmx composite": lambda m, q, k, v, c=causal: composite_sdpa(m, q, k, v, sc, c),
        }))
    out.append((f"rms_norm {n}x{n} f32", (x, w), {
        "rmx": lambda m, x, w: m.fast.rms_norm(x, w, 1e-5),
        "mlx": lambda m, x, w: m.fast.rms_norm(x, w, 1e-5),
        "rmx composite": lambda m, x, w: composite_rms(m, x, w, 1e-5),
    }))
    out.append((f"layer_norm {n}x{n} f32", (x, w, b), {
        "rmx": lambda m, x, w, b: m.fast.layer_norm(x, w, b, 1e-5),
        "mlx": lambda m, x, w, b: m.fast.layer_norm(x, w, b, 1e-5),
        "rmx composite": lambda m, x, w, b: composite_ln(m, x, w, b, 1e-5),
    }))
    out.append((f"rope (1,32,{n},128) f32", (r,), {
        "rmx": lambda m, x: m.fast.rope(x, 128, traditional=False, base=1e4, scale=1.0,
                                        offset=7),
        "mlx": lambda m, x: m.fast.rope(x, 128, traditional=False, base=1e4, scale=1.0,
                                        offset=7),
        "rmx composite": lambda m, x: composite_rope(m, x, 128, 1e4, 7),
    }))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(f"load average {os.getloadavg()}, nproc {os.cpu_count()}, mlx {mx.__version__}")
    print(f"{'workload':42s} {'rmx ms':>9s} {'mlx ms':>9s} {'comp ms':>9s} {'mlx/rmx':>8s}"
          f" {'comp/rmx':>9s}")
    for name, data, fns in workloads(a.quick):
        libs = {"rmx": rx, "mlx": mx, "rmx composite": rx}
        ins = {lib: [libs[lib].array(d) for d in data] for lib in fns}
        for lib in ins:
            libs[lib].eval(*ins[lib])

        def runner(lib):
            m, f, xs = libs[lib], fns[lib], ins[lib]

            def go():
                y = f(m, *xs)
                m.eval(y)
                return y
            return go
        res, outs = measure({lib: runner(lib) for lib in fns}, 1, a.repeats)
        ref = np.array(outs["mlx"])
        for lib in ("rmx", "rmx composite"):
            err = np.abs(np.array(outs[lib]) - ref).max()
            # f32 rope angles at positions up to 4096 differ by ~pos * 6e-8 between methods
            assert err < 5e-3, f"{name}: {lib} differs from mlx by {err}"
        t = {lib: res[lib]["median"] * 1e3 for lib in fns}
        print(f"{name:42s} {t['rmx']:9.2f} {t['mlx']:9.2f} {t['rmx composite']:9.2f}"
              f" {t['mlx'] / t['rmx']:7.2f}x {t['rmx composite'] / t['rmx']:8.2f}x")


if __name__ == "__main__":
    main()
