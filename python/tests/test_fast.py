"""rmx.core.fast (rms_norm, layer_norm, rope, scaled_dot_product_attention) against
MLX 0.32.4 and against the ops' definitions in NumPy float64: dtypes, odd and batched
shapes, non-contiguous inputs, grouped-query heads, masks, offsets, errors, vjp/jvp (vs
MLX and finite differences) and vmap (vs a loop)."""

import numpy as np
import pytest

from diff import A, REF, check, check_raises, get_rmx, rand, rmx_only

HALF_TOL = {"float32": {}, "float16": {"rtol": 5e-3, "atol": 5e-3},
            "bfloat16": {"rtol": 3e-2, "atol": 3e-2}}
NP_TOL = {"float32": {"np_rtol": 1e-4, "np_atol": 1e-5},
          "float16": {"np_rtol": 5e-3, "np_atol": 5e-3},
          "bfloat16": {"np_rtol": 4e-2, "np_atol": 4e-2}}
FL = ["float32", "float16", "bfloat16"]


def tols(dt):
    return {**HALF_TOL[dt], **NP_TOL[dt]}


# MLX rounds q*scale, the scores and the probabilities to f16/bf16 (measured: 5x the error
# of rmx, which rounds once), so attention is compared loosely with MLX in half types and
# tightly with the float64 definition.
SDPA_TOL = {"float32": {"rtol": 1e-4, "atol": 2e-5, "np_rtol": 1e-5, "np_atol": 1e-5},
            "float16": {"rtol": 1e-2, "atol": 1.5e-2, "np_rtol": 2e-3, "np_atol": 2e-3},
            "bfloat16": {"rtol": 6e-2, "atol": 8e-2, "np_rtol": 1.6e-2, "np_atol": 1.6e-2}}


# ---------------------------------------------------------------- references (float64)

def np_rms(x, w, eps):
    y = x / np.sqrt(np.mean(x * x, -1, keepdims=True) + eps)
    return y if w is None else y * w


def np_ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    if w is not None:
        y = y * w
    return y if b is None else y + b


def np_rope(x, dims, trad, base, scale, offset, freqs=None):
    x = np.asarray(x, np.float64)
    out = x.copy()
    half = dims // 2
    off = np.asarray(offset, np.float64).reshape(-1)
    t = np.arange(x.shape[-2], dtype=np.float64)
    if off.size > 1:
        pos = (t[None, :] + off[:, None]).reshape((x.shape[0],) + (1,) * (x.ndim - 3) + (-1,))
    else:
        pos = t + off[0]
    pos = pos * scale
    inv = 1.0 / np.asarray(freqs, np.float64) if freqs is not None else \
        base ** (-np.arange(half) * 2.0 / dims)
    th = pos[..., None] * inv
    c, s = np.cos(th), np.sin(th)
    if trad:
        x1, x2 = x[..., 0:dims:2], x[..., 1:dims:2]
        out[..., 0:dims:2], out[..., 1:dims:2] = x1 * c - x2 * s, x1 * s + x2 * c
    else:
        x1, x2 = x[..., :half], x[..., half:dims]
        out[..., :half], out[..., half:dims] = x1 * c - x2 * s, x1 * s + x2 * c
    return out


def np_sdpa(q, k, v, scale, mask=None, sinks=None, lowest=np.finfo(np.float32).min):
    rep = q.shape[1] // k.shape[1]
    k = np.repeat(k, rep, axis=1)
    v = np.repeat(v, rep, axis=1)
    s = scale * q @ np.swapaxes(k, -1, -2)
    lq, lk = q.shape[2], k.shape[2]
    if isinstance(mask, str):  # lower-right aligned, even when lq > lk (rows see nothing)
        mask = (np.arange(lq)[:, None] + lk - lq) >= np.arange(lk)[None]
    if mask is not None:
        mask = np.asarray(mask)
        s = np.where(mask, s, lowest) if mask.dtype == bool else s + mask
    if sinks is not None:
        col = np.broadcast_to(np.asarray(sinks)[None, :, None, None], s.shape[:-1] + (1,))
        s = np.concatenate([col, s], -1)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    if sinks is not None:
        p = p[..., 1:]
    return p @ v


def sdpa(m, q, k, v, scale=0.3, **kw):
    return m.fast.scaled_dot_product_attention(q, k, v, scale=scale, **kw)


