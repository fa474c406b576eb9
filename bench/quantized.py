"""Quantized matmul benchmark: rmx vs MLX (CPU) vs a dense matmul, 4-bit, group size 64.

- decode: x 1x4096 by w 4096x4096 (an LLM's token-by-token shape): time, effective
  weight-read bandwidth (packed words + scales + biases per call) against this machine's
  memory bandwidth, measured here with a large NumPy copy;
- prefill: x 128x4096 by the same w.

Each library is warmed up and timed back to back (bench/harness.py); medians are reported. Lazy libraries are
timed including graph building and eval.

    PYTHONPATH=python python3 bench/quantized.py [--repeats 20] [--scale-dtype float16]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import measure  # noqa: E402


def copy_bandwidth(nbytes=512 << 20, repeats=7):
    """GB/s of a NumPy copy of a large buffer (bytes read + bytes written per second)."""
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * nbytes / statistics.median(times) / 1e9


def read_bandwidth(nbytes=512 << 20, repeats=7):
    """GB/s of a NumPy sum over a large buffer (a pure read stream)."""
    src = np.ones(nbytes // 4, np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        src.sum()
        times.append(time.perf_counter() - t0)
    return nbytes / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--scale-dtype", default="float32", choices=["float32", "float16"])
    args = ap.parse_args()
    import mlx.core as mlx
    import rmx.core as rmx
    libs = {"rmx": rmx, "mlx": mlx}
    mlx.set_default_device(mlx.cpu)

    k = n = 4096
    g = np.random.default_rng(0)
    w = (g.standard_normal((n, k)) * 0.02).astype(np.float32)
    sd = args.scale_dtype
    q = {}
    for name, m in libs.items():
        wq, s, b = m.quantize(m.array(w).astype(getattr(m, sd)), 64, 4)
        m.eval(wq, s, b)
        q[name] = (wq, s, b)
    qbytes = q["rmx"][0].nbytes + q["rmx"][1].nbytes + q["rmx"][2].nbytes
    copy_bw = copy_bandwidth()
    read_bw = read_bandwidth()
    print(f"memory: NumPy copy {copy_bw:.1f} GB/s (read+write), NumPy sum {read_bw:.1f} GB/s "
          f"(read); weights {qbytes / 2**20:.1f} MiB packed (scales/biases {sd})")

    for label, rows in (("decode", 1), ("prefill", 128)):
        x = g.standard_normal((rows, k)).astype(np.float32)
        # "f16 w.T": the weight as a linear layer holds it ([N, K]), used transposed
        dense = {"f32": w.T.copy(), "f16": w.T.astype(np.float16), "f16 w.T": w.astype(np.float16)}
        fns = {}
        for name, m in libs.items():
            xa = m.array(x).astype(getattr(m, sd))
            wq, s, b = q[name]
            m.eval(xa)
            fns[name] = (lambda m=m, xa=xa, wq=wq, s=s, b=b:
                         _ev(m, m.quantized_matmul(xa, wq, s, b, True, 64, 4)))
            for dt, wd in dense.items():
                wa = m.array(wd)
                xd = m.array(x).astype(getattr(m, "float32" if dt == "f32" else "float16"))
                m.eval(wa, xd)
                if dt == "f16 w.T":
                    fns[f"{name} dense {dt}"] = (lambda m=m, xd=xd, wa=wa: _ev(m, xd @ wa.T))
                else:
                    fns[f"{name} dense {dt}"] = (lambda m=m, xd=xd, wa=wa: _ev(m, xd @ wa))
        fns["numpy dense f32"] = lambda: x @ dense["f32"]
        res, outs = measure(fns, warmup=3, repeats=args.repeats)
        ref = np.asarray(outs["numpy dense f32"], np.float64)
        err = {lib: float(np.abs(np.array(outs[lib].astype(libs[lib].float32)) - ref).max())
               for lib in libs}
        t = {kk: v.get("median") for kk, v in res.items()}
        print(f"\n{label}: x {rows}x{k} @ w.T ({n}x{k}), 4-bit, group 64")
        for kk in fns:
            extra = ""
            if kk in libs:
                extra = f"  (max |err| vs dense f32: {err[kk]:.3g})"
            print(f"  {kk:18s} {_ms(t[kk])}{extra}")
        print(f"  MLX/rmx {t['mlx'] / t['rmx']:.2f}x;  rmx dense f32/rmx quantized "
              f"{t['rmx dense f32'] / t['rmx']:.2f}x;  NumPy f32/rmx quantized "
              f"{t['numpy dense f32'] / t['rmx']:.2f}x")
        if rows == 1:
            bw = qbytes / t["rmx"] / 1e9
            print(f"  rmx weight read {bw:.1f} GB/s = {100 * bw / read_bw:.0f}% of the NumPy "
                  f"read stream, {100 * bw / copy_bw:.0f}% of copy bandwidth; MLX "
                  f"{qbytes / t['mlx'] / 1e9:.1f} GB/s")
        else:
            flops = 2 * rows * n * k
            print(f"  rmx {flops / t['rmx'] / 1e9:.0f} GFLOP/s, MLX "
                  f"{flops / t['mlx'] / 1e9:.0f} GFLOP/s")


def _ev(m, y):
    m.eval(y)
    return y


def _ms(s):
    return "-" if s is None else f"{s * 1e3:8.3f} ms"


if __name__ == "__main__":
    main()
