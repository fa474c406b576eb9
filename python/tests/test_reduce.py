"""Reductions (axis int/list/None/negative, keepdims), arg-reductions, softmax, scans."""

import warnings

import numpy as np
import pytest

from diff import A, DTYPES, FLOATS, check, check_meta, check_np, check_raises, rand, rmx_only

# Reductions reorder sums; allow for that in the low-precision types.
RTOL = {
    "float16": {"rtol": 4e-3, "atol": 1e-2},
    "bfloat16": {"rtol": 2e-2, "atol": 6e-2},
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float64": {"rtol": 1e-12, "atol": 1e-12},
    "complex64": {"rtol": 1e-5, "atol": 1e-5},
}
# logsumexp / softmax use float32-precision exp in MLX even for float64.
RTOL_EXP = dict(RTOL, float64={"rtol": 5e-6, "atol": 1e-6})


def _np_var(ddof):
    return lambda a, axis=None, keepdims=False: np.var(a, axis=axis, keepdims=keepdims, ddof=ddof)


def _np_lse(a, axis=None, keepdims=False):
    mx_ = np.max(a, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(a - mx_), axis=axis, keepdims=True)) + mx_
    if not keepdims:
        r = np.squeeze(r, axis=axis) if axis is not None else r.reshape(())
    return r


REDUCE = {
    "sum": np.sum, "prod": np.prod, "mean": np.mean, "max": np.max, "min": np.min,
    "var": np.var, "std": np.std, "logsumexp": _np_lse, "all": np.all, "any": np.any,
}

AXES = [None, 0, 1, 2, -1, -2, -3, (0, 2), [1, -1], (0, 1, 2), (), [2, 0]]


def _np_axis(ax):
    return tuple(ax) if isinstance(ax, list) else ax


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=repr)
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_axes(op, axis, keepdims):
    x = A(rand((2, 3, 4), "float32", seed=1, low=0.5, high=2.0))
    tol = (RTOL_EXP if op == "logsumexp" else RTOL)["float32"]
    ref = REDUCE[op]
    check(lambda m, a: getattr(m, op)(a, axis=axis, keepdims=keepdims), x,
          np_fn=lambda a: ref(a, axis=_np_axis(axis), keepdims=keepdims), **tol)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("axis", [None, 1, (0, 2)], ids=repr)
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_dtypes(op, axis, dt):
    """Result dtypes: e.g. sum(int8) -> int32, sum(uint8) -> uint32, mean(int) -> float32."""
    x = A(rand((3, 4, 5), dt, seed=2, low=0, high=3), dt)
    tol = (RTOL_EXP if op == "logsumexp" else RTOL).get(dt, {})
    check(lambda m, a: getattr(m, op)(a, axis=axis), x, **tol)
    check(lambda m, a: getattr(m, op)(a, axis, True), x, **tol)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_numpy_reference_dtypes(op, dt):
    x = A(rand((4, 6), dt, seed=3, low=-1.5, high=2.0), dt)
    tol = (RTOL_EXP if op == "logsumexp" else RTOL)[dt]
    check(lambda m, a: getattr(m, op)(a, axis=-1), x, np_fn=lambda a: REDUCE[op](a, axis=-1), **tol)


@pytest.mark.parametrize("dt", ["float16", "float32", "float64", "bfloat16", "complex64"])
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_special_values(op, dt):
    x = A(rand((4, 5), dt, seed=4, special=True), dt)
    tol = (RTOL_EXP if op == "logsumexp" else RTOL)[dt]
    check(lambda m, a: getattr(m, op)(a, axis=1), x, **tol)
    check(lambda m, a: getattr(m, op)(a), x, **tol)


VIEWS = {"T": lambda x: x.T, "step": lambda x: x[::2, ::-1], "slice": lambda x: x[1:, 2:5],
         "3d": lambda x: x.reshape(2, 4, 5).transpose(1, 2, 0)[:, ::2]}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("op", sorted(REDUCE))
def test_reduce_noncontiguous(op, view):
    x = A(rand((8, 5), "float32", seed=5, low=0.5, high=1.5), view=VIEWS[view])
    tol = RTOL["float32"]
    for axis in [None, 0, -1]:
        check(lambda m, a: getattr(m, op)(a, axis=axis), x,
              np_fn=lambda a: REDUCE[op](a, axis=axis), **tol)