def heads_view(x):
    """A (B, L, H, D) array as (B, H, L, D): the transposed view attention gets."""
    return x.transpose(0, 2, 1, 3)


# ---------------------------------------------------------------- rms_norm / layer_norm

@pytest.mark.parametrize("dt", FL)
@pytest.mark.parametrize("shape", [(3, 5, 33), (7,), (2, 4096), (1, 1)], ids=repr)
def test_rms_norm(dt, shape):
    x = A(rand(shape, dt, seed=1), dt)
    w = A(rand(shape[-1:], dt, seed=2), dt)
    check(lambda m, a: m.fast.rms_norm(a, None, 1e-5), x,
          np_fn=lambda a: np_rms(a, None, 1e-5), **tols(dt))
    check(lambda m, a, b: m.fast.rms_norm(a, b, 1e-3), x, w,
          np_fn=lambda a, b: np_rms(a, b, 1e-3), **tols(dt))


@pytest.mark.parametrize("dt", FL)
@pytest.mark.parametrize("affine", ["none", "w", "b", "wb"])
def test_layer_norm(dt, affine):
    x = A(rand((4, 3, 37), dt, seed=3, low=1, high=4), dt)
    w = A(rand((37,), dt, seed=4), dt) if "w" in affine else None
    b = A(rand((37,), dt, seed=5), dt) if "b" in affine else None
    check(lambda m, a, ww, bb: m.fast.layer_norm(a, ww, bb, 1e-5), x, w, b,
          np_fn=lambda a, ww, bb: np_ln(a, ww, bb, 1e-5), **tols(dt))


def test_norms_mixed_dtypes_and_views():
    x16 = A(rand((3, 8), "float16", seed=6), "float16")
    w32 = A(rand((8,), "float32", seed=7))
    wbf = A(rand((8,), "bfloat16", seed=8), "bfloat16")
    check(lambda m, a, w: m.fast.rms_norm(a, w, 1e-5), x16, w32)  # float32 out
    check(lambda m, a, w: m.fast.rms_norm(a, w, 1e-5), x16, wbf, rtol=1e-3)  # float32 out
    check(lambda m, a, w: m.fast.layer_norm(a, None, w, 1e-5), x16, w32)
    xi = A(np.arange(12, dtype=np.int32).reshape(3, 4))
    check(lambda m, a, w: m.fast.rms_norm(a, w, 1e-5), xi, A(np.ones(4, np.float16), "float16"))
    # non-contiguous rows and last axis
    xv = A(rand((9, 6, 5), "float32", seed=9), view=lambda a: a.transpose(2, 0, 1)[:, ::2])
    check(lambda m, a: m.fast.rms_norm(a, None, 1e-5), xv, np_fn=lambda a: np_rms(a, None, 1e-5))
    check(lambda m, a: m.fast.layer_norm(a, None, None, 1e-5), xv,
          np_fn=lambda a: np_ln(a, None, None, 1e-5))
    check(lambda m, a: m.fast.rms_norm(a, None, 1e-5), A(np.zeros((0, 8), np.float32)))


@rmx_only
def test_layer_norm_over_an_empty_axis():
    # Against NumPy only: MLX 0.32.4 sometimes never returns from evaluating this (its
    # worker spins; seen twice in full-suite runs), which would hang the suite.
    mx = get_rmx()
    y = mx.fast.layer_norm(mx.zeros((2, 0)), None, None, 1e-5)
    mx.eval(y)
    assert y.shape == (2, 0) and y.dtype == mx.float32


def test_norm_errors():
    x = A(rand((2, 3, 8), seed=1))
    for f in (lambda m, a: m.fast.rms_norm(m.array(1.0), None, 1e-5),
              lambda m, a: m.fast.rms_norm(a, m.ones((1, 8)), 1e-5),
              lambda m, a: m.fast.rms_norm(a, m.ones((7,)), 1e-5),
              lambda m, a: m.fast.rms_norm(a.astype(m.int32), None, 1e-5),
              lambda m, a: m.fast.layer_norm(m.array(1.0), None, None, 1e-5),
              lambda m, a: m.fast.layer_norm(a, m.ones((1, 8)), None, 1e-5),
              lambda m, a: m.fast.layer_norm(a, None, m.ones((9,)), 1e-5),
              lambda m, a: m.fast.layer_norm(a.astype(m.uint8), None, None, 1e-5)):
        check_raises(f, x, err=ValueError)


