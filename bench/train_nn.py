"""Neural-network benchmark: rmx against MLX (and NumPy where it applies), one process,
each library warmed up and then timed back to back, medians (see harness.py).

Rows:
- digits MLP training step: the model, optimizer and compiled step of
  examples/digits_mlp.py (64-256-256-10, dropout, AdamW, batch 32, ``mx.compile`` with
  model/optimizer/random state captured); both libraries start from the same weights and
  seed, so their first losses must agree.
- digits CNN training step: the same for examples/digits_cnn.py (``nn.Conv2d``); a library
  without ``conv2d`` is skipped with a note.
- transformer decoder layer forward: d=512, 8 heads, sequence 256, batch 1, float32; the
  arithmetic of MLX's ``nn.TransformerDecoderLayer`` (pre-norm: causal self-attention,
  cross-attention over a 256-long memory, ReLU MLP 512-2048-512) built by hand from plain
  ops in rmx, MLX and NumPy (OpenBLAS), plus MLX's own layer (``mx.fast`` kernels) and
  rmx's ``nn.TransformerDecoderLayer`` when rmx has ``mx.fast``, and NumPy limited to one
  OpenBLAS thread (``threadpoolctl``): on a machine shared with other jobs OpenBLAS's
  spinning threads can make the default NumPy row 10x slower. All use MLX's weights;
  outputs are checked against MLX's layer.

    PYTHONPATH=python python3 bench/train_nn.py [--repeats 7] [--steps 20]
"""

import argparse
import math
import os
import sys
import time

import blas_quiet  # noqa: F401 - before NumPy: OpenBLAS threads must not spin
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
from harness import fmt_time, measure, print_table  # noqa: E402

import mlx.core as mlx_core  # noqa: E402
import mlx.nn as mlx_nn  # noqa: E402
import mlx.optimizers as mlx_optim  # noqa: E402
import mlx.utils as mlx_utils  # noqa: E402
import rmx.core as rmx_core  # noqa: E402
import rmx.nn as rmx_nn  # noqa: E402
import rmx.optimizers as rmx_optim  # noqa: E402

LIBS = {"rmx": (rmx_core, rmx_nn, rmx_optim), "mlx": (mlx_core, mlx_nn, mlx_optim)}


def to_lib(mx, tree):
    return mlx_utils.tree_map(lambda a: mx.array(np.array(a)), tree)


def training_stepper(lib, build, x, y, weights, steps):
    """A callable running ``steps`` compiled training steps of ``build(nn)`` on one batch."""
    mx, nn, optim = LIBS[lib]
    mx.random.seed(0)
    model = build(nn)
    model.update(to_lib(mx, weights))
    opt = optim.AdamW(learning_rate=1e-3, weight_decay=1e-4)
    xa, ya = mx.array(x), mx.array(y)
    mx.eval(model.parameters(), xa, ya)

    def loss_fn(model, a, b):
        return nn.losses.cross_entropy(model(a), b, reduction="mean")

    state = [model.state, opt.state, mx.random.state]

    def step(a, b):
        loss, grads = nn.value_and_grad(model, loss_fn)(model, a, b)
        opt.update(model, grads)
        return loss
    step = mx.compile(step, inputs=state, outputs=state)
    first = step(xa, ya)
    mx.eval(state, first)

    def run():
        for _ in range(steps):
            loss = step(xa, ya)
            mx.eval(state, loss)
        return loss.item()
    return run, first.item()


