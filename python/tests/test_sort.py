"""sort, argsort, partition, argpartition, topk, median, searchsorted: values, dtypes,
stability, NaN order, axes, views, errors and gradients against MLX (and NumPy)."""

import numpy as np
import pytest

from diff import A, DTYPES, FLOATS, check, check_raises, get_rmx, rand

AXES = [-1, 0, 1, -2, None]
VIEWS = {"T": lambda x: x.T, "step": lambda x: x[::2, ::-1], "3d": lambda x: x.reshape(2, 4, 5)
         .transpose(1, 2, 0)[:, ::2]}


def _data(shape, dt, seed, **kw):
    # a narrow range makes ties, which exposes stability
    return A(rand(shape, dt, seed=seed, low=kw.get("low", -3), high=kw.get("high", 3)), dt)


@pytest.mark.parametrize("axis", AXES, ids=repr)
@pytest.mark.parametrize("dt", DTYPES)
def test_sort_argsort_dtypes(dt, axis):
    x = _data((5, 7), dt, 1)
    check(lambda m, a: m.sort(a, axis=axis), x, exact=True)
    check(lambda m, a: m.argsort(a, axis=axis), x, exact=True)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64", "complex64"])
def test_sort_nan_inf_signed_zero(dt):
    x = A(rand((6, 9), dt, seed=2, special=True), dt)
    for axis in [-1, 0, None]:
        check(lambda m, a: m.sort(a, axis=axis), x, exact=True)
        check(lambda m, a: m.argsort(a, axis=axis), x, exact=True)


def test_argsort_stable_ties():
    x = A(np.array([[1, 0, 1, 0, 1, 2, 0, 2]] * 3, np.int32))
    check(lambda m, a: m.argsort(a), x, exact=True)
    check(lambda m, a: m.argsort(a, axis=0), x, exact=True)
    z = A(np.array([0.0, -0.0, 0.0, -0.0, np.nan, -np.nan, 1.0], np.float32))
    check(lambda m, a: m.argsort(a), z, exact=True)


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_sort_noncontiguous(view):
    x = A(rand((8, 5), "float32", seed=3), view=VIEWS[view])
    for axis in [-1, 0, None]:
        check(lambda m, a: m.sort(a, axis=axis), x, exact=True, np_fn=lambda a: np.sort(
            a, axis=axis, kind="stable"))
        check(lambda m, a: m.argsort(a, axis=axis), x, exact=True)


@pytest.mark.parametrize("shape,axis", [((), None), ((0,), -1), ((3, 0), 1), ((3, 0), 0),
                                        ((0, 4), None), ((1,), 0), ((2, 1, 3), 1)], ids=repr)
def test_sort_edge_shapes(shape, axis):
    x = A(rand(shape, "float32", seed=4))
    check(lambda m, a: m.sort(a, axis=axis), x, exact=True)
    check(lambda m, a: m.argsort(a, axis=axis), x, exact=True)


def test_sort_large_rows_parallel():
    x = A(rand((3, 70000), "float32", seed=5))
    check(lambda m, a: m.sort(a), x, exact=True)
    check(lambda m, a: m.argsort(a, axis=0), x, exact=True)


def _part_pieces(m, p, k, axis):
    """The parts of a partition whose contents are defined: sorted head, kth, sorted tail."""
    p = m.moveaxis(p, axis if axis is not None else 0, -1)
    return m.sort(p[..., :k], axis=-1), p[..., k], m.sort(p[..., k + 1:], axis=-1)


@pytest.mark.parametrize("axis", [-1, 0, None], ids=repr)
@pytest.mark.parametrize("kth", [0, 2, -1, -3])
@pytest.mark.parametrize("dt", ["int32", "uint8", "float16", "bfloat16", "float32", "float64",
                                "bool_", "complex64"])
def test_partition(dt, kth, axis):
    x = _data((5, 6), dt, 6)
    n = 30 if axis is None else (6 if axis == -1 else 5)
    k = kth % n
    check(lambda m, a: _part_pieces(m, m.partition(a, kth, axis=axis), k, axis), x, exact=True)

    def arg_pieces(m, a):
        idx = m.argpartition(a, kth, axis=axis)
        src = a.reshape(-1) if axis is None else a
        ax = 0 if axis is None else axis
        vals = m.take_along_axis(src, idx, axis=ax)
        return _part_pieces(m, vals, k, axis) + (m.sort(idx, axis=ax),)
    check(arg_pieces, x, exact=True)


