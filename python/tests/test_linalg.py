"""matmul / @ / addmm / inner / outer / tensordot / vecdot / kron."""

import numpy as np
import pytest

from diff import A, DTYPES, check, check_meta, check_np, check_raises, mlx_quirk, rand, rmx_only

TOL = {
    "float16": {"rtol": 1e-2, "atol": 1e-2},
    "bfloat16": {"rtol": 5e-2, "atol": 5e-2},
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float64": {"rtol": 1e-12, "atol": 1e-12},
    "complex64": {"rtol": 1e-5, "atol": 1e-5},
}


def arr(shape, dt="float32", seed=0, view=None):
    return A(rand(shape, dt, seed=seed, low=-1, high=1), dt, view=view)


MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (7, 3, 4)), ((1, 1), (1, 1)), ((4, 1), (1, 5)),
    ((2, 17, 33), (2, 33, 9)), ((0, 2), (2, 3)), ((2, 3), (3, 0)), ((6,), (2, 6, 3)),
    ((2, 4, 6), (6,)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES, ids=repr)
@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16"])
def test_matmul_shapes(sa, sb, dt):
    a, b = arr(sa, dt, 1), arr(sb, dt, 2)
    check(lambda m, x, y: m.matmul(x, y), a, b, np_fn=np.matmul, **TOL[dt])
    check(lambda m, x, y: x @ y, a, b, **TOL[dt])


@pytest.mark.parametrize("va,vb", [("T", None), (None, "T"), ("T", "T"), ("step", None), (None, "step"),
                                   ("bcast", None)], ids=repr)
def test_matmul_noncontiguous(va, vb):
    views = {"T": lambda x: x.T, "step": lambda x: x[::2, ::-1], "bcast": lambda x: x[:1] + 0 * x,
             None: None}
    a = arr((6, 6), seed=3, view=views[va])
    b = arr((6, 6), seed=4, view=views[vb])
    check(lambda m, x, y: m.matmul(x, y[: x.shape[-1]]), a, b,
          np_fn=lambda x, y: x @ y[: x.shape[-1]], **TOL["float32"])


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize("view", ["contiguous", "transposed_weight", "strided"])
def test_half_matmul_with_few_rows(dt, view):
    """f16/bf16 products of up to 16 rows: a row-major weight (1,100 x 300) and one used
    transposed (x @ w.T, the decode layout) are read once by rows; a weight strided along
    both axes is converted 512 x 128 blocks at a time; 17 rows take the whole-cast path.
    (On the CPU: a GPU's bf16 GEMM rounds partial sums differently.)"""
    shape, v = {"contiguous": ((1100, 300), None), "transposed_weight": ((300, 1100), lambda w: w.T),
                "strided": ((1100, 600), lambda w: w[:, ::-2])}[view]
    for rows in (1, 3, 16, 17):
        x = arr((rows, 1100), dt, 11)
        w = arr(shape, dt, 12, view=v)
        check(lambda m, a, b: m.matmul(a, b, stream=m.cpu), x, w, **TOL[dt])


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_half_matvec_over_weight_rows(dt):
    """x @ w.T with f16/bf16 weights and up to 16 rows reads each weight row once and dots
    it with every row of x: rows longer than one 4,096-element run (two runs and a tail
    that is not a multiple of 8 or 32), a weight taken from a larger matrix (rows apart by
    more than their length), a strided x, and against float64 NumPy; x @ w with a
    row-major w adds each converted weight row into blocks of output columns."""
    # results round once to the output type: tight enough that a dropped tail would show
    tol = {"float16": {"rtol": 2e-3, "atol": 2e-3}, "bfloat16": {"rtol": 1e-2, "atol": 1e-2}}[dt]
    for rows, k, n in [(1, 4100, 37), (5, 4096 + 8 * 33 + 3, 20), (16, 257, 64)]:
        x = arr((rows, k), dt, 21)
        w = arr((n, k + 6), dt, 22, view=lambda v: v[:, 3:-3])
        check(lambda m, a, b: m.matmul(a, b.T, stream=m.cpu), x, w,
              np_fn=lambda a, b: a.astype(np.float64) @ b.astype(np.float64).T, **tol)
    xs = arr((3, 2 * 700), dt, 23, view=lambda v: v[:, ::2])
    w = arr((9, 700), dt, 24)
    check(lambda m, a, b: m.matmul(a, b.T, stream=m.cpu), xs, w, **tol)
    # x @ w with w row-major: blocks of 1,024 output columns (2,500: two and a part), a
    # weight taken from a wider matrix
    for rows in (1, 7):
        x = arr((rows, 300), dt, 25)
        w = arr((300, 2510), dt, 26, view=lambda v: v[:, 4:-6])
        check(lambda m, a, b: m.matmul(a, b, stream=m.cpu), x, w,
              np_fn=lambda a, b: a.astype(np.float64) @ b.astype(np.float64), **tol)