# ---------------------------------------------------------------- add_rms_norm (rmx only)

def add_norm(m, x, r, w, eps=1e-5):
    """rmx's fused ``fast.add_rms_norm``; MLX, which has none, runs its definition."""
    if m is get_rmx():
        return m.fast.add_rms_norm(x, r, w, eps)
    h = x + r
    return (h, m.fast.rms_norm(h, w, eps))


@pytest.mark.parametrize("dt", FL)
@pytest.mark.parametrize("shape", [(3, 5, 33), (1, 2048), (2, 2049), (7,), (0, 8)], ids=repr)
def test_add_rms_norm_is_the_add_then_the_norm(dt, shape):
    """Against MLX's add and rms_norm (values, dtypes, shapes), and bit for bit against
    rmx's own two ops: the fusion changes no rounding."""
    x = A(rand(shape, dt, seed=31), dt)
    r = A(rand(shape, dt, seed=32), dt)
    w = A(rand(shape[-1:], dt, seed=33), dt)
    got = check(lambda m, a, b, c: add_norm(m, a, b, c), x, r, w, **HALF_TOL[dt])
    check(lambda m, a, b: add_norm(m, a, b, None, 1e-3), x, r, **HALF_TOL[dt])
    rx = get_rmx()
    h = rx.array(x.data, dtype=getattr(rx, dt)) + rx.array(r.data, dtype=getattr(rx, dt))
    y = rx.fast.rms_norm(h, rx.array(w.data, dtype=getattr(rx, dt)), 1e-5)
    for a, b in zip(got, (h, y)):
        np.testing.assert_array_equal(np.array(a.astype(rx.float32)), np.array(b.astype(rx.float32)))


def test_add_rms_norm_broadcasts_promotes_and_raises_as_its_ops():
    x = A(rand((3, 4, 8), seed=34))
    x16 = A(rand((3, 4, 8), "float16", seed=35), "float16")
    check(lambda m, a, b: add_norm(m, a, b, None), x, A(rand((8,), seed=36)))  # broadcast
    check(lambda m, a, b: add_norm(m, a, b, None), x16, x)  # float16 + float32
    check(lambda m, a, b, w: add_norm(m, a, b, w), x16, x16, A(rand((8,), seed=37)))
    check_raises(lambda m, a: add_norm(m, a, a, m.ones((7,))), x, err=ValueError)
    check_raises(lambda m, a: add_norm(m, a, m.ones((3, 5, 8)), None), x, err=ValueError)
    check_raises(lambda m, a: add_norm(m, a.astype(m.int32), a.astype(m.int32), None), x,
                 err=ValueError)


