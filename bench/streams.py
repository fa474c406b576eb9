"""Streams benchmark (issue 9): an MLP training loop with `async_eval` overlapping the
next step's graph building against plain `eval`, and the per-op overhead with streams.

    PYTHONPATH=python python3 bench/streams.py [--lib rmx|mlx] [--steps N] [--repeats N]

MLP 784-512-512-10 (ReLU), batch 256, cross-entropy via logsumexp, SGD (lr 0.1); data are
8 fixed random batches made with NumPy (seed 0). Loops are interleaved per repeat
(eval, async, eval, async, ...) and the table shows medians. Bar: async >= 1.1x eval.
"""

import argparse
import datetime
import os
import platform
import statistics
import time

import numpy as np


def mlp(mx, rng):
    def init(i, o):
        return mx.array((rng.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float32))
    params = [init(784, 512), mx.zeros((512,)), init(512, 512), mx.zeros((512,)),
              init(512, 10), mx.zeros((10,))]

    def loss_fn(params, x, y):
        w1, b1, w2, b2, w3, b3 = params
        h = mx.maximum(x @ w1 + b1, 0.0)
        h = mx.maximum(h @ w2 + b2, 0.0)
        logits = h @ w3 + b3
        picked = mx.take_along_axis(logits, mx.expand_dims(y, 1), axis=1)
        return mx.mean(mx.logsumexp(logits, axis=1) - mx.squeeze(picked, 1))

    vg = mx.value_and_grad(loss_fn)

    def step(params, x, y):
        loss, grads = vg(params, x, y)
        return loss, [p - 0.1 * g for p, g in zip(params, grads)]

    return params, step


def batches(mx, rng, n=8):
    xs = [mx.array(rng.standard_normal((256, 784)).astype(np.float32)) for _ in range(n)]
    ys = [mx.array(rng.integers(0, 10, 256).astype(np.int32)) for _ in range(n)]
    mx.eval(xs, ys)
    return xs, ys


def loop_eval(mx, params, step, data, steps):
    xs, ys = data
    t = time.perf_counter()
    for i in range(steps):
        loss, params = step(params, xs[i % len(xs)], ys[i % len(ys)])
        mx.eval(loss, params)
    return time.perf_counter() - t, loss.item()


def loop_async(mx, params, step, data, steps):
    xs, ys = data
    t = time.perf_counter()
    loss, params = step(params, xs[0], ys[0])
    mx.async_eval(loss, params)
    for i in range(1, steps):
        nxt_loss, nxt = step(params, xs[i % len(xs)], ys[i % len(ys)])  # built while step i-1 runs
        mx.async_eval(nxt_loss, nxt)
        loss.item()  # wait for step i-1
        loss, params = nxt_loss, nxt
    mx.eval(loss, params)
    return time.perf_counter() - t, loss.item()


def overhead(mx, iters, stream, use_async):
    x = mx.array(1.0)
    mx.eval(x)
    t = time.perf_counter()
    for _ in range(iters):
        x = mx.add(mx.multiply(x, 1.0001, stream=stream), 0.0001, stream=stream)
    if use_async:
        mx.async_eval(x)
    mx.eval(x)
    return (time.perf_counter() - t) / (2 * iters) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default="rmx", choices=["rmx", "mlx"])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    mx = __import__(f"{a.lib}.core", fromlist=["core"])
    print(f"# {datetime.datetime.now().astimezone().isoformat(timespec='seconds')} "
          f"{platform.node()} nproc={os.cpu_count()} load={open('/proc/loadavg').read().split()[:3]} "
          f"lib={a.lib}")
    rng = np.random.default_rng(0)
    params, step = mlp(mx, rng)
    mx.eval(params)
    data = batches(mx, rng)
    loop_eval(mx, params, step, data, 3)  # warm-up
    loop_async(mx, params, step, data, 3)
    te, ta, losses = [], [], set()
    for _ in range(a.repeats):
        t, le = loop_eval(mx, params, step, data, a.steps)
        te.append(t)
        t, la = loop_async(mx, params, step, data, a.steps)
        ta.append(t)
        losses.add((round(le, 4), round(la, 4)))
    se, sa = a.steps / statistics.median(te), a.steps / statistics.median(ta)
    print(f"MLP train loop   eval: {se:8.2f} steps/s   async_eval: {sa:8.2f} steps/s   "
          f"ratio {sa / se:.3f}x  ({'PASS' if sa / se >= 1.1 else 'FAIL'} >= 1.1x)   "
          f"final losses {sorted(losses)}")
    s = mx.new_stream(mx.cpu)
    rows = [("default stream, eval", None, False), ("new stream, eval", s, False),
            ("new stream, async_eval+eval", s, True)]
    res = {r[0]: [] for r in rows}
    for _ in range(3 * a.repeats):
        for name, st, asy in rows:
            res[name].append(overhead(mx, 1000, st, asy))
    for name, _, _ in rows:
        print(f"per-op overhead ({name:28s}): {statistics.median(res[name]):6.3f} us/op")


if __name__ == "__main__":
    main()
