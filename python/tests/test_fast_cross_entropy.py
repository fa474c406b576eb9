"""fast.cross_entropy against MLX 0.32.4's CPU result (bit for bit: the unfused graph
in the logits' dtype, cast to float32) and NumPy float64: dtypes, negative targets,
batches, views, NaN/inf, errors, gradients (MLX's vjp/jvp, finite differences), vmap."""

import numpy as np
import pytest

from diff import A, FLOATS, INTS, check, check_raises, get_rmx, rand


def np_ce(logits, targets):
    l = logits.astype(np.float64)
    m = l.max(-1, keepdims=True)
    lse = np.log(np.exp(l - m).sum(-1)) + m[..., 0]
    t = np.where(targets < 0, targets + l.shape[-1], targets)
    return lse - np.take_along_axis(l, t[..., None].astype(np.int64), -1)[..., 0]


def _targets(shape, v, seed, dt="int32", negative=False):
    g = np.random.default_rng(seed)
    lo = -v if negative else 0
    return A(g.integers(lo, v, size=shape).astype(dt), dt)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("shape", [(7,), (4, 9), (2, 3, 33), (0 + 1, 1)], ids=str)
def test_values_dtypes(dt, shape):
    logits = A(rand(shape, dt, seed=1, low=-8, high=8), dt)
    t = _targets(shape[:-1], shape[-1], 2)
    tol = {"float16": 2e-3, "bfloat16": 2e-2}.get(dt, 1e-5)
    check(lambda m, l, y: m.fast.cross_entropy(l, y), logits, t, exact=dt != "float64",
          rtol=1e-6 if dt == "float64" else None, atol=1e-6 if dt == "float64" else None,
          np_fn=np_ce, np_rtol=tol, np_atol=tol)


@pytest.mark.parametrize("tdt", INTS)
def test_target_dtypes_and_negative_indices(tdt):
    logits = A(rand((5, 6), "float32", seed=3))
    neg = tdt.startswith("int")
    t = _targets((5,), 6, 4, tdt, negative=neg)
    check(lambda m, l, y: m.fast.cross_entropy(l, y), logits, t, exact=True, np_fn=np_ce,
          np_rtol=1e-5, np_atol=1e-5)


def test_views_and_special_values():
    data = rand((6, 8), "float32", seed=5)
    t = _targets((4,), 6, 6)
    check(lambda m, l, y: m.fast.cross_entropy(l, y), A(data, view=lambda x: x.T[::2]), t,
          exact=True)
    check(lambda m, l, y: m.fast.cross_entropy(l, y),
          A(np.array([[1e30, -1e30, np.inf]], np.float32)), A(np.array([0], np.int32)), exact=True)
    check(lambda m, l, y: m.fast.cross_entropy(l, y),
          A(np.array([[np.nan, 1.0], [1.0, 2.0]], np.float32)), A(np.array([1, 0], np.int32)),
          exact=True)
    check(lambda m, l, y: m.fast.cross_entropy(l, y),
          A(np.array([[-np.inf, 0.0]], np.float32)), A(np.array([0], np.int32)), exact=True)
    check(lambda m, l, y: m.fast.cross_entropy(l, y), A(rand((3,), "float32")),
          A(np.int32(2)), exact=True)


def test_errors():
    logits = A(rand((2, 3), "float32", seed=7))
    t = A(np.array([2, 0], np.int32))
    ce = lambda m, l, y: m.fast.cross_entropy(l, y)  # noqa: E731
    for dt in ["int32", "bool_", "complex64", "uint8"]:
        check_raises(ce, A(rand((2, 3), dt), dt), t, err=ValueError)
    check_raises(ce, logits, A(np.array([2.0, 0.0], np.float32)), err=ValueError)
    check_raises(ce, logits, A(np.array([True, False])), err=ValueError)
    check_raises(ce, logits, A(np.array([2], np.int32)), err=ValueError)
    check_raises(ce, logits, A(np.array([[2], [0]], np.int32)), err=ValueError)
    check_raises(ce, logits, A(np.int32(2)), err=ValueError)
    check_raises(ce, A(np.float32(1.0)), A(np.int32(0)), err=ValueError)
    check_raises(ce, A(np.zeros((2, 0), np.float32)), t, err=ValueError)
    check_raises(ce, A(np.zeros((0, 3), np.float32)), A(np.zeros((0,), np.int32)),
                 err=ValueError)
    check_raises(lambda m, y: m.fast.cross_entropy([[1.0, 2.0]], y), t, err=TypeError)
    check_raises(lambda m, l: m.fast.cross_entropy(l, [2, 0]), logits, err=TypeError)


def test_out_of_range_targets_raise():
    # MLX reads out of bounds there (undefined); rmx checks its indices
    rx = get_rmx()
    with pytest.raises(IndexError):
        rx.eval(rx.fast.cross_entropy(rx.zeros((2, 3)), rx.array([3, 0])))
    with pytest.raises(IndexError):
        rx.eval(rx.fast.cross_entropy(rx.zeros((2, 3)), rx.array([0, -4])))


@pytest.mark.parametrize("dt", ["float32", "float16"])
def test_grad_jvp_vmap(dt):
    logits = A(rand((3, 5), dt, seed=8), dt)
    t = A(np.array([4, -1, 0], np.int32))
    # half precision: the derivative graphs round in float16 in a different order
    tol = dict(rtol=2e-3, atol=2e-3) if dt == "float16" else {}
    check(lambda m, l, y: m.grad(lambda z: m.fast.cross_entropy(z, y).sum())(l), logits, t,
          **tol)
    check(lambda m, l, y: m.jvp(lambda z: m.fast.cross_entropy(z, y), [l],
                                [m.ones_like(l)]), logits, t, **tol)
    w = np.array([0.5, -1.0, 2.0], np.float32)
    check(lambda m, l, y: m.vjp(lambda z: m.fast.cross_entropy(z, y), [l], [m.array(w)]),
          logits, t, **tol)
    check_raises(lambda m, l, y: m.grad(lambda z, w: m.fast.cross_entropy(z, w).sum(),
                                        argnums=1)(l, y), logits, t, err=ValueError)
    check(lambda m, l, y: m.vmap(lambda z, w: m.fast.cross_entropy(z, w))(
        m.stack([l, l * 2]), m.stack([y, y])), logits, t, **tol)


def test_grad_finite_differences():
    rx = get_rmx()
    l0 = rand((3, 4), "float64", seed=9)
    t = rx.array([1, 3, 0])
    f = lambda z: rx.fast.cross_entropy(z, t).sum()  # noqa: E731
    g = np.array(rx.grad(f)(rx.array(l0, rx.float64)))
    eps = 1e-3  # the loss is rounded to float32
    fd = np.zeros_like(l0)
    for idx in np.ndindex(l0.shape):
        e = np.zeros_like(l0)
        e[idx] = eps
        fd[idx] = (f(rx.array(l0 + e, rx.float64)).item()
                   - f(rx.array(l0 - e, rx.float64)).item()) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-3, atol=1e-3)
