"""Model-sized GPU workloads of issue 10, rmx beside PyTorch, JAX and (when importable) MLX's
CUDA backend, in one run:

- a GPT-style decoder layer forward, d=4096, 32 heads, 2048 tokens, batch 1, bf16: layer
  norm, q|k|v product, causal attention, output product, layer norm, 4d GELU (tanh) MLP,
  both residuals (~0.9 TFLOP);
- an MLP training step, bf16: 1024-4096-4096-1024 with ReLU, batch 2048, mean squared
  error, `value_and_grad` + SGD (~0.31 TFLOP), compiled with the parameters as state
  (rmx, MLX), `jax.jit` with donated parameters, and torch eager autograd.

    PYTHONPATH=python python3 bench/cuda_models.py [--mlx-site DIR] [--quick]

Each row: the median of 5 timed loops, each ending with a device synchronization.
"""

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from cuda import modules, timed  # noqa: E402

import rmx.core as rmx  # noqa: E402

D, HEADS, SEQ = 4096, 32, 2048
SIZES, BATCH, LR = [1024, 4096, 4096, 1024], 2048, 1e-3


def decoder_weights(rng, d):
    s = 1 / math.sqrt(d)
    w = lambda *shape: rng.uniform(-s, s, shape).astype(np.float32)  # noqa: E731
    return {"wqkv": w(3 * d, d), "wo": w(d, d), "w1": w(4 * d, d), "w2": w(d, 4 * d),
            "g1": 1 + w(d), "b1": w(d), "g2": 1 + w(d), "b2": w(d)}


def mlx_like_decoder(m, d, heads):
    """The layer on rmx.core or mlx.core (same API); the GELU is compiled, as MLX's nn has it."""
    gelu = m.compile(lambda h: 0.5 * h * (1 + m.tanh(0.7978845608028654 * (h + 0.044715 * h**3))))

    def layer(x, p):
        b, n, _ = x.shape
        hd = d // heads
        h = m.fast.layer_norm(x, p["g1"], p["b1"], 1e-5)
        qkv = (h @ p["wqkv"].T).reshape(b, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)
        o = m.fast.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], scale=hd**-0.5,
                                                mask="causal")
        x = x + o.transpose(0, 2, 1, 3).reshape(b, n, d) @ p["wo"].T
        h = m.fast.layer_norm(x, p["g2"], p["b2"], 1e-5)
        return x + gelu(h @ p["w1"].T) @ p["w2"].T

    return layer


def torch_decoder(torch, d, heads):
    f = torch.nn.functional

    def layer(x, p):
        b, n, _ = x.shape
        hd = d // heads
        h = f.layer_norm(x, (d,), p["g1"], p["b1"], 1e-5)
        qkv = (h @ p["wqkv"].T).reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
        o = f.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
        x = x + o.transpose(1, 2).reshape(b, n, d) @ p["wo"].T
        h = f.layer_norm(x, (d,), p["g2"], p["b2"], 1e-5)
        return x + f.gelu(h @ p["w1"].T, approximate="tanh") @ p["w2"].T

    return layer


