"""mlx.core.fft: transforms with n/s/axes/norm (truncation, zero-padding), dtype rules,
views, frequencies, shifts, errors and derivatives, against MLX and numpy.fft."""

import numpy as np
import pytest

from diff import A, check, check_np, check_raises, get_rmx, rand, rmx_only

# float32 transforms accumulate rounding with the length; MLX and rmx use different
# algorithms (pocketfft / rustfft), so compare with a tolerance scaled to the data.
TOL = dict(rtol=1e-4, atol=1e-4)
NORMS = ["backward", "ortho", "forward"]
ONE_D = ["fft", "ifft", "rfft", "irfft"]
N_D = ["fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn"]


def cplx(shape, seed):
    return A(rand(shape, "complex64", seed=seed))


def real(shape, seed, dt="float32"):
    return A(rand(shape, dt, seed=seed), dt)


def np_ref(name, **kw):
    """numpy.fft's transform; rfft* of complex input uses the real part, as MLX does."""
    if name.startswith("rfft"):
        return lambda a: getattr(np.fft, name)(np.real(a), **kw)
    return lambda a: getattr(np.fft, name)(a, **kw)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("n", [None, 1, 5, 8, 13, 16])
@pytest.mark.parametrize("name", ONE_D)
def test_one_d_sizes(name, n, norm):
    x = cplx((3, 8), 1) if name != "rfft" else real((3, 8), 1)
    check(lambda m, a: getattr(m.fft, name)(a, n=n, norm=norm), x,
          np_fn=np_ref(name, n=n, norm=norm), **TOL)


@pytest.mark.parametrize("axis", [0, 1, -1, -2, -3])
@pytest.mark.parametrize("name", ONE_D)
def test_one_d_axes(name, axis):
    x = cplx((4, 6, 5), 2)
    check(lambda m, a: getattr(m.fft, name)(a, axis=axis), x,
          np_fn=np_ref(name, axis=axis), **TOL)
    check(lambda m, a: getattr(m.fft, name)(a, n=7, axis=axis), x,
          np_fn=np_ref(name, n=7, axis=axis), **TOL)


@pytest.mark.parametrize("dt", ["bool_", "int32", "uint8", "int64", "float16", "bfloat16",
                                "float32", "float64", "complex64"])
@pytest.mark.parametrize("name", ONE_D)
def test_one_d_dtypes(name, dt):
    """Every input type goes to complex64 (float32 for irfft); rfft drops imaginary parts."""
    x = A(rand((2, 6), dt, seed=3, low=0, high=4), dt)
    check(lambda m, a: getattr(m.fft, name)(a), x, **TOL)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("sa", [(None, None), (None, (0,)), (None, (2, 0)), ((4, 6), (0, 2)),
                                ((3, 9, 2), (0, 1, 2)), ((5,), (-1,)), ((2, 2), (1, -1)),
                                (None, (-2, -1))], ids=repr)
@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn"])
def test_n_d(name, sa, norm):
    s, axes = sa
    x = cplx((4, 5, 6), 4) if name != "rfftn" else real((4, 5, 6), 4)
    check(lambda m, a: getattr(m.fft, name)(a, s=s, axes=axes, norm=norm), x,
          np_fn=np_ref(name, s=s, axes=axes, norm=norm), **TOL)


@pytest.mark.parametrize("s", [None, (3, 4), (6, 10), (1, 1)], ids=repr)
@pytest.mark.parametrize("name", ["fft2", "ifft2", "rfft2", "irfft2"])
def test_two_d(name, s):
    x = cplx((2, 5, 8), 5) if name != "rfft2" else real((2, 5, 8), 5)
    check(lambda m, a: getattr(m.fft, name)(a, s=s), x, np_fn=np_ref(name, s=s), **TOL)
    check(lambda m, a: getattr(m.fft, name)(a, s=s, axes=(0, 2)), x,
          np_fn=np_ref(name, s=s, axes=(0, 2)), **TOL)
    check(lambda m, a: getattr(m.fft, name)(a, axes=None), x, **TOL)