@pytest.mark.parametrize("op", sorted(REDUCE))
@pytest.mark.parametrize("shape,axis", [((), None), ((0, 3), 1), ((1,), 0), ((1, 1), (0, 1)),
                                        ((2, 0), 0), ((3, 0, 2), (0, 2))], ids=repr)
def test_reduce_edge_shapes(op, shape, axis):
    """0-d inputs, and empty inputs whose *reduced* axes are non-empty."""
    x = A(rand(shape, "float32", seed=6))
    check(lambda m, a: getattr(m, op)(a, axis=axis), x)
    check(lambda m, a: getattr(m, op)(a, axis=axis, keepdims=True), x)


EMPTY_REDUCE = [((0,), None), ((0, 3), 0), ((2, 0), None), ((2, 0), 1), ((0, 3), None),
                ((2, 0, 3), (1, 2))]


@pytest.mark.parametrize("op", sorted(REDUCE))
@pytest.mark.parametrize("shape,axis", EMPTY_REDUCE, ids=repr)
def test_reduce_over_empty_axis_meta(op, shape, axis):
    """Shape/dtype/exception parity for reductions over zero-length axes.

    MLX is NOT evaluated here: MLX 0.32.4 reductions over zero-length axes read
    uninitialised memory (mean((2,0)) sometimes gives inf instead of nan) and can
    spin for many seconds.  max/min/logsumexp raise ValueError at call time.
    """
    x = A(np.zeros(shape, np.float32))
    check_meta(lambda m, a: getattr(m, op)(a, axis=axis), x)
    check_meta(lambda m, a: getattr(m, op)(a, axis=axis, keepdims=True), x)


@rmx_only
@pytest.mark.parametrize("op", ["sum", "prod", "mean", "var", "std", "all", "any"])
@pytest.mark.parametrize("shape,axis", EMPTY_REDUCE, ids=repr)
def test_reduce_over_empty_axis_values(op, shape, axis):
    """Values of reductions over zero-length axes follow NumPy (0, 1, nan, True, False)."""
    x = A(np.zeros(shape, np.float32))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_np(lambda m, a: getattr(m, op)(a, axis=axis),
                 lambda a: getattr(np, op)(a, axis=_np_axis(axis)), x)


@pytest.mark.parametrize("op", sorted(REDUCE))
@pytest.mark.parametrize("axis", [3, -4, (0, 3), 10], ids=repr)
def test_reduce_invalid_axis(op, axis):
    x = A(rand((2, 3, 4), "float32", seed=7))
    check_raises(lambda m, a: getattr(m, op)(a, axis=axis), x, err=IndexError)


@pytest.mark.parametrize("op", sorted(REDUCE))
@pytest.mark.parametrize("axis", [(0, 0), [1, -2], (2, -1, 0)], ids=repr)
def test_reduce_duplicate_axis(op, axis):
    x = A(rand((2, 3, 4), "float32", seed=7))
    check_raises(lambda m, a: getattr(m, op)(a, axis=axis), x, err=ValueError)


def test_reduce_0d_axis():
    check_raises(lambda m: m.sum(m.array(5), axis=0), err=IndexError)
    check_raises(lambda m: m.max(m.array(5.0), axis=-1), err=IndexError)
    check(lambda m: m.sum(m.array(5)))
    check(lambda m: m.mean(m.array(5), axis=()))


@pytest.mark.parametrize("ddof", [0, 1, 2, 5])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_ddof(op, ddof):
    x = A(rand((3, 4), "float32", seed=8))
    check(lambda m, a: getattr(m, op)(a, ddof=ddof), x)
    check(lambda m, a: getattr(m, op)(a, axis=0, ddof=ddof), x,
          np_fn=(lambda a: getattr(np, op)(a, axis=0, ddof=ddof)) if ddof < 3 else None)
    check(lambda m, a: getattr(m, op)(a, 1, True, ddof), x)