def test_partition_nan():
    x = A(rand((4, 9), "float32", seed=7, special=True))
    for kth in [0, 4, 8]:
        check(lambda m, a: _part_pieces(m, m.partition(a, kth), kth, -1), x, exact=True)


@pytest.mark.parametrize("axis", [-1, 0, None], ids=repr)
@pytest.mark.parametrize("k", [0, 1, 3, 5])
@pytest.mark.parametrize("dt", ["int32", "float32", "float16", "bfloat16", "uint64"])
def test_topk(dt, k, axis):
    x = _data((5, 6), dt, 8, low=-50, high=50)
    check(lambda m, a: m.sort(m.topk(a, k, axis=axis), axis=-1 if axis is None else axis), x,
          exact=True)


def test_topk_whole_axis_returns_input():
    x = A(rand((3, 4), "float32", seed=9))
    check(lambda m, a: m.topk(a, 4), x, exact=True)
    check(lambda m, a: m.topk(a, 12, axis=None), x, exact=True)


MEDIAN_AXES = [None, 0, 1, -1, (0, 2), [2, 0], (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", MEDIAN_AXES, ids=repr)
def test_median_axes(axis, keepdims):
    x = A(rand((3, 4, 5), "float32", seed=10))
    npax = tuple(axis) if isinstance(axis, list) else axis
    check(lambda m, a: m.median(a, axis=axis, keepdims=keepdims), x,
          np_fn=lambda a: np.median(a, axis=npax, keepdims=keepdims))


@pytest.mark.parametrize("dt", DTYPES)
def test_median_dtypes(dt):
    x = _data((4, 6), dt, 11)
    check(lambda m, a: m.median(a), x)
    check(lambda m, a: m.median(a, axis=1), x)
    check(lambda m, a: m.median(a, axis=0, keepdims=True), x)


def test_median_special():
    x = A(np.array([[1, np.nan, 3], [1, 2, 3], [-np.inf, np.inf, 0], [4, 5, np.inf]],
                   np.float32))
    check(lambda m, a: m.median(a, axis=1), x)
    check(lambda m, a: m.median(a), x)
    check(lambda m: m.median(m.array([60000.0, 60000.0], m.float16)))
    check(lambda m: m.median(m.array(3)))
    check(lambda m: m.median(m.zeros((0, 3)), axis=1))
    check(lambda m, a: m.median(a, axis=0), A(rand((8, 5), "float32", seed=12), view=VIEWS["T"]))


SIDES = ["left", "right"]


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("dt", ["int32", "uint8", "int64", "float16", "bfloat16", "float32",
                                "float64", "bool_"])
def test_searchsorted(dt, side):
    seq = A(np.sort(rand((20,), dt, seed=13, low=-5, high=5)), dt)
    vals = A(rand((3, 7), dt, seed=14, low=-7, high=7), dt)
    check(lambda m, s, v: m.searchsorted(s, v, side=side), seq, vals, exact=True,
          np_fn=lambda s, v: np.searchsorted(s, v, side=side))


def test_searchsorted_special():
    seq = A(np.array([1.0, 2.0, 2.0, 3.0, np.nan], np.float32))
    vals = A(np.array([2.0, np.nan, -np.inf, np.inf, 2.5], np.float32))
    for side in SIDES:
        check(lambda m, s, v: m.searchsorted(s, v, side=side), seq, vals, exact=True)
    # mixed dtypes promote; 0-d and empty values; a strided sequence
    check(lambda m: m.searchsorted(m.array([1, 2, 3]), m.array([1.5, 2.0])))
    check(lambda m: m.searchsorted(m.array([1.0, 2.0]), m.array(1.5)))
    check(lambda m: m.searchsorted(m.array([1.0, 2.0]), m.zeros((0, 2))))
    check(lambda m, s: m.searchsorted(s, m.array([0.0, 5.0, 9.0])),
          A(np.arange(20, dtype=np.float32), view=lambda s: s[::3]))


ERRORS = {
    "sort_0d_axis": lambda m: m.sort(m.array(1.0)),
    "sort_bad_axis": lambda m: m.sort(m.zeros((3,)), axis=1),
    "argsort_bad_axis": lambda m: m.argsort(m.zeros((3, 2)), axis=-3),
    "partition_kth": lambda m: m.partition(m.zeros((4,)), 4),
    "partition_kth_neg": lambda m: m.partition(m.zeros((4,)), -5),
    "argpartition_kth": lambda m: m.argpartition(m.zeros((4,)), 7),
    "partition_empty": lambda m: m.partition(m.zeros((0,)), 0),
    "topk_k": lambda m: m.topk(m.zeros((4,)), 5),
    "topk_neg": lambda m: m.topk(m.zeros((4,)), -1),
    "topk_0d": lambda m: m.topk(m.array(1.0), 1),
    "median_dup": lambda m: m.median(m.zeros((2, 3)), axis=(0, 0)),
    "median_bad_axis": lambda m: m.median(m.zeros((2, 3)), axis=3),
    "median_empty": lambda m: m.median(m.zeros((0,))),
    "ss_2d": lambda m: m.searchsorted(m.zeros((1, 2)), m.zeros((2,))),
    "ss_side": lambda m: m.searchsorted(m.zeros((2,)), m.zeros((2,)), side="x"),
    "ss_scalar": lambda m: m.searchsorted(m.zeros((2,)), 1.5),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors(name):
    check_raises(ERRORS[name])


# ---------------------------------------------------------------- gradients

TOL = dict(rtol=2e-5, atol=1e-6)
DISTINCT = A(np.random.default_rng(15).permutation(24).reshape(4, 6).astype(np.float32) * 0.5)
W = A(rand((4, 6), "float32", seed=16))


@pytest.mark.parametrize("axis", [-1, 0, None], ids=repr)
def test_grad_sort(axis):
    def f(m, x, w):
        return m.grad(lambda t: (m.sort(t, axis=axis).reshape(-1) * w.reshape(-1)).sum())(x)
    check(f, DISTINCT, W, **TOL)
    check(lambda m, x, t: m.jvp(lambda q: m.sort(q, axis=axis), [x], [t])[1][0], DISTINCT, W,
          **TOL)


@pytest.mark.parametrize("kth", [0, 3, -2])
def test_grad_partition_topk(kth):
    def part(m, x, w):
        return m.grad(lambda t: (m.sort(m.partition(t, kth), axis=-1) * w).sum())(x)
    check(part, DISTINCT, W, **TOL)

    def top(m, x, w):
        return m.grad(lambda t: (m.sort(m.topk(t, 3, axis=0), axis=0) * w[:3]).sum())(x)
    check(top, DISTINCT, W, **TOL)


def test_grad_median_and_int_outputs():
    check(lambda m, x: m.grad(lambda t: m.median(t, axis=1).sum())(x), DISTINCT, **TOL)
    check(lambda m, x: m.grad(lambda t: m.median(t))(x), DISTINCT, **TOL)
    check(lambda m, x: m.grad(lambda t: m.argsort(t).astype(m.float32).sum())(x), DISTINCT)
    check(lambda m, x: m.grad(
        lambda t: m.searchsorted(m.array([0.0, 3.0]), t).astype(m.float32).sum())(x), DISTINCT)


def _fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def test_grad_sort_finite_differences_float64():
    rx = get_rmx()
    x = np.random.default_rng(17).standard_normal((3, 5))
    w = np.random.default_rng(18).standard_normal((3, 5))

    def f(v):
        t = rx.array(v, dtype=rx.float64)
        return (rx.sort(t, axis=1) * rx.array(w, dtype=rx.float64)).sum() + rx.median(t)

    got = np.array(rx.grad(f)(rx.array(x, dtype=rx.float64)))
    ref = _fd_grad(lambda v: float(f(v).item()), x)
    assert np.allclose(got, ref, rtol=1e-7, atol=1e-8)