def mlp_data(rng, batch):
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        s = 1 / math.sqrt(fan_in)
        params += [rng.uniform(-s, s, (fan_in, fan_out)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    x = rng.uniform(-1, 1, (batch, SIZES[0])).astype(np.float32)
    y = rng.uniform(-1, 1, (batch, SIZES[-1])).astype(np.float32)
    return params, x, y


def mlp_loss(m, ps, x, y):
    h = x
    for i in range(0, len(ps) - 2, 2):
        h = m.maximum(h @ ps[i] + ps[i + 1], 0)
    return m.mean(m.square(h @ ps[-2] + ps[-1] - y))


def mx_mlp_step(m, params, x, y, compiled):
    state = [m.array(p).astype(m.bfloat16) for p in params]
    xa, ya = m.array(x).astype(m.bfloat16), m.array(y).astype(m.bfloat16)
    m.eval(state, xa, ya)
    vag = m.value_and_grad(lambda ps: mlp_loss(m, ps, xa, ya))

    def update():
        loss, grads = vag(state)
        state[:] = [p - LR * g for p, g in zip(state, grads)]
        return loss

    run = m.compile(update, inputs=state, outputs=state) if compiled else update
    return lambda: m.eval(run(), state)


def jax_mlp_step(params, x, y):
    import jax
    import jax.numpy as jnp

    ps = [jnp.asarray(p, dtype=jnp.bfloat16) for p in params]
    xa, ya = jnp.asarray(x, jnp.bfloat16), jnp.asarray(y, jnp.bfloat16)

    @jax.jit
    def step(ps):
        loss, grads = jax.value_and_grad(lambda q: mlp_loss(jnp, q, xa, ya))(ps)
        return loss, [p - LR * g for p, g in zip(ps, grads)]

    state = {"ps": ps}

    def run():
        loss, state["ps"] = step(state["ps"])
        return loss

    return run, lambda: jax.block_until_ready(state["ps"])


def torch_mlp_step(torch, params, x, y):
    ps = [torch.tensor(p, device="cuda", dtype=torch.bfloat16, requires_grad=True)
          for p in params]
    xa = torch.tensor(x, device="cuda", dtype=torch.bfloat16)
    ya = torch.tensor(y, device="cuda", dtype=torch.bfloat16)
    opt = torch.optim.SGD(ps, lr=LR)

    class T:  # the ops `mlp_loss` needs, on torch tensors
        maximum = staticmethod(lambda a, b: torch.clamp_min(a, b))
        mean = staticmethod(torch.mean)
        square = staticmethod(torch.square)

    def run():
        opt.zero_grad(set_to_none=True)
        loss = mlp_loss(T, ps, xa, ya)
        loss.backward()
        opt.step()

    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mlx-site", default=None)
    p.add_argument("--quick", action="store_true", help="d=1024, 512 tokens, MLP batch 64")
    args = p.parse_args()
    d, seq, batch = (1024, 512, 64) if args.quick else (D, SEQ, BATCH)
    mods = modules(args.mlx_site)
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    # decoder layer forward
    w = decoder_weights(rng, d)
    x = rng.standard_normal((1, seq, d)).astype(np.float32)
    flops = 2 * seq * d * (3 * d + d + 8 * d) + 2 * seq * seq * d  # causal: half of 4 s^2 d
    t = {}
    for label, m in mods.items():
        pw = {k: m.array(v).astype(m.bfloat16) for k, v in w.items()}
        xa = m.array(x).astype(m.bfloat16)
        m.eval(pw, xa)
        layer = mlx_like_decoder(m, d, HEADS)
        t[label] = timed(lambda: m.eval(layer(xa, pw)), m.synchronize, 10)
    if torch:
        pw = {k: torch.tensor(v, device="cuda", dtype=torch.bfloat16) for k, v in w.items()}
        xt = torch.tensor(x, device="cuda", dtype=torch.bfloat16)
        layer = torch_decoder(torch, d, HEADS)
        with torch.no_grad():
            t["torch"] = timed(lambda: layer(xt, pw), torch.cuda.synchronize, 10)
            ref = layer(xt, pw).float().cpu().numpy()
        got = np.array(mlx_like_decoder(rmx, d, HEADS)(
            rmx.array(x).astype(rmx.bfloat16),
            {k: rmx.array(v).astype(rmx.bfloat16) for k, v in w.items()}).astype(rmx.float32))
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        print(f"decoder layer: |rmx - torch| / |torch| = {err:.2e}")
    rows.append((f"decoder layer d{d} s{seq} bf16 (forward)", t, flops))
    # MLP training step
    params, xm, ym = mlp_data(rng, batch)
    mflops = 6 * batch * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    t = {}
    for label, m in mods.items():
        t[label] = timed(mx_mlp_step(m, params, xm, ym, False), m.synchronize, 20)
        t[label + " compiled"] = timed(mx_mlp_step(m, params, xm, ym, True), m.synchronize, 20)
    try:
        run, sync = jax_mlp_step(params, xm, ym)
        t["jax jit"] = timed(run, sync, 20)
    except Exception as e:  # noqa: BLE001 - JAX without a GPU drops its column
        print(f"JAX failed: {type(e).__name__}: {e}"[:300])
    if torch:
        t["torch"] = timed(torch_mlp_step(torch, params, xm, ym), torch.cuda.synchronize, 20)
    rows.append((f"MLP step {'-'.join(map(str, SIZES))} batch {batch} bf16", t, mflops))
    for name, t, fl in rows:
        print(f"== {name} ({fl / 1e12:.3f} TFLOP)")
        best_other = min((v for k, v in t.items() if not k.startswith("rmx")), default=None)
        for k, v in t.items():
            extra = f"  {fl / v / 1e12:6.0f} TF/s  {1 / v:8.1f} /s"
            if best_other and k.startswith("rmx"):
                extra += f"  best other / this = {best_other / v:.2f}"
            print(f"   {k:16s} {v * 1e3:9.4f} ms{extra}")


if __name__ == "__main__":
    main()
