"""rmx.core.fast.swiglu_linear (an rmx extension; MLX has none): `silu(x W_g^T) * (x W_u^T)`
from stacked gate and up weights, dense or affine-quantized, against MLX's definition from
ops and bit for bit against rmx's own ops; shapes the primitive does not take fall back to
the ops; derivatives and vmap."""

import io

import numpy as np
import pytest

from diff import A, check, get_rmx, rand

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float16": {"rtol": 5e-3, "atol": 5e-3},
       "bfloat16": {"rtol": 3e-2, "atol": 3e-2}}


def definition(m, x, w, q=None):
    """The product, its two halves, and silu(g) * u as three rounded ops."""
    if q is None:
        y = x @ w.T
    else:
        y = m.quantized_matmul(x, q[0], q[1], q[2], transpose=True, group_size=q[3], bits=q[4])
    f = y.shape[-1] // 2
    g, u = y[..., :f], y[..., f:]
    return (g * m.sigmoid(g)) * u


def fused(m, x, w, q=None):
    if q is None:
        return m.fast.swiglu_linear(x, w)
    return m.fast.swiglu_linear(x, q[0], q[1], q[2], group_size=q[3], bits=q[4])


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(64,), (1, 64), (1, 1, 64), (3, 5, 64), (0, 64)], ids=repr)
def test_dense_swiglu_is_the_product_and_the_gating(dt, shape):
    rx = get_rmx()
    x = A(rand(shape, dt, seed=60), dt)
    w = A(rand((2 * 24, 64), dt, seed=61) * 0.3, dt)
    check(lambda m, a, b: (fused if m is rx else definition)(m, a, b), x, w, **TOL[dt])
    xr, wr = (rx.array(a.data, dtype=getattr(rx, dt)) for a in (x, w))
    np.testing.assert_array_equal(np.array(fused(rx, xr, wr).astype(rx.float32)),
                                  np.array(definition(rx, xr, wr).astype(rx.float32)))


@pytest.mark.parametrize("dt,sdt", [("float32", "float32"), ("bfloat16", "bfloat16"),
                                     ("float32", "float16"), ("float32", "bfloat16")])
@pytest.mark.parametrize("bits,group_size", [(4, 64), (8, 32), (2, 128), (3, 64)])
def test_quantized_swiglu_is_the_product_and_the_gating(dt, sdt, bits, group_size):
    """Scales of `x`'s dtype, or half-precision ones with float32 `x` (a GGUF model's):
    one SwiGLULinear node either way."""
    rx = get_rmx()
    g = np.random.default_rng(62)
    x = rx.array(g.standard_normal((1, 256)).astype(np.float32)).astype(getattr(rx, dt))
    w = rx.array(g.standard_normal((2 * 40, 256)).astype(np.float32) * 0.2)
    wq, sc, bi = rx.quantize(w, group_size=group_size, bits=bits)
    q = (wq, sc.astype(getattr(rx, sdt)), bi.astype(getattr(rx, sdt)), group_size, bits)
    got, exp = fused(rx, x, None, q), definition(rx, x, None, q)
    assert got.shape == (1, 40) and got.dtype == x.dtype
    dot = io.StringIO()
    rx.export_to_dot(dot, got)
    # codes that do not tile a 32-bit word (3 bits) take the separate ops
    assert ("SwiGLULinear" in dot.getvalue()) == (32 % bits == 0)
    np.testing.assert_array_equal(np.array(got.astype(rx.float32)), np.array(exp.astype(rx.float32)))
    # the float64 definition over the dequantized weight (MLX's CPU quantized_matmul in
    # bfloat16 rounds differently from its float32 one, so the reference is NumPy's)
    wf = np.array(rx.dequantize(wq, q[1].astype(rx.float32), q[2].astype(rx.float32),
                                group_size=group_size, bits=bits)).astype(np.float64)
    y = np.array(x.astype(rx.float32)).astype(np.float64) @ wf.T
    gg, uu = y[:, :40], y[:, 40:]
    ref = gg / (1 + np.exp(-gg)) * uu
    tol = 1e-4 if dt == "float32" else 4e-2
    np.testing.assert_allclose(np.array(got.astype(rx.float32)), ref, rtol=tol,
                               atol=tol * np.abs(ref).max())


def test_swiglu_falls_back_to_the_ops_and_their_errors():
    rx = get_rmx()
    x = rx.ones((2, 8))
    # an odd number of rows, another dtype, a mismatched width: the ops decide
    np.testing.assert_array_equal(np.array(fused(rx, x, rx.ones((6, 8)).astype(rx.float16))),
                                  np.array(definition(rx, x, rx.ones((6, 8)).astype(rx.float16))))
    with pytest.raises(ValueError):
        rx.eval(fused(rx, x, rx.ones((6, 7))))
    with pytest.raises(ValueError):
        rx.fast.swiglu_linear(x, rx.ones((6, 8)), rx.ones((6, 1)))


def test_swiglu_derivatives_and_vmap():
    rx = get_rmx()
    xs = [A(rand((3, 16), seed=63)), A(rand((2 * 6, 16), seed=64) * 0.5)]

    def loss(m):
        def f(a, b):
            return ((fused if m is rx else definition)(m, a, b) ** 2).sum()
        return f

    check(lambda m, a, b: m.grad(loss(m), argnums=(0, 1))(a, b), *xs, rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(65)
    x = rx.array(g.standard_normal((4, 2, 16)).astype(np.float32))
    w = rx.array(g.standard_normal((12, 16)).astype(np.float32))
    got = rx.vmap(lambda a: fused(rx, a, w), in_axes=1)(x)
    exp = rx.stack([fused(rx, x[:, j], w) for j in range(2)])
    np.testing.assert_allclose(np.array(got), np.array(exp), rtol=1e-6, atol=1e-6)
