"""rmx.core.fast.rms_norm_linear (an rmx extension; MLX has none): a pre-norm block's entry,
`h = x + residual` (or `x`), then `rms_norm(h) @ W^T` or, with `swiglu=True`, the SwiGLU of
the stacked gate/up product, dense or affine-quantized. Checked against MLX's definition
from its own ops, bit for bit against rmx's own ops (the CPU evaluates the same kernels);
shapes the primitive does not take fall back to the ops; derivatives and vmap."""

import io

import numpy as np
import pytest

from diff import A, check, get_rmx, rand

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float16": {"rtol": 5e-3, "atol": 5e-3},
       "bfloat16": {"rtol": 3e-2, "atol": 3e-2}}
EPS = 1e-5


def definition(m, x, r, nw, w, swiglu, q=None):
    """`(h, y)` from the separate ops."""
    h = x if r is None else x + r
    n = m.fast.rms_norm(h, nw, EPS)
    if q is None:
        y = n @ w.T
    else:
        y = m.quantized_matmul(n, q[0], q[1], q[2], transpose=True, group_size=q[3], bits=q[4])
    if swiglu:
        f = y.shape[-1] // 2
        g, u = y[..., :f], y[..., f:]
        y = (g * m.sigmoid(g)) * u
    return h, y


def fused(m, x, r, nw, w, swiglu, q=None):
    kw = dict(residual=r, swiglu=swiglu)
    if q is None:
        out = m.fast.rms_norm_linear(x, nw, EPS, w, **kw)
    else:
        out = m.fast.rms_norm_linear(x, nw, EPS, q[0], q[1], q[2], group_size=q[3], bits=q[4], **kw)
    return out if r is not None else (x, out)


def either(rx):
    """The fused op for rmx, the definition for MLX."""
    return lambda m, *a: (fused if m is rx else definition)(m, *a)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(64,), (1, 64), (1, 1, 64), (3, 5, 64), (0, 64)], ids=repr)
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("swiglu", [False, True])
def test_dense_is_the_norm_then_the_product(dt, shape, residual, swiglu):
    rx = get_rmx()
    x = A(rand(shape, dt, seed=70), dt)
    r = A(rand(shape, dt, seed=71), dt) if residual else None
    nw = A(rand((64,), dt, seed=72), dt)
    w = A(rand((2 * 24, 64), dt, seed=73) * 0.3, dt)
    f = either(rx)
    if residual:
        check(lambda m, a, b, c, d: f(m, a, b, c, d, swiglu), x, r, nw, w, **TOL[dt])
    else:
        check(lambda m, a, c, d: f(m, a, None, c, d, swiglu)[1], x, nw, w, **TOL[dt])
    xr, nwr, wr = (rx.array(a.data, dtype=getattr(rx, dt)) for a in (x, nw, w))
    rr = rx.array(r.data, dtype=getattr(rx, dt)) if residual else None
    got, exp = fused(rx, xr, rr, nwr, wr, swiglu), definition(rx, xr, rr, nwr, wr, swiglu)
    assert got[1].shape == shape[:-1] + ((24 if swiglu else 48),) and got[1].dtype == xr.dtype
    for a, b in zip(got, exp):
        np.testing.assert_array_equal(np.array(a.astype(rx.float32)), np.array(b.astype(rx.float32)))


@pytest.mark.parametrize("dt,sdt", [("float32", "float32"), ("bfloat16", "bfloat16"),
                                     ("float32", "float16"), ("float32", "bfloat16")])