def bench_training(name, build, image, args, rows):
    from _common import digits

    x_train, _, y_train, _ = digits(0, image=image)
    x, y = x_train[:32], y_train[:32]
    mlx_core.random.seed(0)
    weights = build(mlx_nn).parameters()
    fns, firsts = {}, {}
    for lib in LIBS:
        mx = LIBS[lib][0]
        if image and not hasattr(mx, "conv2d"):
            print(f"note: {name}: {lib} has no conv2d yet (convolution branch) - row skipped")
            continue
        try:
            fns[lib], firsts[lib] = training_stepper(lib, build, x, y, weights, args.steps)
        except Exception as exc:  # an op missing on this branch: report, keep going
            print(f"note: {name}: {lib} failed to build the step ({type(exc).__name__}: {exc})"
                  " - row skipped")
    if not fns:
        return
    if len(firsts) == 2:
        print(f"{name}: first-step loss rmx {firsts['rmx']:.6f}, MLX {firsts['mlx']:.6f}")
    results, _ = measure(fns, args.warmup, args.repeats)
    per_step = {k: r["median"] / args.steps for k, r in results.items() if "median" in r}
    rows.append([f"{name} step (batch 32)", *(fmt_time(per_step.get(k)) for k in ("rmx", "mlx")),
                 "-", ratio(per_step, "mlx"), "-"])


def ratio(t, other):
    if "rmx" not in t or other not in t:
        return "-"
    return f"{t[other] / t['rmx']:.2f}x"


# --------------------------------------------------------------- decoder layer


def decoder_params(d, heads):
    mlx_core.random.seed(1)
    layer = mlx_nn.TransformerDecoderLayer(d, heads)
    layer.eval()
    flat = {k: np.array(v) for k, v in mlx_utils.tree_flatten(layer.parameters())}
    # Linear computes x @ W.T: every library gets the transposed (in, out) matrices.
    return layer, {k: (v.T.copy() if v.ndim == 2 else v) for k, v in flat.items()}


def make_decoder(ops, p, heads):
    """``nn.TransformerDecoderLayer`` (norm_first) with ``ops`` providing the arithmetic."""
    def ln(x, name):
        mu = ops.mean(x)
        xc = x - mu
        var = ops.mean(xc * xc)
        return xc * ops.rsqrt(var + 1e-5) * p[name + ".weight"] + p[name + ".bias"]

    def mha(name, q_in, kv_in, mask):
        q = q_in @ p[name + ".query_proj.weight"]
        k = kv_in @ p[name + ".key_proj.weight"]
        v = kv_in @ p[name + ".value_proj.weight"]
        b, lq, d = q.shape
        s = k.shape[1]
        hd = d // heads
        q = ops.transpose(q.reshape(b, lq, heads, hd), (0, 2, 1, 3))
        k = ops.transpose(k.reshape(b, s, heads, hd), (0, 2, 3, 1))
        v = ops.transpose(v.reshape(b, s, heads, hd), (0, 2, 1, 3))
        scores = (q * (1.0 / math.sqrt(hd))) @ k
        if mask is not None:
            scores = scores + mask
        out = ops.transpose(ops.softmax(scores) @ v, (0, 2, 1, 3)).reshape(b, lq, d)
        return out @ p[name + ".out_proj.weight"]

    def layer(x, memory, mask):
        y = ln(x, "ln1")
        x = x + mha("self_attention", y, y, mask)
        y = ln(x, "ln2")
        x = x + mha("cross_attention", y, memory, None)
        y = ln(x, "ln3")
        h = ops.relu(y @ p["linear1.weight"] + p["linear1.bias"])
        return x + h @ p["linear2.weight"] + p["linear2.bias"]
    return layer


class NumpyOps:
    mean = staticmethod(lambda x: x.mean(axis=-1, keepdims=True))
    rsqrt = staticmethod(lambda x: 1.0 / np.sqrt(x))
    transpose = staticmethod(np.transpose)
    relu = staticmethod(lambda x: np.maximum(x, np.float32(0)))

    @staticmethod
    def softmax(s):
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def mx_ops(mx):
    class Ops:
        mean = staticmethod(lambda x: mx.mean(x, axis=-1, keepdims=True))
        rsqrt = staticmethod(mx.rsqrt)
        transpose = staticmethod(mx.transpose)
        relu = staticmethod(lambda x: mx.maximum(x, 0.0))
        softmax = staticmethod(lambda s: mx.softmax(s, axis=-1))
    return Ops