VIEWS = {"T": lambda x: x.T, "step": lambda x: x[::2, ::-1], "slice": lambda x: x[1:, 2:7]}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("name", ONE_D + ["fft2", "rfft2", "irfftn"])
def test_noncontiguous(name, view):
    x = cplx((8, 10), 6) if name not in ("rfft", "rfft2") else real((8, 10), 6)
    x.view = VIEWS[view]
    check(lambda m, a: getattr(m.fft, name)(a), x, **TOL)
    if name in ONE_D:
        check(lambda m, a: getattr(m.fft, name)(a, axis=0), x, **TOL)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 64, 97, 128, 1000, 1024])
def test_lengths_and_inverse_roundtrip(n):
    x = real((2, n), 7)
    tol = dict(rtol=1e-4, atol=2e-4 * np.sqrt(n))
    check(lambda m, a: m.fft.rfft(a), x, np_fn=np.fft.rfft, **tol)
    check(lambda m, a: m.fft.fft(a), x, np_fn=np.fft.fft, **tol)
    check(lambda m, a: m.fft.irfft(m.fft.rfft(a), n=n), x, np_fn=lambda a: a, **tol)
    check(lambda m, a: m.fft.ifft(m.fft.fft(a)), x, **tol)


def test_large_parallel():
    x = real((4, 4096), 8)
    check(lambda m, a: m.fft.rfft(a), x, rtol=1e-3, atol=1e-2)
    check(lambda m, a: m.fft.fft(a, axis=0), x, rtol=1e-3, atol=1e-3)


def test_special_values_and_empty():
    x = A(np.array([[1.0, np.inf, 0.0, 2.0], [np.nan, 1.0, 2.0, 3.0]], np.float32))
    check(lambda m, a: m.fft.fft(a), x)
    check(lambda m: m.fft.fft(m.zeros((0, 4))))
    check(lambda m: m.fft.rfft(m.zeros((3, 0, 4))))
    check(lambda m: m.fft.irfft(m.zeros((0, 3), m.complex64)))
    check(lambda m: m.fft.fft(m.array([2.0]), n=1))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 11])
@pytest.mark.parametrize("d", [1.0, 0.5, 0.1, 3.0])
def test_freqs(n, d):
    check(lambda m: m.fft.fftfreq(n, d), np_fn=lambda: np.fft.fftfreq(n, d))
    check(lambda m: m.fft.rfftfreq(n, d), np_fn=lambda: np.fft.rfftfreq(n, d))
    check(lambda m: m.fft.fftfreq(n))


@pytest.mark.parametrize("axes", [None, 0, 1, -1, (0, 1), [1, 0]], ids=repr)
@pytest.mark.parametrize("name", ["fftshift", "ifftshift"])
def test_shifts(name, axes):
    for shape in [(5, 4), (6, 7)]:
        x = A(np.arange(np.prod(shape), dtype=np.int32).reshape(shape))
        np_axes = tuple(axes) if isinstance(axes, list) else axes
        check(lambda m, a: getattr(m.fft, name)(a, axes=axes), x, exact=True,
              np_fn=lambda a: getattr(np.fft, name)(a, axes=np_axes))
    check(lambda m, a: getattr(m.fft, name)(a), A(rand((7,), "complex64", seed=9)))


def test_axes_empty_returns_input():
    x = real((3, 4), 10)
    check(lambda m, a: m.fft.fftn(a, axes=[]), x, exact=True)