@pytest.mark.parametrize("bits,group_size", [(4, 64), (8, 32), (2, 128), (3, 64)])
@pytest.mark.parametrize("swiglu", [False, True])
def test_quantized_is_the_norm_then_the_product(dt, sdt, bits, group_size, swiglu):
    """Scales of `x`'s dtype, or half-precision ones with float32 `x` (a GGUF model's):
    one RMSNormLinear node either way."""
    rx = get_rmx()
    g = np.random.default_rng(74)
    d = getattr(rx, dt)
    x, r = (rx.array(g.standard_normal((1, 256)).astype(np.float32)).astype(d) for _ in range(2))
    nw = rx.array(g.uniform(0.5, 1.5, 256).astype(np.float32)).astype(d)
    w = rx.array(g.standard_normal((2 * 40, 256)).astype(np.float32) * 0.2)
    wq, sc, bi = rx.quantize(w, group_size=group_size, bits=bits)
    q = (wq, sc.astype(getattr(rx, sdt)), bi.astype(getattr(rx, sdt)), group_size, bits)
    got, exp = fused(rx, x, r, nw, None, swiglu, q), definition(rx, x, r, nw, None, swiglu, q)
    assert got[1].shape == (1, 40 if swiglu else 80) and got[1].dtype == d
    dot = io.StringIO()
    rx.export_to_dot(dot, got[1])
    # codes that do not tile a 32-bit word (3 bits) take the separate ops
    assert ("RMSNormLinear" in dot.getvalue()) == (32 % bits == 0)
    for a, b in zip(got, exp):
        np.testing.assert_array_equal(np.array(a.astype(rx.float32)), np.array(b.astype(rx.float32)))
    # the float64 definition over the dequantized weight
    wf = np.array(rx.dequantize(wq, q[1].astype(rx.float32), q[2].astype(rx.float32),
                                group_size=group_size, bits=bits)).astype(np.float64)
    h = np.array((x + r).astype(rx.float32)).astype(np.float64)
    n = h / np.sqrt((h * h).mean(-1, keepdims=True) + EPS) * np.array(nw.astype(rx.float32))
    y = n @ wf.T
    if swiglu:
        y = y[:, :40] / (1 + np.exp(-y[:, :40])) * y[:, 40:]
    tol = 1e-4 if dt == "float32" else 5e-2
    np.testing.assert_allclose(np.array(got[1].astype(rx.float32)), y, rtol=tol,
                               atol=tol * np.abs(y).max())


def test_falls_back_to_the_ops_and_their_errors():
    rx = get_rmx()
    x, nw = rx.ones((2, 8)), rx.ones((8,))
    # a broadcast residual, another weight dtype: the ops decide (add broadcasts, matmul
    # promotes), with their values
    for r, w in [(rx.ones((8,)), rx.ones((6, 8))), (rx.ones((2, 8)), rx.ones((6, 8)).astype(rx.float16))]:
        got, exp = fused(rx, x, r, nw, w, False), definition(rx, x, r, nw, w, False)
        for a, b in zip(got, exp):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(np.array(a), np.array(b))
    # errors of the ops the op is made of, as MLX raises them
    f = either(rx)
    check(lambda m, a, c, d: f(m, a, None, c, d, False)[1], A(np.ones((2, 8), np.float32)),
          A(np.ones((7,), np.float32)), A(np.ones((6, 8), np.float32)), expect_error=ValueError)
    check(lambda m, a, c, d: f(m, a, None, c, d, False)[1], A(np.ones((2, 8), np.float32)),
          A(np.ones((8,), np.float32)), A(np.ones((6, 7), np.float32)), expect_error=ValueError)
    with pytest.raises(ValueError):
        rx.fast.rms_norm_linear(x, nw, EPS, rx.ones((6, 1), dtype=rx.uint32), rx.ones((6, 1)))


def test_derivatives_and_vmap():
    rx = get_rmx()
    xs = [A(rand((3, 16), seed=75)), A(rand((3, 16), seed=76)), A(rand((16,), seed=77) + 1.5),
          A(rand((2 * 6, 16), seed=78) * 0.5)]
    f = either(rx)

    def loss(m, swiglu):
        def g(a, b, c, d):
            h, y = f(m, a, b, c, d, swiglu)
            return (y ** 2).sum() + (h * h).sum()
        return g

    for swiglu in (False, True):
        check(lambda m, *a: m.grad(loss(m, swiglu), argnums=(0, 1, 2, 3))(*a), *xs,
              rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(79)
    x = rx.array(g.standard_normal((4, 2, 16)).astype(np.float32))
    r = rx.array(g.standard_normal((4, 2, 16)).astype(np.float32))
    nw = rx.array(g.standard_normal((16,)).astype(np.float32))
    w = rx.array(g.standard_normal((12, 16)).astype(np.float32))
    got = rx.vmap(lambda a, b: fused(rx, a, b, nw, w, True), in_axes=1)(x, r)
    exp = [fused(rx, x[:, j], r[:, j], nw, w, True) for j in range(2)]
    for k in range(2):
        np.testing.assert_allclose(np.array(got[k]), np.array(rx.stack([e[k] for e in exp])),
                                   rtol=1e-6, atol=1e-6)
