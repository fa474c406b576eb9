"""rmx.core.fast.rope_kv_update (an rmx extension; MLX has none): a decode step's RoPE of
the query and key heads of a fused q|k|v projection and its two cache writes, against
MLX's definition from ops (two `fast.rope` calls and two `put_along_axis`), and bit for
bit against rmx's own ops; errors, derivatives and vmap."""

import numpy as np
import pytest

from diff import A, check, check_raises, get_rmx, rand

HALF_TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float16": {"rtol": 5e-3, "atol": 5e-3},
            "bfloat16": {"rtol": 3e-2, "atol": 3e-2}}


def composite(m, x, kc, vc, hq, hkv, dims, trad, off, freqs=None):
    """The definition: the heads of x, RoPE of the queries and keys at off + l, and the
    keys and values written into the caches at those positions."""
    length = x.shape[1]
    part = lambda a, n: x[:, :, a:a + n].transpose(0, 2, 1, 3)  # noqa: E731
    kw = dict(traditional=trad, base=None if freqs is not None else 10000.0, scale=1.0,
              offset=off, freqs=freqs)
    q = m.fast.rope(part(0, hq), dims, **kw)
    k = m.fast.rope(part(hq, hkv), dims, **kw)
    v = part(hq + hkv, hkv)
    at = m.broadcast_to((m.arange(length) + off).reshape(1, 1, length, 1), k.shape)
    return q, m.put_along_axis(kc, at, k, axis=2), m.put_along_axis(vc, at, v, axis=2)


def fused(m, x, kc, vc, hq, hkv, dims, trad, off, freqs=None):
    base = None if freqs is not None else 10000.0
    return m.fast.rope_kv_update(x, kc, vc, hq, hkv, dims, traditional=trad, base=base,
                                 scale=1.0, offset=m.array(off, dtype=m.int32), freqs=freqs)