ERRORS = {
    "fft_0d": lambda m: m.fft.fft(m.array(1.0)),
    "fftn_0d": lambda m: m.fft.fftn(m.array(1.0)),
    "n_zero": lambda m: m.fft.fft(m.zeros((3,)), n=0),
    "n_negative": lambda m: m.fft.fft(m.zeros((3,)), n=-1),
    "empty_axis": lambda m: m.fft.fft(m.zeros((0,))),
    "bad_axis": lambda m: m.fft.fft(m.zeros((3,)), axis=1),
    "bad_axis_n": lambda m: m.fft.fft(m.zeros((3,)), n=4, axis=1),
    "s_without_axes": lambda m: m.fft.fftn(m.zeros((3, 4)), s=(2, 2)),
    "rfftn_s_without_axes": lambda m: m.fft.rfftn(m.zeros((3, 4)), s=(5, 6)),
    "dup_axes": lambda m: m.fft.fftn(m.zeros((3, 4)), axes=(0, 0)),
    "s_axes_sizes": lambda m: m.fft.fftn(m.zeros((3, 4)), s=(2,), axes=(0, 1)),
    "irfft_len1": lambda m: m.fft.irfft(m.zeros((1,))),
    "norm": lambda m: m.fft.fft(m.zeros((3,)), norm="x"),
    "norm_n": lambda m: m.fft.rfftn(m.zeros((3,)), norm="none"),
    "fftfreq_0": lambda m: m.fft.fftfreq(0),
    "rfftfreq_neg": lambda m: m.fft.rfftfreq(-2),
    "shift_bad_axis": lambda m: m.fft.fftshift(m.zeros((3,)), axes=2),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors(name):
    check_raises(ERRORS[name])


# ---------------------------------------------------------------- derivatives

GTOL = dict(rtol=2e-4, atol=2e-4)


def _loss(m, name, kw):
    w = m.array(rand((4, 8), "float32", seed=11))

    def f(t):
        y = getattr(m.fft, name)(t, **kw)
        if y.dtype == m.complex64:
            return (m.real(y) * w[:, : y.shape[1]] + m.imag(y) * w[:, : y.shape[1]] ** 2).sum()
        return (y * w[:, : y.shape[1]]).sum()
    return f


GRAD_CASES = [("fft", {}), ("ifft", {}), ("rfft", {}), ("irfft", {}), ("fft", {"n": 6}),
              ("rfft", {"n": 5}), ("irfft", {"n": 7}), ("fft", {"norm": "ortho"}),
              ("irfft", {"norm": "forward"}), ("fft2", {}), ("rfftn", {"axes": (0, 1)}),
              ("irfft2", {"s": (4, 6)})]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: f"{c[0]}{c[1]}")
def test_vjp(case):
    name, kw = case
    x = real((4, 8), 12) if name in ("rfft", "rfftn") else cplx((4, 5), 12)
    check(lambda m, a: m.grad(_loss(m, name, kw))(a), x, **GTOL)


# MLX's jvp of irfft forgets `n` (it returns the default length); see the rmx-only test.
JVP_CASES = [c for c in GRAD_CASES if c != ("irfft", {"n": 7})]


@pytest.mark.parametrize("case", JVP_CASES, ids=lambda c: f"{c[0]}{c[1]}")
def test_jvp(case):
    name, kw = case
    shape = (4, 8) if name in ("rfft", "rfftn") else (4, 5)
    x = real(shape, 13) if name in ("rfft", "rfftn") else cplx(shape, 13)
    t = real(shape, 14) if name in ("rfft", "rfftn") else cplx(shape, 14)
    check(lambda m, a, v: m.jvp(lambda q: getattr(m.fft, name)(q, **kw), [a], [v])[1][0], x, t,
          **GTOL)


@rmx_only
def test_jvp_irfft_keeps_n():
    """The jvp of a linear map is the map of the tangent: irfft(t, n=7), not MLX's n=6."""
    x, t = cplx((4, 5), 13), cplx((4, 5), 14)
    check_np(lambda m, a, v: m.jvp(lambda q: m.fft.irfft(q, n=7), [a], [v])[1][0],
             lambda a, v: np.fft.irfft(v, n=7), x, t, rtol=1e-4, atol=1e-4)


def test_grad_real_input_finite_differences():
    """A real input through fft, irfft of rfft and an n-d transform, against central
    differences (float32 transforms, so a loose tolerance)."""
    rx = get_rmx()
    x = rand((3, 6), "float32", seed=15).astype(np.float64)
    w = rand((3, 6), "float32", seed=16)

    def f(v):
        t = rx.array(v, dtype=rx.float32)
        y = rx.fft.fft(t)
        z = rx.fft.irfft(rx.fft.rfft(t * t), n=6)
        return (rx.abs(y) * rx.array(w)).sum() + (z * rx.array(w)).sum() + rx.abs(
            rx.fft.fft2(t)).sum()

    got = np.array(rx.grad(f)(rx.array(x, dtype=rx.float32)))
    eps = 1e-2
    ref = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        ref[i] = (f(x + d).item() - f(x - d).item()) / (2 * eps)
    assert np.allclose(got, ref, rtol=2e-2, atol=2e-2), (got, ref)