def test_matmul_batched_transposed():
    a = arr((3, 4, 5), seed=5, view=lambda x: x.transpose(0, 2, 1))
    b = arr((4, 3, 6), seed=6, view=lambda x: x.transpose(1, 0, 2))
    check(lambda m, x, y: x @ y, a, b, np_fn=np.matmul, **TOL["float32"])


@pytest.mark.parametrize("dt_b", DTYPES)
@pytest.mark.parametrize("dt_a", DTYPES)
def test_matmul_dtype_matrix(dt_a, dt_b):
    """int x int raises ValueError (only inexact types); int x float works; result dtype."""
    a = A(rand((2, 3), dt_a, seed=7, low=-2, high=2), dt_a)
    b = A(rand((3, 2), dt_b, seed=8, low=-2, high=2), dt_b)
    tol = {}
    for d in (dt_a, dt_b):
        if d in TOL and (not tol or TOL[d]["rtol"] > tol["rtol"]):
            tol = TOL[d]
    check(lambda m, x, y: m.matmul(x, y), a, b, **tol)


def test_matmul_errors():
    check_raises(lambda m, x, y: m.matmul(x, y), arr((2, 3)), arr((4, 3)), err=ValueError)
    check_raises(lambda m, x, y: m.matmul(x, y), arr((3,)), arr((4,)), err=ValueError)
    check_raises(lambda m, x, y: m.matmul(x, y), arr(()), arr((3,)), err=ValueError)
    check_raises(lambda m, x, y: x @ y, arr((2, 2, 3)), arr((3, 3, 2)), err=ValueError)
    check_raises(lambda m: m.ones((2, 2), m.int32) @ m.ones((2, 2), m.int32), err=ValueError)


def test_matmul_special_values():
    """NaN / inf / signed zeros (no huge finite values: their overflow depends on summation order)."""
    a = rand((4, 5), "float32", seed=9)
    a.reshape(-1)[[0, 3, 7, 12, 18]] = [np.nan, np.inf, -np.inf, -0.0, np.inf]
    b = rand((5, 3), "float32", seed=10)
    b.reshape(-1)[[1, 9]] = [0.0, -np.inf]
    check(lambda m, x, y: x @ y, A(a), A(b), **TOL["float32"])


def test_matmul_k0_meta():
    """K == 0: shape/dtype parity only (MLX output for empty contractions is not evaluated)."""
    check_meta(lambda m: m.matmul(m.ones((2, 0)), m.ones((0, 3))))


@rmx_only
def test_matmul_k0_values():
    check_np(lambda m, x, y: x @ y, lambda x, y: x @ y, arr((2, 0)), arr((0, 3)))


def test_imatmul():
    def f(m):
        x = m.ones((2, 2))
        alias = x
        x @= m.array([[1.0, 2.0], [3.0, 4.0]])
        return x, alias, x is alias
    check(f)


# ------------------------------------------------------------------- addmm

@pytest.mark.parametrize("sc,sa,sb", [((2, 2), (2, 3), (3, 2)), ((2,), (2, 3), (3, 2)), ((), (3,), (3,)),
                                      ((4, 2, 2), (4, 2, 3), (3, 2)), ((3,), (2, 3), (3, 2)),
                                      ((1, 5), (4, 7), (7, 5))], ids=repr)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (2.0, 0.5), (0.0, 1.0), (1.0, 0.0), (-1.5, 3.0)], ids=repr)
def test_addmm(sc, sa, sb, alpha, beta):
    c, a, b = arr(sc, seed=11), arr(sa, seed=12), arr(sb, seed=13)
    check(lambda m, z, x, y: m.addmm(z, x, y, alpha=alpha, beta=beta), c, a, b,
          np_fn=lambda z, x, y: alpha * (x @ y) + beta * z, **TOL["float32"])


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64", "int32"])
def test_addmm_dtypes(dt):
    c, a, b = arr((2, 2), dt, 14), arr((2, 3), dt, 15), arr((3, 2), dt, 16)
    check(lambda m, z, x, y: m.addmm(z, x, y), c, a, b, **TOL.get(dt, {}))
    check(lambda m, z, x, y: m.addmm(z, x, y, 0.5, 2.0), c, a, b, **TOL.get(dt, {}))


# ------------------------------------------------------------- inner / outer