def either(hq, hkv, dims, trad, off, with_freqs=False):
    """rmx runs the fused op, MLX the definition."""
    rx = get_rmx()

    def f(m, x, kc, vc):
        freqs = None
        if with_freqs:
            freqs = m.array(np.linspace(1.0, 500.0, dims // 2).astype(np.float32))
        run = fused if m is rx else composite
        return run(m, x, kc, vc, hq, hkv, dims, trad, off, freqs)
    return f


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("trad", [False, True], ids=["half", "trad"])
@pytest.mark.parametrize("heads,dims,length,off,with_freqs", [
    ((4, 2), 16, 1, 0, False), ((4, 2), 16, 1, 9, True), ((6, 3), 10, 3, 5, False),
    ((2, 2), 16, 2, 14, True), ((3, 1), 16, 1, 15, False)], ids=repr)
def test_rope_kv_update_is_two_ropes_and_two_writes(dt, trad, heads, dims, length, off,
                                                     with_freqs):
    hq, hkv = heads
    d, size = 16, 16
    x = A(rand((2, length, hq + 2 * hkv, d), dt, seed=50), dt)
    kc = A(rand((2, hkv, size, d), dt, seed=51), dt)
    vc = A(rand((2, hkv, size, d), dt, seed=52), dt)
    check(either(hq, hkv, dims, trad, off, with_freqs), x, kc, vc, **HALF_TOL[dt])
    # bit for bit what rmx's own RoPE and scatters give (the same kernels round the same)
    rx = get_rmx()
    xr, kr, vr = (rx.array(a.data, dtype=getattr(rx, dt)) for a in (x, kc, vc))
    freqs = rx.array(np.linspace(1.0, 500.0, dims // 2).astype(np.float32)) if with_freqs else None
    got = fused(rx, xr, kr, vr, hq, hkv, dims, trad, off, freqs)
    exp = composite(rx, xr, kr, vr, hq, hkv, dims, trad, off, freqs)
    for a, b in zip(got, exp):
        np.testing.assert_array_equal(np.array(a.astype(rx.float32)), np.array(b.astype(rx.float32)))


def test_rope_kv_update_leaves_held_caches_alone_and_wraps_negative_positions():
    rx = get_rmx()
    g = np.random.default_rng(53)
    x = rx.array(g.standard_normal((1, 1, 4, 8)).astype(np.float32))
    kc = rx.array(g.standard_normal((1, 1, 6, 8)).astype(np.float32))
    vc = rx.array(g.standard_normal((1, 1, 6, 8)).astype(np.float32))
    before = (np.array(kc), np.array(vc))
    q, k2, v2 = fused(rx, x, kc, vc, 2, 1, 8, False, -2)
    rx.eval(q, k2, v2)
    # the caches the caller still holds are unchanged (written in place only when donated)
    np.testing.assert_array_equal(np.array(kc), before[0])
    np.testing.assert_array_equal(np.array(vc), before[1])
    # position -2 wraps once to 4, as scatter_along_axis wraps
    np.testing.assert_array_equal(np.array(v2)[0, 0, 4], np.array(x)[0, 0, 3])
    np.testing.assert_array_equal(np.delete(np.array(v2), 4, axis=2), np.delete(before[1], 4, axis=2))
    exp = composite(rx, x, kc, vc, 2, 1, 8, False, -2)
    for a, b in zip((q, k2, v2), exp):
        np.testing.assert_array_equal(np.array(a), np.array(b))


def test_rope_kv_update_errors():
    rx = get_rmx()
    x = rx.zeros((1, 1, 4, 8))
    kc = rx.zeros((1, 1, 6, 8))
    ok = dict(traditional=False, base=10000.0, scale=1.0, offset=rx.array(0, dtype=rx.int32))
    f = rx.fast.rope_kv_update
    with pytest.raises(ValueError):  # heads do not add up
        f(x, kc, kc, 3, 1, 8, **ok)
    with pytest.raises(ValueError):  # cache of another head dimension
        f(x, rx.zeros((1, 1, 6, 4)), kc, 2, 1, 8, **ok)
    with pytest.raises(ValueError):  # cache of another dtype
        f(x, kc.astype(rx.float16), kc, 2, 1, 8, **ok)
    with pytest.raises(ValueError):  # caches of different lengths
        f(x, kc, rx.zeros((1, 1, 5, 8)), 2, 1, 8, **ok)
    with pytest.raises(ValueError):  # odd dims, as rope
        f(x, kc, kc, 2, 1, 7, **ok)
    with pytest.raises(ValueError):  # several offsets
        f(x, kc, kc, 2, 1, 8, **{**ok, "offset": rx.array([0, 1], dtype=rx.int32)})
    with pytest.raises(IndexError):  # a position past the cache, raised when evaluated
        rx.eval(*f(x, kc, kc, 2, 1, 8, **{**ok, "offset": rx.array(6, dtype=rx.int32)}))
    with pytest.raises(IndexError):  # wrapped once only
        rx.eval(*f(x, kc, kc, 2, 1, 8, **{**ok, "offset": rx.array(-7, dtype=rx.int32)}))


def test_rope_kv_update_derivatives_and_vmap():
    rx = get_rmx()
    xs = [A(rand((1, 2, 6, 8), seed=54)), A(rand((1, 2, 5, 8), seed=55)),
          A(rand((1, 2, 5, 8), seed=56))]

    def loss(m):
        def f(x, kc, vc):
            run = fused if m is rx else composite
            q, k, v = run(m, x, kc, vc, 2, 2, 8, False, 1)
            return (q * q).sum() + (k * 0.5).sum() + (v * v * 0.25).sum()
        return f

    check(lambda m, x, kc, vc: m.grad(loss(m), argnums=(0, 1, 2))(x, kc, vc), *xs,
          rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(57)
    x = rx.array(g.standard_normal((3, 1, 1, 4, 8)).astype(np.float32))
    kc = rx.array(g.standard_normal((3, 1, 1, 5, 8)).astype(np.float32))
    got = rx.vmap(lambda a, c: fused(rx, a, c, c, 2, 1, 8, True, 2))(x, kc)
    for i, out in enumerate(got):
        exp = rx.stack([fused(rx, x[j], kc[j], kc[j], 2, 1, 8, True, 2)[i] for j in range(3)])
        np.testing.assert_allclose(np.array(out), np.array(exp), rtol=1e-6, atol=1e-6)
