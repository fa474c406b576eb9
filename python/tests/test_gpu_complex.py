"""complex64 on the GPU: elementwise ops, matmul and sums against the CPU backend.

Skips where no GPU backend is available (CI has no GPU); see test_gpu.py.
"""

import numpy as np
import pytest

from gpu_util import (FLOATS, TOL, assert_close, dt, host, mx, on_gpu_natively, rand,  # noqa: F401
                      requires_gpu)

pytestmark = requires_gpu

COMPLEX_UNARY = ["abs", "real", "imag", "isnan", "isinf", "isposinf", "isneginf", "negative",
                 "conjugate", "square", "sqrt", "exp", "log", "sin", "cos", "round", "sign"]
# the ops written as num_complex's composite formulas (several rounded steps, each
# with CUDA's libm against glibc's): compared with a looser tolerance
COMPLEX_COMPOSITE = ["rsqrt", "reciprocal", "log1p", "log2", "log10", "tan", "tanh",
                     "sinh", "cosh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh",
                     "arctanh"]
COMPLEX_BINARY = ["add", "subtract", "multiply", "divide", "equal", "not_equal", "maximum",
                  "minimum"]


def complex_values(shape, seed):
    r = np.random.default_rng(seed)
    z = (r.uniform(-3, 3, shape) + 1j * r.uniform(-3, 3, shape)).astype(np.complex64)
    flat = z.reshape(-1)
    flat[:8] = [0, -2.0, 2j, -0.0 - 1j, np.nan + 1j, 1 + np.inf * 1j, np.inf, -np.inf + 0j]
    return mx.array(z)


@pytest.mark.parametrize("op", COMPLEX_UNARY + COMPLEX_COMPOSITE)
def test_complex_unary_runs_natively(op):
    x = complex_values((9, 13), 120)
    fn = lambda x, s: getattr(mx, op)(x, stream=s)  # noqa: E731
    g = on_gpu_natively(fn, x)
    c = fn(x, mx.cpu)
    assert g.dtype == c.dtype and g.shape == c.shape
    gn, cn = np.array(g)[1:], np.array(c)[1:]  # row 0 holds the special values
    tol = 1e-5 if op in COMPLEX_COMPOSITE else 2e-6
    np.testing.assert_allclose(gn, cn, rtol=tol, atol=tol / 2)
    if op in ("abs", "real", "imag", "negative", "conjugate", "isnan", "isinf", "isposinf",
              "isneginf", "round", "square"):
        np.testing.assert_array_equal(np.array(g)[0], np.array(c)[0])


@pytest.mark.parametrize("op", COMPLEX_BINARY)
def test_complex_binary_runs_natively(op):
    a = complex_values((9, 13), 121)
    b = complex_values((13,), 122)
    fn = lambda a, b, s: getattr(mx, op)(a, b, stream=s)  # noqa: E731
    g = on_gpu_natively(fn, a, b)
    c = fn(a, b, mx.cpu)
    assert g.dtype == c.dtype and g.shape == c.shape
    np.testing.assert_allclose(np.array(g), np.array(c), rtol=2e-6, atol=1e-6, equal_nan=True)
    # a real operand is promoted to complex on the GPU too
    g = on_gpu_natively(lambda a, s: mx.multiply(a, mx.arange(13), stream=s), a)
    np.testing.assert_array_equal(np.array(g), np.array(mx.multiply(a, mx.arange(13),
                                                                    stream=mx.cpu)))


def test_complex_matmul_runs_natively():
    a = complex_values((3, 5, 7), 123)
    b = complex_values((7, 4), 124)
    for fn in [lambda a, b, s: mx.matmul(a, b, stream=s),
               lambda a, b, s: mx.matmul(a[0].T, a[1], stream=s)]:
        g = on_gpu_natively(fn, a, b)
        c = fn(a, b, mx.cpu)
        assert g.dtype == c.dtype == mx.complex64
        gn, cn = np.array(g), np.array(c)
        finite = np.isfinite(cn)
        np.testing.assert_allclose(gn[finite], cn[finite], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
def test_complex_sum_runs_natively(axis):
    x = complex_values((5, 33, 70), 125)
    bad = mx.isnan(x, stream=mx.cpu) | mx.isinf(x, stream=mx.cpu)
    x = mx.where(bad, mx.array(1 + 2j), x, stream=mx.cpu)[:, :, 1:]  # a view with an offset
    mx.eval(x)
    fn = lambda x, s: mx.sum(x, axis=axis, stream=s)  # noqa: E731
    g = on_gpu_natively(fn, x)
    c = fn(x, mx.cpu)
    assert g.shape == c.shape and g.dtype == c.dtype == mx.complex64
    np.testing.assert_allclose(np.array(g), np.array(c), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("op", ["prod", "max", "min", "all", "any"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
def test_complex_reductions_run_natively(op, axis):
    """prod, max and min to complex64 and all/any to bool: max/min order by (real,
    imaginary) and propagate NaN; all/any test for nonzero."""
    x = complex_values((4, 23, 9), 126)
    x = mx.multiply(x, mx.array(0.4 + 0j), stream=mx.cpu)[:, :, 1:]  # |z| near 1; a view
    if op in ("all", "any"):
        x = mx.where(mx.abs(x, stream=mx.cpu) < 0.5, mx.array(0j), x, stream=mx.cpu)
    if op == "prod":  # products compared in value: no NaN or inf
        bad = mx.isnan(x, stream=mx.cpu) | mx.isinf(x, stream=mx.cpu)
        x = mx.where(bad, mx.array(1 - 1j), x, stream=mx.cpu)
    mx.eval(x)
    fn = lambda x, s: getattr(mx, op)(x, axis=axis, stream=s)  # noqa: E731
    g = on_gpu_natively(fn, x)
    c = fn(x, mx.cpu)
    assert g.shape == c.shape and g.dtype == c.dtype
    if op == "prod":
        np.testing.assert_allclose(np.array(g), np.array(c), rtol=1e-4, atol=1e-6)
    else:  # a selection or a test: exact (NaNs in the same places)
        np.testing.assert_array_equal(np.array(g), np.array(c))


def test_complex_reductions_of_empty_axes():
    x = mx.zeros((3, 0), dtype=mx.complex64)
    for op in ["prod", "all", "any"]:
        g = on_gpu_natively(lambda x, s: getattr(mx, op)(x, axis=1, stream=s), x)
        c = getattr(mx, op)(x, axis=1, stream=mx.cpu)
        assert g.dtype == c.dtype
        np.testing.assert_array_equal(np.array(g), np.array(c))


@pytest.mark.parametrize("dtype", ["bool_", "float32", "float16", "float64", "int32", "uint8"])
def test_complex_casts_run_natively(dtype):
    """complex64 to other types: bool tests for nonzero, the rest take the real part (the
    reductions all/any cast to bool first)."""
    x = complex_values((9, 13), 127)
    fn = lambda x, s: x.astype(getattr(mx, dtype), stream=s)  # noqa: E731
    g = on_gpu_natively(fn, x)
    c = fn(x, mx.cpu)
    assert g.dtype == c.dtype
    np.testing.assert_array_equal(np.array(g), np.array(c))
