"""Training-step benchmark (issues 3 and 5): value_and_grad + SGD on an MLP, cross-entropy;
by default 784-512-512-10 at batch 256 (GEMM-bound), with `--mnist` the MLP of MLX's own
MNIST example (mlx-examples/mnist: 2 hidden layers of 32, batch 256, SGD). One process, each library timed back to back after a warm-up, medians:

- rmx   `value_and_grad` + SGD update, `eval` of the new parameters
- MLX   the same code on mlx.core
- NumPy a hand-written forward and backward pass
- rmx-manual: the NumPy arithmetic written with rmx ops (no `grad`), which measures the
  overhead of the transform over the bare forward+backward arithmetic;
- rmx-compiled / mlx-compiled: the step under `compile` with the parameters as captured
  state (issue 5).

    PYTHONPATH=python python3 bench/train_mlp.py [--steps 10] [--repeats 7] [--mnist]
"""

import argparse
import os
import statistics
import sys
import time

import blas_quiet  # noqa: F401 - before NumPy: OpenBLAS threads must not spin
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from harness import measure  # noqa: E402

SIZES = [784, 512, 512, 10]
BATCH = 256
LR = 0.01


def init(rng):
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        w = rng.uniform(-1, 1, (fan_in, fan_out)).astype(np.float32) / np.sqrt(fan_in)
        params += [w.astype(np.float32), np.zeros(fan_out, np.float32)]
    x = rng.uniform(-1, 1, (BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH).astype(np.int32)
    return params, x, y


def mx_trainer(mx, params, x, y, compiled=False):
    """Returns a callable running one SGD step with value_and_grad; with `compiled`, the
    step is `mx.compile`d with the parameters captured as state (inputs=/outputs=)."""
    state = [mx.array(p) for p in params]
    xa, ya = mx.array(x), mx.array(y)
    mx.eval(state, xa, ya)

    def loss_fn(ps):
        h = xa
        for i in range(0, len(ps) - 2, 2):
            h = mx.maximum(h @ ps[i] + ps[i + 1], 0.0)
        logits = h @ ps[-2] + ps[-1]
        picked = mx.take_along_axis(logits, ya[:, None], axis=-1)[:, 0]
        return mx.mean(mx.logsumexp(logits, axis=-1) - picked)

    vag = mx.value_and_grad(loss_fn)

    def update():
        loss, grads = vag(state)
        state[:] = [p - LR * g for p, g in zip(state, grads)]
        return loss

    run = mx.compile(update, inputs=state, outputs=state) if compiled else update

    def step():
        loss = run()
        mx.eval(loss, state)
        return loss

    return step


def manual_step(ops, params, x, y, onehot):
    """Forward + backward by hand; `ops` supplies matmul/relu/exp helpers."""
    w1, b1, w2, b2, w3, b3 = params
    h1 = x @ w1 + b1
    a1 = ops.relu(h1)
    h2 = a1 @ w2 + b2
    a2 = ops.relu(h2)
    z = a2 @ w3 + b3
    zmax = ops.rowmax(z)
    e = ops.exp(z - zmax)
    s = ops.rowsum(e)
    loss = ops.mean(ops.log(s) + zmax - ops.rowsum(z * onehot))
    dz = (e / s - onehot) * (1.0 / BATCH)
    dw3, db3 = ops.t(a2) @ dz, ops.colsum(dz)
    dh2 = (dz @ ops.t(w3)) * ops.positive(h2)
    dw2, db2 = ops.t(a1) @ dh2, ops.colsum(dh2)
    dh1 = (dh2 @ ops.t(w2)) * ops.positive(h1)
    dw1, db1 = ops.t(x) @ dh1, ops.colsum(dh1)
    grads = [dw1, db1, dw2, db2, dw3, db3]
    return loss, [p - LR * g for p, g in zip(params, grads)]


class NumpyOps:
    relu = staticmethod(lambda v: np.maximum(v, 0.0))
    rowmax = staticmethod(lambda v: v.max(axis=-1, keepdims=True))
    rowsum = staticmethod(lambda v: v.sum(axis=-1, keepdims=True))
    colsum = staticmethod(lambda v: v.sum(axis=0))
    mean = staticmethod(np.mean)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    t = staticmethod(lambda v: v.T)
    positive = staticmethod(lambda v: (v > 0).astype(np.float32))


def mx_ops(mx):
    class Ops:
        relu = staticmethod(lambda v: mx.maximum(v, 0.0))
        rowmax = staticmethod(lambda v: mx.max(v, axis=-1, keepdims=True))
        rowsum = staticmethod(lambda v: mx.sum(v, axis=-1, keepdims=True))
        colsum = staticmethod(lambda v: mx.sum(v, axis=0))
        mean = staticmethod(mx.mean)
        exp = staticmethod(mx.exp)
        log = staticmethod(mx.log)
        t = staticmethod(lambda v: v.T)
        positive = staticmethod(lambda v: (v > 0).astype(mx.float32))
    return Ops


def numpy_trainer(params, x, y):
    state = [p.copy() for p in params]
    onehot = np.eye(SIZES[-1], dtype=np.float32)[y]

    def step():
        loss, new = manual_step(NumpyOps, state, x, y, onehot)
        state[:] = new
        return loss

    return step


def mx_manual_trainer(mx, params, x, y):
    state = [mx.array(p) for p in params]
    xa = mx.array(x)
    onehot = mx.array(np.eye(SIZES[-1], dtype=np.float32)[y])
    mx.eval(state, xa, onehot)
    ops = mx_ops(mx)

    def step():
        loss, new = manual_step(ops, state, xa, None, onehot)
        state[:] = new
        mx.eval(loss, state)
        return loss

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10, help="SGD steps per timed run")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--mnist", action="store_true",
                    help="MLX's MNIST example MLP: 784-32-32-10, batch 256")
    args = ap.parse_args()
    if args.mnist:
        SIZES[:] = [784, 32, 32, 10]

    import mlx.core as mlx
    import rmx.core as rmx

    params, x, y = init(np.random.default_rng(0))
    steppers = {
        "rmx": mx_trainer(rmx, params, x, y),
        "mlx": mx_trainer(mlx, params, x, y),
        "numpy": numpy_trainer(params, x, y),
        "rmx-manual": mx_manual_trainer(rmx, params, x, y),
        "rmx-compiled": mx_trainer(rmx, params, x, y, compiled=True),
        "mlx-compiled": mx_trainer(mlx, params, x, y, compiled=True),
    }

    def run(step):
        return lambda: [float(step()) for _ in range(args.steps)][-1]

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  nproc={os.cpu_count()}  load={os.getloadavg()[0]:.2f}  "
          f"steps/run={args.steps}  repeats={args.repeats}  MLP {'-'.join(map(str, SIZES))} batch {BATCH}")
    results, outputs = measure({k: run(s) for k, s in steppers.items()}, args.warmup, args.repeats)
    rate = {}
    for lib, r in results.items():
        if "error" in r:
            print(f"{lib:11s} ERROR {r['error']}")
            continue
        rate[lib] = args.steps / statistics.median(r["times"])
        print(f"{lib:11s} {rate[lib]:8.1f} steps/s   (last loss {outputs[lib]:.4f})")
    if "rmx" in rate:
        for other in ("mlx", "numpy", "rmx-manual", "rmx-compiled", "mlx-compiled"):
            if other in rate:
                print(f"rmx / {other:10s} = {rate['rmx'] / rate[other]:.2f}x")
        for lib in ("rmx", "mlx"):
            if f"{lib}-compiled" in rate:
                print(f"{lib}: compiled / uncompiled = {rate[lib + '-compiled'] / rate[lib]:.2f}x")
        if "rmx-manual" in rate:
            print(f"grad overhead over the hand-written rmx backward: "
                  f"{(rate['rmx-manual'] / rate['rmx'] - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