@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((2, 3), (4, 3)), ((), (2, 3)), ((2, 3), ()),
                                   ((2, 1, 3), (3,)), ((2, 3), (4, 2))], ids=repr)
def test_inner(sa, sb):
    check(lambda m, x, y: m.inner(x, y), arr(sa, seed=17), arr(sb, seed=18),
          np_fn=np.inner, **TOL["float32"])


def test_inner_int_raises():
    check_raises(lambda m: m.inner(m.ones((3,), m.int32), m.ones((3,), m.int32)), err=ValueError)


@pytest.mark.parametrize("sa,sb", [((3,), (2,)), ((2, 2), (3,)), ((), (3,)), ((0,), (2,)), ((2, 3), (1, 2))],
                         ids=repr)
@pytest.mark.parametrize("dt", ["float32", "int32", "int8", "bool_", "float16", "complex64"])
def test_outer(sa, sb, dt):
    check(lambda m, x, y: m.outer(x, y), arr(sa, dt, 19), arr(sb, dt, 20),
          np_fn=np.outer, **TOL.get(dt, {}))


def test_outer_mixed():
    check(lambda m: m.outer(m.arange(3, dtype=m.int8), m.arange(2.0)))


# ---------------------------------------------------------------- tensordot

@pytest.mark.parametrize("sa,sb,axes", [
    ((2, 3, 4), (3, 4, 5), 2), ((2, 3, 4), (4, 5), 1), ((2, 3), (3, 2), 0),
    ((2, 3, 4), (3, 2), ([0, 1], [1, 0])), ((2, 3), (3, 2), [[1], [0]]),
    ((4, 3, 2), (2, 3, 4), ([2, 1, 0], [0, 1, 2])), ((2, 3), (2, 3), ([0, 1], [0, 1])),
    ((2, 3, 4), (4, 3, 2), ([-1], [0])),
], ids=repr)
def test_tensordot(sa, sb, axes):
    check(lambda m, x, y: m.tensordot(x, y, axes=axes), arr(sa, seed=21), arr(sb, seed=22),
          np_fn=lambda x, y: np.tensordot(x, y, axes=axes), **TOL["float32"])
    if axes == 2:
        check(lambda m, x, y: m.tensordot(x, y), arr(sa, seed=21), arr(sb, seed=22), **TOL["float32"])


def test_tensordot_errors():
    check_raises(lambda m: m.tensordot(m.ones((2, 3)), m.ones((3, 2)), axes=3), err=ValueError)
    check_raises(lambda m: m.tensordot(m.ones((2, 3)), m.ones((2, 3)), axes=([0], [1])), err=ValueError)
    check_raises(lambda m: m.tensordot(m.ones((2, 3), m.int32), m.ones((3, 2), m.int32), 1), err=ValueError)


# ------------------------------------------------------------------- vecdot

@pytest.mark.parametrize("sa,sb,axis", [
    ((3,), (3,), -1), ((2, 3), (2, 3), -1), ((2, 3), (2, 3), 0), ((2, 3), (3, 2), -1),
    ((4, 1, 3), (4, 2, 3), -1), ((2, 3), (2, 1), -1),
    # MLX raises "[vecdot] axis is out of bounds" instead of broadcasting different ranks
    pytest.param((2, 3), (3,), -1, marks=mlx_quirk), pytest.param((4, 1, 3), (2, 3), -1, marks=mlx_quirk),
], ids=repr)
@pytest.mark.parametrize("dt", ["float32", "int32", "complex64", "float16"])
def test_vecdot(sa, sb, axis, dt):
    check(lambda m, x, y: m.vecdot(x, y, axis=axis), arr(sa, dt, 23), arr(sb, dt, 24), **TOL.get(dt, {}))


def test_vecdot_complex_conjugates_first():
    check(lambda m: m.vecdot(m.array([1 + 1j, 2 - 1j]), m.array([1 + 1j, 3 + 0j])))


# ---------------------------------------------------------------------- kron

@pytest.mark.parametrize("sa,sb", [((2,), (3,)), ((2, 2), (3,)), ((2, 2), (3, 3, 3)), ((), (3,)),
                                   ((2, 3), (3, 2))], ids=repr)
@pytest.mark.parametrize("dt", ["float32", "int32", "int8", "bool_"])
def test_kron(sa, sb, dt):
    check(lambda m, x, y: m.kron(x, y), arr(sa, dt, 25), arr(sb, dt, 26), np_fn=np.kron)


def test_kron_mixed():
    check(lambda m: m.kron(m.arange(2, dtype=m.int8), m.arange(3.0)))