def test_reduce_int_overflow_and_bool():
    check(lambda m: m.sum(m.array([2**31 - 1, 1])))
    check(lambda m: m.sum(m.array([200, 100], m.uint8)))
    check(lambda m: m.prod(m.array([200, 100], m.uint8)))
    check(lambda m: m.prod(m.array([100, 100, 100], m.int8)))
    check(lambda m: m.sum(m.array([True, True])))
    check(lambda m: m.mean(m.array([True, True, False])))
    check(lambda m: m.max(m.array([True, False])))
    check(lambda m: m.all(m.array([1.0, float("nan")])))
    check(lambda m: m.any(m.array([0.0, -0.0])))
    check(lambda m: m.max(m.array([-0.0, 0.0])))
    check(lambda m: m.sum(m.array([2**62, 2**62], m.int64)))
    check(lambda m, a: m.sum(a), A(np.array([2**63, 2**63, 5], np.uint64)))


# --------------------------------------------------------------- argmax / argmin

@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3], ids=repr)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_reduce(op, axis, keepdims):
    x = A(rand((3, 4, 5), "float32", seed=9))
    ref = getattr(np, op)
    check(lambda m, a: getattr(m, op)(a, axis=axis, keepdims=keepdims), x,
          np_fn=lambda a: ref(a, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_reduce_dtypes_and_ties(op, dt):
    """Ties resolve to the first occurrence; result dtype is uint32."""
    x = A(rand((4, 6), dt, seed=10, low=0, high=2), dt)
    check(lambda m, a: getattr(m, op)(a, axis=1), x)
    check(lambda m, a: getattr(m, op)(a, axis=0, keepdims=True), x)
    check(lambda m, a: getattr(m, op)(a), x)
    check(lambda m, a: getattr(m, op)(a.T, axis=-1), x)


def test_arg_reduce_special():
    nan = float("nan")
    check(lambda m: m.argmax(m.array([1.0, nan, 3.0])))
    check(lambda m: m.argmin(m.array([1.0, nan, -3.0])))
    check(lambda m: m.argmax(m.array([3, 3, 1])))
    check(lambda m: m.argmax(m.array(5)))
    check(lambda m: m.argmax(m.array([-float("inf"), -float("inf")])))
    check_raises(lambda m: m.argmax(m.zeros((0, 3))), err=ValueError)
    check_raises(lambda m: m.argmax(m.arange(6).reshape(2, 3), axis=(0, 1)), err=TypeError)
    check_raises(lambda m: m.argmin(m.arange(6).reshape(2, 3), axis=2), err=IndexError)
    check_raises(lambda m: m.argmax(m.array(5), axis=0), err=IndexError)


# ------------------------------------------------------------------- softmax

def _np_softmax(a, axis=None):
    mx_ = np.max(a, axis=axis, keepdims=True)
    e = np.exp(a - mx_)
    return e / np.sum(e, axis=axis, keepdims=True)


@pytest.mark.parametrize("precise", [False, True])
@pytest.mark.parametrize("axis", [None, -1, 0, 1, (0, 1), [0, 2]], ids=repr)
def test_softmax_axes(axis, precise):
    x = A(rand((2, 3, 4), "float32", seed=11, low=-4, high=4))
    check(lambda m, a: m.softmax(a, axis=axis, precise=precise), x,
          np_fn=lambda a: _np_softmax(a, _np_axis(axis)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_dtypes(dt):
    """NB: softmax of an integer array keeps the integer dtype in MLX."""
    x = A(rand((3, 5), dt, seed=12, low=0, high=4), dt)
    tol = RTOL_EXP.get(dt, {})
    check(lambda m, a: m.softmax(a, axis=-1), x, **tol)
    check(lambda m, a: m.softmax(a, axis=-1, precise=True), x, **tol)


def test_softmax_special():
    inf = float("inf")
    check(lambda m: m.softmax(m.array([-inf, -inf])))
    check(lambda m: m.softmax(m.array([inf, 1.0])))
    check(lambda m: m.softmax(m.array([-inf, 1.0, 2.0])))
    check(lambda m: m.softmax(m.array([1000.0, 1000.0])))
    check(lambda m: m.softmax(m.array(3.0)))
    check_meta(lambda m: m.softmax(m.zeros((0, 3)), axis=-1))
    check(lambda m: m.logsumexp(m.array([-inf, -inf])))
    check(lambda m: m.logsumexp(m.array([inf, 1.0])))
    check(lambda m: m.logsumexp(m.array([1000.0, 1000.0])))
    check_raises(lambda m: m.softmax(m.ones((2, 3)), axis=2), err=IndexError)


# --------------------------------------------------------------- cumulative ops

SCANS = {"cumsum": np.cumsum, "cumprod": np.cumprod, "cummax": np.maximum.accumulate,
         "cummin": np.minimum.accumulate, "logcumsumexp": np.logaddexp.accumulate}


@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=repr)
@pytest.mark.parametrize("op", sorted(SCANS))
def test_scans(op, axis, reverse, inclusive):
    x = A(rand((3, 5), "float32", seed=13, low=0.5, high=1.5))
    np_fn = None
    if not reverse and inclusive:
        np_fn = (lambda a: SCANS[op](a.reshape(-1) if axis is None else a,
                                     **({} if axis is None else {"axis": axis})))
    tol = {"rtol": 5e-6, "atol": 1e-6} if op == "logcumsumexp" else {"rtol": 1e-5}
    check(lambda m, a: getattr(m, op)(a, axis=axis, reverse=reverse, inclusive=inclusive), x,
          np_fn=np_fn, **tol)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", sorted(SCANS))
def test_scan_dtypes(op, dt):
    """e.g. cumsum(bool) -> int32 but cumprod(bool) -> bool."""
    x = A(rand((2, 6), dt, seed=14, low=0, high=3), dt)
    check(lambda m, a: getattr(m, op)(a, axis=1), x, **RTOL_EXP.get(dt, {}))


@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("op", sorted(SCANS))
def test_scans_of_blocked_layouts(op, axis, reverse, inclusive):
    """The CPU's blocked scan paths: columns in blocks of 1,024 (inner size 1,100 leaves a
    partial block), last-axis lines in groups of 8 and tiles of 32 (63 lines of 1,100),
    and a transposed input that takes the line-by-line path."""
    x = A(rand((3, 21, 1100), "float32", seed=16, low=0.9, high=1.1))
    tol = {"rtol": 1e-4, "atol": 1e-5}
    f = lambda m, a: getattr(m, op)(a, axis=axis, reverse=reverse, inclusive=inclusive)
    check(f, x, **tol)
    check(lambda m, a: f(m, m.transpose(a, (2, 1, 0))), x, **tol)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "int8", "int32", "bool_"])
def test_scans_accumulate_in_the_element_type(dt):
    """As MLX: an f16 cumsum of 1,030 values in [0, 3) is rounded to f16 after every add
    (it drifts by ~20 from the exact sums), an int8 one wraps."""
    x = A(rand((9, 40, 1030), dt, seed=17, low=0, high=3), dt)
    # logaddexp/prod steps round their intermediates too in MLX: allow ~1 ulp
    tol = {"float16": {"rtol": 1e-3, "atol": 1e-3}, "bfloat16": {"rtol": 8e-3, "atol": 8e-3}}
    tol = tol.get(dt, {})
    for axis in (0, 1, 2):
        check(lambda m, a: m.cumsum(a, axis=axis), x, **tol)
        check(lambda m, a: m.cummax(a, axis=axis, reverse=True), x)
        if dt in ("float16", "bfloat16"):
            check(lambda m, a: m.logcumsumexp(a, axis=axis), x, **tol)
            check(lambda m, a: m.cumprod(a / 2, axis=axis), x, **tol)


# --------------------------------------------------------------------- methods

def test_reduction_methods():
    x = A(rand((3, 4), "float32", seed=15))
    for meth in ["sum", "prod", "mean", "max", "min", "var", "std", "logsumexp", "all", "any",
                 "argmax", "argmin"]:
        check(lambda m, a: getattr(a, meth)(), x, rtol=1e-5, atol=1e-6)
        check(lambda m, a: getattr(a, meth)(axis=1, keepdims=True), x, rtol=1e-5, atol=1e-6)
        check(lambda m, a: getattr(a, meth)(0), x, rtol=1e-5, atol=1e-6)
    check(lambda m, a: a.var(ddof=1), x)
    check(lambda m, a: a.cumsum(axis=0), x)
    check(lambda m, a: a.cumsum(1, reverse=True), x)