def bench_decoder(args, rows, d=512, heads=8, seq=256):
    layer, p = decoder_params(d, heads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, seq, d)).astype(np.float32)
    memory = rng.uniform(-1, 1, (1, seq, d)).astype(np.float32)
    mask = np.triu(np.full((seq, seq), -1e9, np.float32), k=1)
    fns = {}
    for lib in LIBS:
        mx = LIBS[lib][0]
        pa = {k: mx.array(v) for k, v in p.items()}
        xa, ma, mk = mx.array(x), mx.array(memory), mx.array(mask)
        mx.eval(list(pa.values()), xa, ma, mk)
        f = make_decoder(mx_ops(mx), pa, heads)
        fns[lib] = (lambda f=f, mx=mx, xa=xa, ma=ma, mk=mk: _eval(mx, f(xa, ma, mk)))
    f_np = make_decoder(NumpyOps, p, heads)
    fns["numpy"] = lambda: f_np(x, memory, mask)
    try:  # OpenBLAS with one thread: immune to its busy-waiting on an oversubscribed machine
        from threadpoolctl import threadpool_limits

        def numpy_1t():
            with threadpool_limits(limits=1, user_api="blas"):
                return f_np(x, memory, mask)
        fns["numpy-1t"] = numpy_1t
    except ImportError:
        print("note: threadpoolctl is not installed: no single-thread NumPy row")
    xm, mm, mkm = mlx_core.array(x), mlx_core.array(memory), mlx_core.array(mask)
    fns["mlx-nn"] = lambda: _eval(mlx_core, layer(xm, mm, mkm, None))
    if hasattr(rmx_core, "fast"):
        rl = rmx_nn.TransformerDecoderLayer(d, heads)
        rl.update(to_lib(rmx_core, layer.parameters()))
        rl.eval()
        xr, mr, mkr = rmx_core.array(x), rmx_core.array(memory), rmx_core.array(mask)
        fns["rmx-nn"] = lambda: _eval(rmx_core, rl(xr, mr, mkr, None))
    else:
        print("note: rmx has no mx.fast yet: rmx's nn.TransformerDecoderLayer row skipped "
              "(its hand-built twin is the rmx column)")
    results, outputs = measure(fns, args.warmup, args.repeats)
    ref = np.array(outputs["mlx-nn"])
    for lib, out in outputs.items():
        err = np.abs(np.array(out) - ref).max()
        assert err < 2e-3, f"{lib} decoder output differs from MLX's layer by {err}"
    t = {k: r["median"] for k, r in results.items() if "median" in r}
    rows.append([f"decoder layer fwd d={d} h={heads} L={seq} (plain ops)", fmt_time(t.get("rmx")),
                 fmt_time(t.get("mlx")), fmt_time(t.get("numpy")), ratio(t, "mlx"),
                 ratio(t, "numpy")])
    if "numpy-1t" in t:
        rows.append(["  NumPy with 1 OpenBLAS thread", fmt_time(t.get("rmx")), "-",
                     fmt_time(t["numpy-1t"]), "-", ratio(t, "numpy-1t")])
    rows.append(["  MLX nn.TransformerDecoderLayer (mx.fast) vs rmx", fmt_time(t.get("rmx-nn")),
                 fmt_time(t.get("mlx-nn")), "-",
                 f"{t['mlx-nn'] / t.get('rmx-nn', t['rmx']):.2f}x", "-"])


def _eval(mx, out):
    mx.eval(out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    ap.add_argument("--filter", default="", help="only rows whose name contains this")
    args = ap.parse_args()
    from digits_cnn import build as build_cnn
    from digits_mlp import build as build_mlp

    print(f"{time.strftime('%Y-%m-%d %H:%M')}  nproc={os.cpu_count()}  "
          f"load={os.getloadavg()[0]:.2f}  repeats={args.repeats}  steps/run={args.steps}")
    rows = []
    if "mlp" in args.filter or not args.filter:
        bench_training("digits MLP", build_mlp, False, args, rows)
    if "cnn" in args.filter or not args.filter:
        bench_training("digits CNN", build_cnn, True, args, rows)
    if "decoder" in args.filter or not args.filter:
        bench_decoder(args, rows)
    print()
    print_table(["workload", "rmx", "MLX", "NumPy", "MLX/rmx", "NumPy/rmx"], rows)


if __name__ == "__main__":
    main()