def test_add_rms_norm_derivatives_and_vmap():
    xs = [A(rand((3, 16), seed=40 + i)) for i in range(2)] + [A(rand((16,), seed=42))]

    def loss(m):
        def f(a, b, w):
            h, y = add_norm(m, a, b, w)
            return (y * y * 0.5 + h * 0.25).sum()
        return f

    check(lambda m, a, b, w: m.grad(loss(m), argnums=(0, 1, 2))(a, b, w), *xs,
          rtol=1e-4, atol=1e-5)
    check(lambda m, a, b, w: m.jvp(lambda a, b, w: list(add_norm(m, a, b, w)), [a, b, w],
                                   [a * 0.5, b * 2, w])[1], *xs, rtol=1e-4, atol=1e-5)
    rx = get_rmx()
    g = np.random.default_rng(43)
    x, r = (rx.array(g.standard_normal(s).astype(np.float32)) for s in ((4, 3, 16), (3, 4, 16)))
    w = rx.array(g.standard_normal((16,)).astype(np.float32))
    got = rx.vmap(lambda a, b: rx.fast.add_rms_norm(a, b, w, 1e-5), in_axes=(1, 0))(x, r)
    for i, out in enumerate(got):
        exp = rx.stack([rx.fast.add_rms_norm(x[:, j], r[j], w, 1e-5)[i] for j in range(3)])
        np.testing.assert_allclose(np.array(out), np.array(exp), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- rope

@pytest.mark.parametrize("dt", FL)
@pytest.mark.parametrize("trad", [False, True], ids=["half", "trad"])
@pytest.mark.parametrize("dims", [16, 10])
def test_rope(dt, trad, dims):
    x = A(rand((2, 3, 13, 16), dt, seed=10), dt)
    for off in (0, 5, -3):
        check(lambda m, a: m.fast.rope(a, dims, traditional=trad, base=10000.0, scale=0.7,
                                       offset=off), x,
              np_fn=lambda a: np_rope(a, dims, trad, 10000.0, 0.7, off), **tols(dt))


@pytest.mark.parametrize("trad", [False, True], ids=["half", "trad"])
def test_rope_offsets_freqs_views(trad):
    x = A(rand((3, 2, 9, 12), seed=11))
    for off in (np.array(4, np.int32), np.array([7], np.uint8), np.array([1, 20, 300], np.int64)):
        # MLX's f32 angles lose about position * 6e-8 radians (rmx reduces them in f64)
        check(lambda m, a, o: m.fast.rope(a, 8, traditional=trad, base=500.0, scale=1.5,
                                          offset=o), x, A(off), rtol=1e-4, atol=1e-4,
              np_fn=lambda a, o: np_rope(a, 8, trad, 500.0, 1.5, o), np_rtol=1e-5,
              np_atol=1e-5)
    fr = A(rand((4,), seed=12, low=0.5, high=30))
    check(lambda m, a, f: m.fast.rope(a, 8, traditional=trad, base=None, scale=1.0, offset=2,
                                      freqs=f), x, fr,
          np_fn=lambda a, f: np_rope(a, 8, trad, None, 1.0, 2, f), **NP_TOL["float32"])
    # 3-d and 5-d inputs; the (B, L, H, D) -> (B, H, L, D) view attention uses
    check(lambda m, a: m.fast.rope(a, 12, traditional=trad, base=1e4, scale=1.0, offset=1),
          A(rand((2, 9, 12), seed=13)), np_fn=lambda a: np_rope(a, 12, trad, 1e4, 1.0, 1))
    x5 = A(rand((2, 2, 3, 5, 8), seed=14))
    check(lambda m, a, o: m.fast.rope(a, 8, traditional=trad, base=1e4, scale=1.0, offset=o),
          x5, A(np.array([3, 11], np.int32)),
          np_fn=lambda a, o: np_rope(a, 8, trad, 1e4, 1.0, o), **NP_TOL["float32"])
    xv = A(rand((2, 7, 4, 16), "float16", seed=15), "float16", view=heads_view)
    check(lambda m, a: m.fast.rope(a, 16, traditional=trad, base=1e4, scale=1.0, offset=3), xv,
          np_fn=lambda a: np_rope(a, 16, trad, 1e4, 1.0, 3), **tols("float16"))


def test_rope_dtypes_of_outputs():
    x = A(rand((1, 2, 4, 8), "float16", seed=16), "float16")
    check(lambda m, a: m.fast.rope(a, 8, traditional=False, base=None, scale=1.0, offset=0,
                                   freqs=m.ones((4,))), x, **HALF_TOL["float16"])
    x32 = A(rand((1, 2, 4, 8), seed=16))
    check(lambda m, a: m.fast.rope(a, 8, traditional=False, base=None, scale=1.0, offset=0,
                                   freqs=m.ones((4,), dtype=m.float16)), x32)


def test_rope_errors():
    x = A(rand((2, 3, 5, 8), seed=17))
    R = dict(traditional=False, base=1e4, scale=1.0)
    for f in (lambda m, a: m.fast.rope(a[0, 0], 8, offset=0, **R),
              lambda m, a: m.fast.rope(a, 5, offset=0, **R),
              lambda m, a: m.fast.rope(a, 10, offset=0, **R),
              lambda m, a: m.fast.rope(a, 0, offset=0, **R),
              lambda m, a: m.fast.rope(a.astype(m.int32), 8, offset=0, **R),
              lambda m, a: m.fast.rope(a, 8, offset=m.array([1, 2, 3]), **R),
              lambda m, a: m.fast.rope(a, 8, offset=m.array([[1, 2]]), **R),
              lambda m, a: m.fast.rope(a, 8, offset=m.array(1.0), **R),
              lambda m, a: m.fast.rope(a, 8, traditional=False, base=None, scale=1.0, offset=0),
              lambda m, a: m.fast.rope(a, 8, traditional=False, base=1e4, scale=1.0, offset=0,
                                       freqs=m.ones((4,))),
              lambda m, a: m.fast.rope(a, 8, traditional=False, base=None, scale=1.0, offset=0,
                                       freqs=m.ones((3,)))):
        check_raises(f, x, err=ValueError)


# ---------------------------------------------------------------- attention

LOWEST = {"float32": np.finfo(np.float32).min, "float16": -65504.0,
          "bfloat16": -3.3895313892515355e38}


def _qkv(dt, b, hq, hkv, lq, lk, d, dv=None, seed=20, view=False):
    dv = d if dv is None else dv
    if view:  # (B, L, H, D) data seen as (B, H, L, D)
        return (A(rand((b, lq, hq, d), dt, seed=seed), dt, view=heads_view),
                A(rand((b, lk, hkv, d), dt, seed=seed + 1), dt, view=heads_view),
                A(rand((b, lk, hkv, dv), dt, seed=seed + 2), dt, view=heads_view))
    return (A(rand((b, hq, lq, d), dt, seed=seed), dt),
            A(rand((b, hkv, lk, d), dt, seed=seed + 1), dt),
            A(rand((b, hkv, lk, dv), dt, seed=seed + 2), dt))


SHAPES = {  # b, hq, hkv, lq, lk, d, dv
    "mha": (2, 3, 3, 7, 7, 16, None), "gqa": (1, 4, 2, 5, 9, 8, None),
    "mqa": (2, 6, 1, 1, 20, 32, None), "lq>lk": (1, 2, 2, 11, 4, 8, None),
    "dv": (2, 4, 2, 6, 10, 8, 12), "long": (1, 2, 1, 130, 600, 16, None),
}


@pytest.mark.parametrize("dt", FL)
@pytest.mark.parametrize("mask", [None, "causal"], ids=["nomask", "causal"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_sdpa(dt, mask, shape):
    b, hq, hkv, lq, lk, d, dv = SHAPES[shape]
    q, k, v = _qkv(dt, b, hq, hkv, lq, lk, d, dv, view=(shape == "gqa"))
    check(lambda m, q, k, v: sdpa(m, q, k, v, mask=mask), q, k, v,
          np_fn=lambda q, k, v: np_sdpa(q, k, v, 0.3, mask, lowest=LOWEST[dt]),
          **SDPA_TOL[dt])


@pytest.mark.parametrize("mask", [None, "causal"], ids=["nomask", "causal"])
@pytest.mark.parametrize("b,hq,hkv,lk,d,dv", [(1, 9, 3, 1, 64, 64), (1, 9, 3, 63, 64, 64),
                                              (1, 9, 3, 577, 64, 64), (2, 4, 4, 65, 16, 8),
                                              (1, 8, 1, 1000, 32, 32), (3, 2, 1, 130, 8, 24)])
@pytest.mark.parametrize("cache_view", [False, True], ids=["dense", "cacheview"])
def test_sdpa_single_query_decode(b, hq, hkv, lk, d, dv, mask, cache_view):
    """One query per head, float32 (the decode path: keys split over tasks, partial
    softmaxes merged), with keys and values dense or read through a KV cache's slice
    (a larger buffer's first `lk` positions)."""
    q = A(rand((b, hq, 1, d), seed=lk), "float32")
    if cache_view:
        k = A(rand((b, hkv, lk + 37, d), seed=lk + 1), "float32", view=lambda a: a[:, :, :lk])
        v = A(rand((b, hkv, lk + 37, dv), seed=lk + 2), "float32", view=lambda a: a[:, :, :lk])
    else:
        k = A(rand((b, hkv, lk, d), seed=lk + 1), "float32")
        v = A(rand((b, hkv, lk, dv), seed=lk + 2), "float32")
    check(lambda m, q, k, v: sdpa(m, q, k, v, mask=mask), q, k, v,
          np_fn=lambda q, k, v: np_sdpa(q, k, v, 0.3, mask, lowest=LOWEST["float32"]),
          **SDPA_TOL["float32"])


@pytest.mark.parametrize("dt", FL)
def test_sdpa_array_masks(dt):
    b, hq, hkv, lq, lk, d = 2, 4, 2, 6, 300, 8
    q, k, v = _qkv(dt, b, hq, hkv, lq, lk, d, seed=30)
    g = np.random.default_rng(31)
    bools = [g.random((lq, lk)) < 0.6, g.random((b, 1, lq, lk)) < 0.6,
             g.random((hq, lq, lk)) < 0.6, g.random((1, lk)) < 0.3]
    bools[0][2] = False  # a fully masked row averages every value (lowest finite scores)
    for mk in bools:
        check(lambda m, q, k, v, mm: sdpa(m, q, k, v, mask=mm), q, k, v, A(mk),
              np_fn=lambda q, k, v, mm: np_sdpa(q, k, v, 0.3, mm, lowest=LOWEST[dt]), **SDPA_TOL[dt])
    adds = [A(rand((lq, lk), dt, seed=32), dt), A(rand((b, hq, 1, lk), dt, seed=33), dt),
            A(rand((1, 1, lq, lk), dt, seed=34), dt), A(np.array(0.5, np.float32), dt)]
    for mk in adds:
        check(lambda m, q, k, v, mm: sdpa(m, q, k, v, mask=mm), q, k, v, mk,
              np_fn=lambda q, k, v, mm: np_sdpa(q, k, v, 0.3, mm), **SDPA_TOL[dt])
    # -inf entries: a row partly at -inf ignores them; a row all -inf is NaN in both
    inf = np.zeros((lq, lk), np.float32)
    inf[0, :200] = -np.inf
    inf[1, :] = -np.inf
    check(lambda m, q, k, v, mm: sdpa(m, q, k, v, mask=mm), q, k, v, A(inf, dt), **SDPA_TOL[dt])
    # an int mask is additive
    check(lambda m, q, k, v, mm: sdpa(m, q, k, v, mask=mm), q, k, v,
          A(rand((lq, lk), "int32", seed=35, low=-2, high=2)), **SDPA_TOL[dt])


@pytest.mark.parametrize("dt", FL)
def test_sdpa_sinks(dt):
    q, k, v = _qkv(dt, 2, 4, 2, 5, 300, 8, seed=40)
    s = A(rand((4,), dt, seed=41, low=-1, high=4), dt)
    check(lambda m, q, k, v, s: sdpa(m, q, k, v, sinks=s), q, k, v, s,
          np_fn=lambda q, k, v, s: np_sdpa(q, k, v, 0.3, None, s), **SDPA_TOL[dt])
    check(lambda m, q, k, v, s: sdpa(m, q, k, v, sinks=s, mask="causal"), q, k, v, s,
          np_fn=lambda q, k, v, s: np_sdpa(q, k, v, 0.3, "causal", s, LOWEST[dt]), **SDPA_TOL[dt])
    mk = A(np.random.default_rng(42).random((5, 300)) < 0.5)
    check(lambda m, q, k, v, s, mm: sdpa(m, q, k, v, sinks=s, mask=mm), q, k, v, s, mk, **SDPA_TOL[dt])


def test_sdpa_dtypes_and_empty():
    q, k, v = _qkv("float32", 1, 2, 2, 3, 4, 8, seed=50)
    q16 = A(rand((1, 2, 3, 8), "float16", seed=51), "float16")
    check(lambda m, q, k, v: sdpa(m, q, k, v), q16, k, v)  # promotes to float32
    check(lambda m, q, k, v: sdpa(m, q, k, v, mask=m.zeros((3, 4), dtype=m.float16)), q, k, v)
    check(lambda m, q, k, v: sdpa(m, q, k, v, sinks=m.zeros((2,), dtype=m.int32)), q, k, v)
    check(lambda m, q, k, v: sdpa(m, q, k, v), q, A(np.zeros((1, 2, 0, 8), np.float32)),
          A(np.zeros((1, 2, 0, 8), np.float32)))
    check(lambda m, q, k, v: sdpa(m, q, k, v), A(np.zeros((1, 2, 0, 8), np.float32)), k, v)


def test_sdpa_errors():
    q, k, v = _qkv("float32", 2, 4, 2, 5, 7, 8, 6, seed=60)
    for f in (lambda m, q, k, v: sdpa(m, q[0], k[0], v[0]),
              lambda m, q, k, v: sdpa(m, q[None], k[None], v[None]),
              lambda m, q, k, v: sdpa(m, q[:, :3], k, v),
              lambda m, q, k, v: sdpa(m, q, k[..., :4], v),
              lambda m, q, k, v: sdpa(m, q, k, v[:, :, :6]),
              lambda m, q, k, v: sdpa(m, q, k, v[:, :1]),
              lambda m, q, k, v: sdpa(m, q, k[:1], v[:1]),
              lambda m, q, k, v: sdpa(m, q[:1], k, v),
              lambda m, q, k, v: sdpa(m, q, k, v, mask="foo"),
              lambda m, q, k, v: sdpa(m, q, k, v, mask=m.ones((5, 6))),
              lambda m, q, k, v: sdpa(m, q, k, v, mask=m.ones((1, 1, 1, 5, 7))),
              lambda m, q, k, v: sdpa(m, q.astype(m.float16), k.astype(m.float16),
                                      v.astype(m.float16), mask=m.ones((5, 7))),
              lambda m, q, k, v: sdpa(m, q.astype(m.int32), k.astype(m.int32),
                                      v.astype(m.int32)),
              lambda m, q, k, v: sdpa(m, q, k, v, sinks=m.zeros((2,))),
              lambda m, q, k, v: sdpa(m, q, k, v, sinks=m.zeros((1, 4))),
              lambda m, q, k, v: sdpa(m, q.astype(m.float16), k.astype(m.float16),
                                      v.astype(m.float16), sinks=m.zeros((4,)))):
        check_raises(f, q, k, v, err=ValueError)


# ---------------------------------------------------------------- derivatives

def _fns(m):
    return {
        "rms": (lambda x, w: m.fast.rms_norm(x, w, 1e-5), [(3, 5, 9), (9,)]),
        "rms_nw": (lambda x: m.fast.rms_norm(x, None, 1e-5), [(4, 7)]),
        "ln": (lambda x, w, b: m.fast.layer_norm(x, w, b, 1e-5), [(3, 5, 9), (9,), (9,)]),
        "ln_nw": (lambda x: m.fast.layer_norm(x, None, None, 1e-5), [(4, 7)]),
        "rope": (lambda x: m.fast.rope(x, 6, traditional=False, base=1e4, scale=1.0,
                                       offset=3), [(2, 3, 5, 8)]),
        "rope_t": (lambda x: m.fast.rope(x, 8, traditional=True, base=1e4, scale=0.5,
                                         offset=m.array([1, 4])), [(2, 3, 5, 8)]),
        "sdpa": (lambda q, k, v: sdpa(m, q, k, v), [(1, 4, 5, 8), (1, 2, 9, 8), (1, 2, 9, 6)]),
        "sdpa_causal": (lambda q, k, v: sdpa(m, q, k, v, mask="causal"),
                        [(2, 2, 6, 8), (2, 2, 6, 8), (2, 2, 6, 8)]),
        "sdpa_add_sinks": (lambda q, k, v, mk, s: sdpa(m, q, k, v, mask=mk, sinks=s),
                           [(1, 4, 5, 8), (1, 2, 9, 8), (1, 2, 9, 8), (5, 9), (4,)]),
    }


FN_NAMES = sorted(_fns(REF))


def _inputs(name, dt="float32", seed=70):
    return [A(rand(s, dt, seed=seed + i), dt) for i, s in enumerate(_fns(REF)[name][1])]


@pytest.mark.parametrize("name", FN_NAMES)
def test_vjp_jvp_vs_mlx(name):
    xs = _inputs(name)

    def vjp(m, *args):
        f = _fns(m)[name][0]
        out = f(*args)
        ct = m.array(rand(out.shape, seed=99))
        return m.vjp(f, list(args), [ct])[1]

    def jvp(m, *args):
        f = _fns(m)[name][0]
        ts = [m.array(rand(a.shape, seed=100 + i)) for i, a in enumerate(args)]
        return m.jvp(f, list(args), ts)[1]

    check(vjp, *xs, rtol=1e-4, atol=1e-5)
    check(jvp, *xs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", FN_NAMES)
def test_derivatives_vs_finite_differences(name):
    rx = get_rmx()
    f = _fns(rx)[name][0]
    xs = [rx.array(a.data.astype(np.float64), dtype=rx.float64) for a in _inputs(name, seed=80)]
    g = np.random.default_rng(81)
    ds = [rx.array(g.standard_normal(x.shape), dtype=rx.float64) for x in xs]
    ct = rx.array(g.standard_normal(f(*xs).shape), dtype=rx.float64)
    h = 1e-6
    plus = f(*[x + h * d for x, d in zip(xs, ds)])
    minus = f(*[x - h * d for x, d in zip(xs, ds)])
    fd = (np.array(plus) - np.array(minus)) / (2 * h)
    tangent = np.array(rx.jvp(f, xs, ds)[1][0])
    np.testing.assert_allclose(tangent, fd, rtol=1e-5, atol=1e-6)
    # <ct, J d> == <J^T ct, d>
    cots = rx.vjp(f, xs, [ct])[1]
    lhs = float(np.sum(np.array(ct) * fd))
    rhs = sum(float(np.sum(np.array(c) * np.array(d))) for c, d in zip(cots, ds))
    assert abs(lhs - rhs) <= 1e-5 * max(1.0, abs(lhs)), (lhs, rhs)


def test_grad_half_dtypes():
    for dt in ("float16", "bfloat16"):
        q, k, v = _qkv(dt, 1, 2, 1, 4, 6, 8, seed=90)
        check(lambda m, q, k, v: m.grad(lambda q, k, v: sdpa(m, q, k, v, mask="causal")
                                        .astype(m.float32).sum(), argnums=(0, 1, 2))(q, k, v),
              q, k, v, **HALF_TOL[dt])
        x = A(rand((3, 16), dt, seed=91), dt)
        check(lambda m, x: m.grad(lambda x: (m.fast.rms_norm(x, None, 1e-5)
                                             .astype(m.float32) ** 2).sum())(x), x,
              **HALF_TOL[dt])


# ---------------------------------------------------------------- vmap

def _loop(m, f, args, axes):
    n = next(a.shape[ax] for a, ax in zip(args, axes) if ax is not None)
    outs = []
    for i in range(n):
        sl = [a if ax is None else m.take(a, i, axis=ax) for a, ax in zip(args, axes)]
        outs.append(f(*sl))
    return m.stack(outs)


@pytest.mark.parametrize("case", ["rms_x", "rms_w", "ln_xwb", "rope", "rope_vec", "sdpa_q",
                                  "sdpa_all"])
def test_vmap_vs_loop(case):
    rx = get_rmx()
    g = np.random.default_rng(95)

    def arr(*s):
        return rx.array(g.standard_normal(s).astype(np.float32))
    cases = {
        "rms_x": (lambda x, w: rx.fast.rms_norm(x, w, 1e-5), [arr(3, 4, 7), arr(7)], [1, None]),
        "rms_w": (lambda x, w: rx.fast.rms_norm(x, w, 1e-5), [arr(4, 7), arr(3, 7)], [None, 0]),
        "ln_xwb": (lambda x, w, b: rx.fast.layer_norm(x, w, b, 1e-5),
                   [arr(4, 7, 3), arr(3, 7), arr(7, 3)], [2, 0, 1]),
        "rope": (lambda x: rx.fast.rope(x, 6, traditional=True, base=1e4, scale=1.0, offset=2),
                 [arr(2, 3, 4, 5, 8)], [3]),
        "rope_vec": (lambda x: rx.fast.rope(x, 8, traditional=False, base=1e4, scale=1.0,
                                            offset=rx.array([3, 1])), [arr(3, 2, 2, 5, 8)], [0]),
        "sdpa_q": (lambda q, k, v: sdpa(rx, q, k, v, mask="causal"),
                   [arr(1, 4, 3, 5, 8), arr(1, 2, 7, 8), arr(1, 2, 7, 8)], [2, None, None]),
        "sdpa_all": (lambda q, k, v: sdpa(rx, q, k, v),
                     [arr(3, 1, 2, 5, 8), arr(1, 2, 7, 8, 3), arr(3, 1, 2, 7, 8)], [0, 4, 0]),
    }
    f, args, axes = cases[case]
    got = rx.vmap(f, in_axes=tuple(axes))(*args)
    exp = _loop(rx, f, args, axes)
    np.testing.assert_allclose(np.array(got), np.array(exp), rtol=1e-5, atol=1e-6)


def test_stream_argument_and_laziness():
    rx = get_rmx()
    x = rx.ones((2, 3, 4, 8))
    s = rx.default_stream(rx.cpu)
    for y in (rx.fast.rms_norm(x, None, 1e-5, stream=s),
              rx.fast.layer_norm(x, None, None, 1e-5, stream=rx.cpu),
              rx.fast.rope(x, 8, traditional=False, base=1e4, scale=1.0, offset=0, stream=s),
              sdpa(rx, x, x, x, stream=s)):
        assert y.shape == (2, 3, 4, 8)
    import rmx.core.fast as fast_mod  # importable as a module, as mlx.core.fast
    assert fast_mod.rope is rx.fast.rope
