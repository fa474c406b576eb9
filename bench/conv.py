"""conv2d benchmark: rmx vs MLX vs an im2col + NumPy (OpenBLAS) reference.

    PYTHONPATH=python python3 bench/conv.py [--repeats N] [--batch B]

Workload (from the task): input 8x56x56x64 (NHWC), weight 64x3x3x64, padding 1,
float32. Rows: the forward pass, and forward + backward (gradients of a sum of the
output with respect to input and weight). Times are medians of back-to-back runs
(bench/harness.py); ratios are other / rmx (> 1: rmx faster).
"""

import argparse
import os
import sys

import blas_quiet  # noqa: F401 - before NumPy: OpenBLAS threads must not spin
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import fmt_ratio, fmt_time, measure  # noqa: E402
from workloads import np_conv2d_im2col  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    import mlx.core as mx
    import rmx.core as rx

    mx.set_default_device(mx.cpu)
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((args.batch, 56, 56, 64)).astype(np.float32)
    wn = (rng.standard_normal((64, 3, 3, 64)) * 0.05).astype(np.float32)
    libs = {"rmx": rx, "mlx": mx}
    arrs = {k: (m.array(xn), m.array(wn)) for k, m in libs.items()}
    for k, m in libs.items():
        m.eval(*arrs[k])

    def fwd(k):
        m, (x, w) = libs[k], arrs[k]
        return lambda: np.array(m.conv2d(x, w, padding=1))

    def fwd_bwd(k):
        m, (x, w) = libs[k], arrs[k]
        g = m.value_and_grad(lambda a, b: m.conv2d(a, b, padding=1).sum(), argnums=(0, 1))

        def run():
            v, (gx, gw) = g(x, w)
            m.eval(v, gx, gw)
            return np.array(gx), np.array(gw)
        return run

    flops = 2 * args.batch * 56 * 56 * 64 * 64 * 9
    print(f"conv2d {args.batch}x56x56x64 * 64x3x3x64, padding 1, f32; "
          f"{os.cpu_count()} CPUs; {flops / 1e9:.2f} GFLOP per forward")
    rows = [("forward", {"rmx": fwd("rmx"), "mlx": fwd("mlx"),
                         "numpy": lambda: np_conv2d_im2col(xn, wn, 1)}, flops),
            ("forward+backward", {"rmx": fwd_bwd("rmx"), "mlx": fwd_bwd("mlx")}, 3 * flops)]
    for name, fns, work in rows:
        res, outs = measure(fns, warmup=1, repeats=args.repeats)
        ref = outs.get("mlx")
        for lib in fns:
            r = res[lib]
            if "error" in r:
                print(f"  {name:17s} {lib:6s} ERROR {r['error']}")
                continue
            t = r["median"]
            ratio = "" if lib == "rmx" else \
                f"  {lib}/rmx {fmt_ratio(t, res['rmx']['median'])}"
            print(f"  {name:17s} {lib:6s} {fmt_time(t):>10s}  {work / t / 1e9:6.1f} GFLOP/s{ratio}")
        # correctness of the timed outputs against MLX
        if ref is not None:
            got = outs["rmx"]
            pairs = zip(got, ref) if isinstance(ref, tuple) else [(got, ref)]
            err = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) for a, b in pairs)
            print(f"  {name:17s} max |rmx - mlx| / max |mlx| = {err:.1e}")


if __name__ == "__main__":
    main()
