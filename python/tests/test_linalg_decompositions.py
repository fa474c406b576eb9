"""mlx.core.linalg (decompositions, solves, norms, cross) and random.multivariate_normal,
against MLX 0.32.4 and numpy.linalg in float64.

Values that are unique (inverses, solutions, determinants, singular values, sorted
eigenvalues, LU with partial pivoting, Cholesky factors) are compared directly.
Eigenvectors, singular vectors and QR factors are unique only up to signs/phases, so
they are checked through invariants (reconstruction, orthogonality, A v = w v) and
sign-free quantities (|R|). Derivatives are checked against central finite differences
in float64, against MLX where MLX has them (det, slogdet, solve w.r.t. b), and vmap
against a loop."""

import numpy as np
import pytest

from diff import A, REF, check, check_np, check_raises, get_rmx, rand, rmx_only, to_numpy

TOL32 = dict(rtol=2e-4, atol=2e-5)
DTYPES = ["float32", "float64"]
SHAPES = [(4, 4), (2, 3, 5, 5), (0, 3, 3), (1, 1)]


def tol(dt, scale=1.0):
    if dt == "float64":
        return dict(rtol=1e-9 * scale, atol=1e-10 * scale)
    return dict(rtol=2e-4 * scale, atol=2e-5 * scale)


def general(shape, seed=0):
    """Well-conditioned square matrices (diagonal boost)."""
    x = rand(shape, "float64", seed=seed)
    n = shape[-1]
    return x + 3.0 * np.eye(n) * (np.sign(x[..., :1, :1]) + (x[..., :1, :1] == 0))


def spd(shape, seed=0):
    x = rand(shape, "float64", seed=seed)
    n = shape[-1]
    return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)


def lower(shape, seed=0, upper=False):
    g = general(shape, seed)
    return np.triu(g) if upper else np.tril(g)


def npa(x):
    return to_numpy(x)


# ---------------------------------------------------------------------------- values

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_inv(shape, dt):
    check(lambda m, a: m.linalg.inv(a), A(general(shape, 1), dt),
          np_fn=np.linalg.inv, **tol(dt, 10))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_tri_inv(shape, dt, upper):
    # the other triangle holds garbage: only the named one is read
    x = general(shape, 2)
    ref = (lambda a: np.linalg.inv(np.triu(a))) if upper else (lambda a: np.linalg.inv(np.tril(a)))
    check(lambda m, a: m.linalg.tri_inv(a, upper=upper), A(x, dt), np_fn=ref, **tol(dt, 10))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_cholesky(shape, dt, upper):
    x = spd(shape, 3)
    # garbage in the unread triangle
    bad = np.triu(np.full(shape, 7.0), 1) if not upper else np.tril(np.full(shape, 7.0), -1)
    x_read = x + bad

    def ref(a):
        l = np.linalg.cholesky(x)
        return np.swapaxes(l, -1, -2) if upper else l
    check(lambda m, a: m.linalg.cholesky(a, upper=upper), A(x_read, dt), np_fn=ref, **tol(dt, 10))


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("dt", DTYPES)
def test_cholesky_inv(dt, upper):
    x = spd((2, 4, 4), 4)
    l = np.linalg.cholesky(x)
    f = np.swapaxes(l, -1, -2) if upper else l
    check(lambda m, a: m.linalg.cholesky_inv(a, upper=upper), A(f, dt),
          np_fn=lambda a: np.linalg.inv(x), **tol(dt, 100))


@pytest.mark.parametrize("shape", SHAPES + [(3, 6, 6)])
@pytest.mark.parametrize("dt", DTYPES)
def test_det_slogdet(shape, dt):
    x = general(shape, 5)
    # MLX 0.32.4 computes det as sign * exp(log|det|) and its float64 exp is only
    # float32-accurate, so MLX's float64 determinant is compared at 1e-6; NumPy exactly
    t = dict(rtol=1e-6, atol=1e-9) if dt == "float64" else tol(dt, 10)
    check(lambda m, a: m.linalg.det(a), A(x, dt), np_fn=np.linalg.det, np_rtol=tol(dt, 10)["rtol"],
          **t)
    check(lambda m, a: m.linalg.slogdet(a), A(x, dt),
          np_fn=lambda a: tuple(np.linalg.slogdet(a)), **tol(dt, 10))


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "int32", "bool_"])
def test_det_other_dtypes(dt):
    # half types and integers are computed in float32; the result keeps a float input's
    # dtype (float32 for integers and bool)
    x = np.array([[2, 1, 0], [1, 3, 1], [0, 1, 4]])
    check(lambda m, a: m.linalg.det(a), A(x if dt != "bool_" else np.eye(3) > 0, dt), rtol=1e-2)
    check(lambda m, a: m.linalg.slogdet(a), A(x if dt != "bool_" else np.eye(3) > 0, dt),
          rtol=1e-2, atol=1e-2)
    # a larger bfloat16 determinant: MLX 0.32.4 rounds more than once (796 where the
    # float32 value rounds to 804 = rmx); within two bfloat16 steps
    sq = spd((3, 3), 37)
    check(lambda m, a: m.linalg.det(a), A(sq, "bfloat16"), rtol=2e-2)


def test_det_singular():
    x = np.array([[1.0, 2.0], [2.0, 4.0]])
    check(lambda m, a: m.linalg.det(a), A(np.zeros((3, 3))))
    check(lambda m, a: m.linalg.slogdet(a), A(np.zeros((3, 3))))
    check(lambda m, a: m.linalg.det(a), A(x), atol=1e-6)


@pytest.mark.parametrize("bshape", [(4, 2), (4,), (4, 1), (4, 0)])
@pytest.mark.parametrize("dt", DTYPES)
def test_solve(dt, bshape):
    a = general((4, 4), 6)
    b = rand(bshape, "float64", seed=7)
    check(lambda m, x, y: m.linalg.solve(x, y), A(a, dt), A(b, dt), np_fn=np.linalg.solve,
          **tol(dt, 10))


def test_solve_batched_and_mixed():
    a = general((2, 3, 3), 8)
    b = rand((2, 3, 2), "float64", seed=9)
    check(lambda m, x, y: m.linalg.solve(x, y), A(a, "float32"), A(b, "float32"),
          np_fn=np.linalg.solve, **TOL32)
    # float64 and float32 promote to float64
    check(lambda m, x, y: m.linalg.solve(x, y), A(a[0], "float64"), A(b[0], "float32"),
          np_fn=np.linalg.solve, rtol=1e-6)
    check(lambda m, x, y: m.linalg.solve(x, y), A(np.zeros((0, 3, 3))), A(np.zeros((0, 3, 2))))


@rmx_only
def test_solve_broadcast_batches():
    # MLX 0.32.4 fails inside its LU gather here; rmx follows NumPy's broadcasting
    a = general((2, 1, 3, 3), 10)
    b = rand((4, 3, 2), "float64", seed=11)
    check_np(lambda m, x, y: m.linalg.solve(x, y), np.linalg.solve, A(a, "float64"),
             A(b, "float64"), rtol=1e-9, atol=1e-10)
    check_np(lambda m, x, y: m.linalg.solve(x, y),
             lambda x, y: np.linalg.solve(x, y[..., None])[..., 0],
             A(a[:, 0], "float64"), A(b[0, :, 0], "float64"), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("bshape", [(4, 3), (4,), (2, 4, 3)])
@pytest.mark.parametrize("dt", DTYPES)
def test_solve_triangular(dt, bshape, upper):
    a = general((4, 4), 12)
    b = rand(bshape, "float64", seed=13)
    t = np.triu(a) if upper else np.tril(a)

    def ref(x, y):
        if y.ndim == 1:
            return np.linalg.solve(t, y)
        return np.linalg.solve(np.broadcast_to(t, y.shape[:-2] + t.shape), y)
    check(lambda m, x, y: m.linalg.solve_triangular(x, y, upper=upper), A(a, dt), A(b, dt),
          np_fn=ref, **tol(dt, 10))


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4), (0, 3, 3), (3, 0)])
@pytest.mark.parametrize("dt", DTYPES)
def test_pinv(shape, dt):
    x = rand(shape, "float64", seed=14)
    check(lambda m, a: m.linalg.pinv(a), A(x, dt), np_fn=np.linalg.pinv, **tol(dt, 100))


def test_pinv_rank_deficient():
    x = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    check(lambda m, a: m.linalg.pinv(a), A(x), np_fn=np.linalg.pinv, rtol=1e-4, atol=1e-5)
    check(lambda m, a: m.linalg.pinv(a), A(np.zeros((3, 3))))


@pytest.mark.parametrize("uplo", ["L", "U"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_eigvalsh(shape, dt, uplo):
    x = spd(shape, 15) - 2.0 * shape[-1] * np.eye(shape[-1])
    bad = np.triu(np.full(shape, 5.0), 1) if uplo == "L" else np.tril(np.full(shape, 5.0), -1)
    check(lambda m, a: m.linalg.eigvalsh(a, UPLO=uplo), A(x + bad, dt),
          np_fn=lambda a: np.linalg.eigvalsh(x), **tol(dt, 100))


def test_eigh_uplo_other_strings_read_upper():
    x = spd((3, 3), 16) + np.tril(np.full((3, 3), 9.0), -1)
    for u in ["u", "X", ""]:
        check(lambda m, a: m.linalg.eigvalsh(a, UPLO=u), A(x), **TOL32)


@pytest.mark.parametrize("uplo", ["L", "U"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dt", DTYPES)
def test_eigh_invariants(shape, dt, uplo):
    rx = get_rmx()
    x = spd(shape, 17) - shape[-1] * np.eye(shape[-1])
    w, v = rx.linalg.eigh(rx.array(x, dtype=getattr(rx, dt)), UPLO=uplo)
    wm, _ = REF.linalg.eigh(REF.array(x, dtype=getattr(REF, dt)), UPLO=uplo)
    assert w.dtype == getattr(rx, dt) and v.dtype == getattr(rx, dt)
    assert w.shape == wm.shape and v.shape == x.shape
    w, v = npa(w).astype(np.float64), npa(v).astype(np.float64)
    t = tol(dt, 100)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(x), **t)
    np.testing.assert_allclose(w, npa(wm), **t)
    n = shape[-1]
    np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(np.eye(n), x.shape),
                               atol=1e-4 if dt == "float32" else 1e-10)
    np.testing.assert_allclose(x @ v, v * w[..., None, :], atol=1e-3 if dt == "float32" else 1e-9)


def test_eigh_complex64():
    rx = get_rmx()
    r = rand((2, 4, 4), "float64", seed=18) + 1j * rand((2, 4, 4), "float64", seed=19)
    h = r @ np.conj(np.swapaxes(r, -1, -2))
    w, v = rx.linalg.eigh(rx.array(h.astype(np.complex64)))
    assert w.dtype == rx.float32 and v.dtype == rx.complex64
    check(lambda m, a: m.linalg.eigvalsh(a), A(h.astype(np.complex64), "complex64"),
          np_fn=np.linalg.eigvalsh, rtol=1e-4, atol=1e-4)
    v = npa(v)
    np.testing.assert_allclose(h @ v, v * npa(w)[..., None, :], atol=1e-3)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4, 2), (0, 3, 3), (0, 0), (1, 3)])
@pytest.mark.parametrize("dt", DTYPES)
def test_svd(shape, dt):
    rx = get_rmx()
    x = rand(shape, "float64", seed=20)
    t = tol(dt, 100)
    # singular values are unique
    check(lambda m, a: m.linalg.svd(a, compute_uv=False), A(x, dt),
          np_fn=lambda a: np.linalg.svd(a, compute_uv=False), **t)
    check(lambda m, a: [o.shape for o in m.linalg.svd(a)], A(x, dt))
    u, s, vt = rx.linalg.svd(rx.array(x, dtype=getattr(rx, dt)))
    assert (u.dtype, s.dtype, vt.dtype) == (getattr(rx, dt),) * 3
    u, s, vt = (npa(o).astype(np.float64) for o in (u, s, vt))
    mm, nn = shape[-2], shape[-1]
    k = min(mm, nn)
    eye = lambda q: np.broadcast_to(np.eye(q), shape[:-2] + (q, q))  # noqa: E731
    at = 1e-4 if dt == "float32" else 1e-10
    np.testing.assert_allclose(np.swapaxes(u, -1, -2) @ u, eye(mm), atol=at)
    np.testing.assert_allclose(vt @ np.swapaxes(vt, -1, -2), eye(nn), atol=at)
    recon = (u[..., :, :k] * s[..., None, :]) @ vt[..., :k, :]
    np.testing.assert_allclose(recon, x, atol=at * 10)


def test_svd_complex64():
    rx = get_rmx()
    x = (rand((3, 4), "float64", seed=21) + 1j * rand((3, 4), "float64", seed=22)).astype(np.complex64)
    check(lambda m, a: m.linalg.svd(a, compute_uv=False), A(x, "complex64"),
          np_fn=lambda a: np.linalg.svd(a, compute_uv=False), rtol=1e-4, atol=1e-5)
    u, s, vt = rx.linalg.svd(rx.array(x))
    assert (u.dtype, s.dtype, vt.dtype) == (rx.complex64, rx.float32, rx.complex64)
    u, s, vt = npa(u), npa(s), npa(vt)
    np.testing.assert_allclose((u[:, :3] * s) @ vt[:3], x, atol=1e-4)


def test_svd_nan_raises():
    check_raises(lambda m, a: m.linalg.svd(a), A(np.full((3, 3), np.nan)), err=RuntimeError)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4, 2), (0, 3, 3), (0, 0)])
@pytest.mark.parametrize("dt", DTYPES)
def test_qr(shape, dt):
    rx = get_rmx()
    x = rand(shape, "float64", seed=23)
    check(lambda m, a: [(o.shape, o.dtype) for o in m.linalg.qr(a)], A(x, dt))
    q, r = rx.linalg.qr(rx.array(x, dtype=getattr(rx, dt)))
    qm, rm = REF.linalg.qr(REF.array(x, dtype=getattr(REF, dt)))
    q, r = npa(q).astype(np.float64), npa(r).astype(np.float64)
    k = min(shape[-2], shape[-1])
    at = 1e-4 if dt == "float32" else 1e-10
    np.testing.assert_allclose(q @ r, x, atol=at)
    np.testing.assert_allclose(np.swapaxes(q, -1, -2) @ q,
                               np.broadcast_to(np.eye(k), shape[:-2] + (k, k)), atol=at)
    assert np.all(np.tril(r, -1) == 0)
    # R is unique up to the sign of each row (for full column rank)
    np.testing.assert_allclose(np.abs(r), np.abs(npa(rm)), atol=at * 10)


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3), (0, 3, 3), (1, 1)])
@pytest.mark.parametrize("dt", DTYPES + ["complex64"])
def test_eig(shape, dt):
    rx = get_rmx()
    x = rand(shape, "float64", seed=24)
    if dt == "complex64":
        x = x + 1j * rand(shape, "float64", seed=25)
    xa = rx.array(x.astype(np.complex64) if dt == "complex64" else x, dtype=getattr(rx, dt))
    w, v = rx.linalg.eig(xa)
    w2 = rx.linalg.eigvals(xa)
    wm = REF.linalg.eigvals(REF.array(x.astype(np.complex64) if dt == "complex64" else x,
                                      dtype=getattr(REF, dt)))
    assert w.dtype == rx.complex64 and v.dtype == rx.complex64 and w2.dtype == rx.complex64
    assert w.shape == wm.shape and v.shape == shape
    key = lambda z: np.sort_complex(np.round(z, 3))  # noqa: E731
    ref = np.linalg.eigvals(x)
    for got in (npa(w), npa(w2), npa(wm)):
        np.testing.assert_allclose(key(got), key(ref), atol=2e-3)
    w, v = npa(w).astype(np.complex128), npa(v).astype(np.complex128)
    np.testing.assert_allclose(x @ v, v * w[..., None, :], atol=1e-4)
    if v.size:
        np.testing.assert_allclose(np.linalg.norm(v, axis=-2), 1.0, atol=1e-4)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 4, 3), (0, 3, 3)])
@pytest.mark.parametrize("dt", DTYPES)
def test_lu(shape, dt):
    x = rand(shape, "float64", seed=26)
    # partial pivoting has a unique result without ties: compare everything with MLX
    check(lambda m, a: m.linalg.lu_factor(a), A(x, dt), **tol(dt, 10))
    check(lambda m, a: m.linalg.lu(a), A(x, dt), **tol(dt, 10))
    rx = get_rmx()
    p, l, u = rx.linalg.lu(rx.array(x, dtype=getattr(rx, dt)))
    recon = np.take_along_axis(npa(l).astype(np.float64), npa(p)[..., None].astype(np.int64), -2) @ npa(u)
    np.testing.assert_allclose(recon, x, atol=1e-4 if dt == "float32" else 1e-10)


def test_lu_singular():
    check(lambda m, a: m.linalg.lu_factor(a), A(np.array([[0.0, 1.0], [0.0, 2.0]])))
    check(lambda m, a: m.linalg.lu(a), A(np.array([[1.0, 2.0], [2.0, 4.0]])))


def test_views():
    # transposed and strided inputs are read in place
    x = general((5, 5), 27)
    check(lambda m, a: m.linalg.inv(a.T), A(x), np_fn=lambda a: np.linalg.inv(a.T), **TOL32)
    check(lambda m, a: m.linalg.det(a[::2, ::2]), A(x), np_fn=lambda a: np.linalg.det(a[::2, ::2]),
          **TOL32)
    check(lambda m, a: m.linalg.svd(a[:, ::-1], compute_uv=False), A(x), **TOL32)
    check(lambda m, a: m.linalg.solve(a.T, a[0]), A(x),
          np_fn=lambda a: np.linalg.solve(a.T, a[0]), **TOL32)


# ---------------------------------------------------------------------------- norm, cross

ORDS_VEC = [None, 0, 1, 2, 3, 0.5, -1, -3, float("inf"), -float("inf")]
ORDS_MAT = [None, "fro", "nuc", 1, -1, 2, -2, float("inf"), -float("inf")]


def np_norm(ord, axis=None, keepdims=False):
    def f(a):
        if axis is None and ord is None:
            r = np.sqrt(np.sum(np.abs(a) ** 2))
            return r.reshape((1,) * a.ndim) if keepdims else r
        return np.linalg.norm(a, ord=ord, axis=axis, keepdims=keepdims)
    return f


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("ord", ORDS_VEC)
def test_norm_vector(ord, keepdims):
    x = A(rand((6,), "float32", seed=28))
    check(lambda m, a: m.linalg.norm(a, ord, keepdims=keepdims), x,
          np_fn=np_norm(ord, keepdims=keepdims), rtol=1e-5, atol=1e-6)
    y = A(rand((3, 4, 5), "float32", seed=29))
    for axis in (0, -1, 1):
        check(lambda m, a: m.linalg.norm(a, ord, axis=axis, keepdims=keepdims), y,
              np_fn=np_norm(ord, axis, keepdims), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("ord", ORDS_MAT)
def test_norm_matrix(ord, keepdims):
    x = A(rand((4, 5), "float32", seed=30))
    check(lambda m, a: m.linalg.norm(a, ord, keepdims=keepdims), x,
          np_fn=np_norm(ord, keepdims=keepdims), rtol=1e-4, atol=1e-5)
    y = A(rand((3, 4, 5), "float32", seed=31))
    for axis in [(1, 2), (2, 0), (-1, -3), (0, 1)]:
        check(lambda m, a: m.linalg.norm(a, ord, axis=axis, keepdims=keepdims), y,
              np_fn=np_norm(ord, axis, keepdims), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dt", ["int32", "float16", "float64", "complex64", "bool_"])
def test_norm_dtypes(dt):
    x = A(rand((3, 4), dt, seed=32), dt)
    for ord in [None, 1, 3, float("inf"), 0]:
        check(lambda m, a: m.linalg.norm(a, ord, axis=-1), x, rtol=1e-3, atol=1e-3)
    for ord in [None, "fro", 1, float("inf")]:
        check(lambda m, a: m.linalg.norm(a, ord), x, rtol=1e-3, atol=1e-3)
    check(lambda m, a: m.matrix_norm(a), x, rtol=1e-3, atol=1e-3)


def test_norm_misc():
    x = A(rand((2, 3, 4), "float32", seed=33))
    check(lambda m, a: m.linalg.norm(a), x, rtol=1e-5)
    check(lambda m, a: m.linalg.norm(a, keepdims=True), x, rtol=1e-5)
    check(lambda m, a: m.linalg.norm(a, axis=(0, 2)), x, rtol=1e-5)
    check(lambda m, a: m.linalg.norm(a, 1, axis=(1, 1)), x, rtol=1e-5)
    check(lambda m, a: m.linalg.norm(a, 2, axis=(1, 2)), x, rtol=1e-4)
    check(lambda m, a: m.linalg.norm(a), A(np.array(3.0)))
    check(lambda m, a: m.linalg.norm(a), A(np.zeros((0, 3))))
    check(lambda m, a: m.linalg.norm(a, 2, axis=[-1]), A(np.array([[3.0, 4.0]])))
    assert get_rmx().matrix_norm is get_rmx().linalg.norm


@pytest.mark.parametrize("case", [
    dict(ord=2), dict(ord="fro"), dict(ord="fro", axis=1), dict(ord="abc", axis=(1, 2)),
    dict(ord=3, axis=(1, 2)), dict(ord=0, axis=(1, 2)), dict(axis=(0, 1, 2)),
    dict(ord=1, axis=(0, 1, 2)), dict(axis=5), dict(ord=1, axis=5), dict(axis=(1, 1)),
])
def test_norm_errors(case):
    check_raises(lambda m, a: m.linalg.norm(a, **case), A(rand((2, 3, 4), "float32", seed=34)))


def test_norm_errors_more():
    check_raises(lambda m, a: m.linalg.norm(a, 1), A(np.array(3.0)), err=ValueError)
    check_raises(lambda m, a: m.linalg.norm(a, 2), A(np.eye(2, dtype=np.int32)), err=ValueError)
    check_raises(lambda m, a: m.linalg.norm(a, float("inf")), A(np.zeros((0, 3))), err=ValueError)


@pytest.mark.parametrize("shapes,axis", [
    (((3,), (3,)), -1), (((4, 3), (4, 3)), -1), (((3, 4), (3, 4)), 0), (((2,), (3,)), -1),
    (((2,), (2,)), -1), (((1, 3), (5, 3)), -1), (((3,), (2, 3)), -1), (((2, 3, 2), (2, 3, 2)), -2),
])
def test_cross(shapes, axis):
    a = A(rand(shapes[0], "float32", seed=35))
    b = A(rand(shapes[1], "float32", seed=36))

    def ref(x, y):
        return np.cross(x, y, axis=axis) if x.shape[axis] == y.shape[axis] == 3 or True else None
    np_fn = ref if shapes[0][axis] == 3 and shapes[1][axis] == 3 else None
    check(lambda m, x, y: m.linalg.cross(x, y, axis=axis), a, b, np_fn=np_fn, rtol=1e-5, atol=1e-6)


def test_cross_errors_and_dtypes():
    check(lambda m, x, y: m.linalg.cross(x, y), A(np.arange(3), "int32"), A(np.ones(3)))
    check(lambda m, x, y: m.linalg.cross(x, y), A(np.arange(3), "int32"), A(np.arange(3, 6), "int32"))
    for sa, sb, axis in [((4,), (4,), -1), ((1,), (1,), -1), ((3,), (3,), 1), ((3,), (3,), -2),
                         ((2, 3), (3, 3), -1)]:
        check_raises(lambda m, x, y: m.linalg.cross(x, y, axis=axis), A(np.ones(sa)), A(np.ones(sb)))


# ---------------------------------------------------------------------------- errors

ONE_INPUT = ["inv", "tri_inv", "cholesky", "cholesky_inv", "qr", "svd", "eigh", "eigvalsh",
             "eig", "eigvals", "lu", "lu_factor", "pinv", "det", "slogdet"]


@pytest.mark.parametrize("name", ONE_INPUT)
def test_errors(name):
    f = lambda m, a: getattr(m.linalg, name)(a)  # noqa: E731

    def meta(m, a):
        # which dtypes are accepted and what comes out (values are tested above)
        r = f(m, a)
        return [(o.shape, o.dtype) for o in (r if isinstance(r, tuple) else (r,))]
    sq = spd((3, 3), 37)
    for dt in ["float16", "int32", "complex64", "bfloat16"]:
        check(meta, A(sq.astype(np.complex64) if dt == "complex64" else sq, dt))
    check_raises(f, A(np.ones(3)), err=ValueError)
    check_raises(f, A(np.array(1.0)), err=ValueError)
    check_raises(f, A(np.ones(3, dtype=np.int32)), err=ValueError)
    check(f, A(rand((3, 4), "float32", seed=38)), rtol=1e-3, atol=1e-4) if name in (
        "qr", "svd", "lu", "lu_factor", "pinv") else check_raises(
        f, A(rand((3, 4), "float32", seed=38)), err=ValueError)


@pytest.mark.parametrize("name", ["inv", "tri_inv", "cholesky_inv"])
def test_singular_raises(name):
    check_raises(lambda m, a: getattr(m.linalg, name)(a), A(np.zeros((3, 3))), err=RuntimeError)
    check_raises(lambda m, a: getattr(m.linalg, name)(a), A(np.zeros((2, 3, 3))),
                 err=RuntimeError)


@pytest.mark.parametrize("name", ["solve", "solve_triangular"])
def test_solve_errors(name):
    f = lambda m, a, b: getattr(m.linalg, name)(a, b)  # noqa: E731
    sq = general((3, 3), 39)
    check_raises(f, A(np.zeros((3, 3))), A(np.ones((3, 2))), err=RuntimeError)
    check_raises(f, A(sq, "float16"), A(np.ones((3, 2)), "float16"), err=ValueError)
    check_raises(f, A(np.eye(3, dtype=np.int32)), A(np.ones((3, 2), np.int32)), err=ValueError)
    check_raises(f, A(np.ones(3)), A(np.ones((3, 2))), err=ValueError)
    check_raises(f, A(sq), A(np.array(1.0)), err=ValueError)
    check_raises(f, A(np.ones((3, 4))), A(np.ones((3, 2))), err=ValueError)
    check_raises(f, A(sq), A(np.ones((4, 2))), err=ValueError)
    check_raises(f, A(sq), A(np.ones(4)), err=ValueError)
    check_raises(f, A(np.stack([sq, sq])), A(np.ones((2, 3))), err=ValueError)
    check_raises(f, A(np.stack([sq, sq])), A(np.ones((3, 3, 2))), err=ValueError)


@rmx_only
def test_cholesky_not_positive_definite_raises():
    # MLX documents this as undefined (it returns LAPACK's partial factor); rmx raises
    rx = get_rmx()
    with pytest.raises(RuntimeError):
        rx.eval(rx.linalg.cholesky(rx.array([[1.0, 2.0], [2.0, 1.0]])))


@rmx_only
def test_zero_size_matrices():
    # MLX 0.32.4 crashes (SIGFPE) on 0x0 inverses/LU; rmx returns empty results
    rx = get_rmx()
    z = rx.zeros((0, 0))
    for f in (rx.linalg.inv, rx.linalg.tri_inv, rx.linalg.cholesky_inv):
        assert f(z).shape == (0, 0)
    lu, piv = rx.linalg.lu_factor(z)
    assert lu.shape == (0, 0) and piv.shape == (0,)
    assert rx.linalg.det(z).item() == 1.0
    assert rx.linalg.solve(z, rx.zeros((0, 2))).shape == (0, 2)


# ---------------------------------------------------------------------------- derivatives

def fd_grad(f, x, eps=1e-6):
    """Central finite differences of a scalar NumPy function."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        g[idx] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def rx_scalar(fn):
    """A float64 NumPy -> float function through rmx."""
    rx = get_rmx()
    return lambda x: float(fn(rx, rx.array(x, dtype=rx.float64)).item())


def weights(shape, seed):
    return rand(shape, "float64", seed=seed)


def grad_check(loss, x, rtol=1e-5, atol=1e-6):
    rx = get_rmx()
    g = rx.grad(lambda a: loss(rx, a))(rx.array(x, dtype=rx.float64))
    np.testing.assert_allclose(npa(g), fd_grad(rx_scalar(loss), x), rtol=rtol, atol=atol)
    # jvp along a random direction equals the directional derivative
    d = weights(x.shape, 99)
    _, (t,) = rx.jvp(lambda a: loss(rx, a), [rx.array(x, dtype=rx.float64)],
                     [rx.array(d, dtype=rx.float64)])
    np.testing.assert_allclose(float(t.item()), float(np.sum(npa(g) * d)), rtol=1e-6, atol=1e-8)


def test_grad_inv():
    x = general((3, 3), 40)
    w = weights((3, 3), 41)
    grad_check(lambda m, a: (m.linalg.inv(a) * m.array(w)).sum(), x)


@pytest.mark.parametrize("upper", [False, True])
def test_grad_tri_inv(upper):
    x = general((3, 3), 42)
    w = weights((3, 3), 43)
    grad_check(lambda m, a: (m.linalg.tri_inv(a, upper=upper) * m.array(w)).sum(), x)


@pytest.mark.parametrize("upper", [False, True])
def test_grad_cholesky(upper):
    x = spd((4, 4), 44)
    w = weights((4, 4), 45)
    grad_check(lambda m, a: (m.linalg.cholesky(a, upper=upper) * m.array(w)).sum(), x)
    grad_check(lambda m, a: (m.linalg.cholesky_inv(m.linalg.cholesky(a, upper=upper),
                                                   upper=upper) * m.array(w)).sum(), x,
               rtol=1e-4)


@pytest.mark.parametrize("uplo", ["L", "U"])
def test_grad_eigh(uplo):
    x = spd((4, 4), 46) - 4 * np.eye(4)
    w = weights((4,), 47)
    c = weights((4,), 48)
    mw = weights((4, 4), 49)
    grad_check(lambda m, a: (m.linalg.eigvalsh(a, UPLO=uplo) * m.array(w)).sum(), x)

    def vec_loss(m, a):
        # sign-free in each eigenvector: sum(M * V diag(c) V^T)
        vals, v = m.linalg.eigh(a, UPLO=uplo)
        return ((v * m.array(c)) @ v.T * m.array(mw)).sum() + (vals * m.array(w)).sum()
    grad_check(vec_loss, x, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_grad_svd(shape):
    x = rand(shape, "float64", seed=50)
    k = min(shape)
    w = weights((k,), 51)
    c = weights((k,), 52)
    mw = weights(shape, 53)
    grad_check(lambda m, a: (m.linalg.svd(a, compute_uv=False) * m.array(w)).sum(), x)
    grad_check(lambda m, a: (m.linalg.svd(a)[1] * m.array(w)).sum(), x)

    def uv_loss(m, a):
        # sign-free: sum(M * U[:, :k] diag(c) Vt[:k]) (u_i, v_i flip together)
        u, s, vt = m.linalg.svd(a)
        return ((u[:, :k] * m.array(c)) @ vt[:k] * m.array(mw)).sum()
    rx = get_rmx()
    g = rx.grad(lambda a: uv_loss(rx, a))(rx.array(x, dtype=rx.float64))
    np.testing.assert_allclose(npa(g), fd_grad(rx_scalar(uv_loss), x), rtol=1e-4, atol=1e-6)


def test_grad_solve():
    a = general((3, 3), 54)
    b = rand((3, 2), "float64", seed=55)
    w = weights((3, 2), 56)
    grad_check(lambda m, x: (m.linalg.solve(x, m.array(b)) * m.array(w)).sum(), a)
    grad_check(lambda m, y: (m.linalg.solve(m.array(a), y) * m.array(w)).sum(), b)
    # MLX has the b cotangent (its solve is LU + triangular solves)
    check(lambda m, x, y: m.grad(lambda q: (m.linalg.solve(x, q) * m.array(w)).sum())(y),
          A(a), A(b), **TOL32)


@pytest.mark.parametrize("upper", [False, True])
def test_grad_solve_triangular(upper):
    a = general((3, 3), 57)
    b = rand((3, 2), "float64", seed=58)
    w = weights((3, 2), 59)
    grad_check(lambda m, x: (m.linalg.solve_triangular(x, m.array(b), upper=upper)
                             * m.array(w)).sum(), a)
    grad_check(lambda m, y: (m.linalg.solve_triangular(m.array(a), y, upper=upper)
                             * m.array(w)).sum(), b)
    check(lambda m, x, y: m.grad(
        lambda q: (m.linalg.solve_triangular(x, q, upper=upper) * m.array(w)).sum())(y),
        A(a), A(b), **TOL32)


def test_grad_det_slogdet_vs_mlx():
    x = general((3, 3), 60)
    grad_check(lambda m, a: m.linalg.det(a), x)
    grad_check(lambda m, a: m.linalg.slogdet(a)[1], x)
    xs = A(general((2, 3, 3), 61))
    check(lambda m, a: m.grad(lambda q: m.linalg.det(q).sum())(a), xs, **TOL32)
    check(lambda m, a: m.grad(lambda q: m.linalg.slogdet(q)[1].sum())(a), xs, **TOL32)
    check(lambda m, a: m.jvp(lambda q: m.linalg.det(q), [a], [a])[1], xs, rtol=1e-4)
    check(lambda m, a: m.jvp(lambda q: m.linalg.slogdet(q), [a], [a])[1], xs, rtol=1e-4)


def test_grad_pinv_and_norms():
    x = rand((3, 4), "float64", seed=62)
    w = weights((4, 3), 63)
    grad_check(lambda m, a: (m.linalg.pinv(a) * m.array(w)).sum(), x, rtol=1e-4)
    grad_check(lambda m, a: m.linalg.norm(a, "nuc"), x, rtol=1e-4)
    grad_check(lambda m, a: m.linalg.norm(a, 2), x, rtol=1e-4)


def test_no_vjp_where_mlx_has_none():
    # eig and LU have no derivative in MLX 0.32.4 either
    for name in ("eigvals", "lu_factor"):
        check_raises(lambda m, a: m.grad(
            lambda q: m.real(getattr(m.linalg, name)(q)[0]).sum())(a),
            A(general((3, 3), 64)), err=ValueError)


# ---------------------------------------------------------------------------- vmap

VMAP_FNS = {
    "inv": lambda m, a: m.linalg.inv(a),
    "tri_inv": lambda m, a: m.linalg.tri_inv(a, upper=True),
    "cholesky": lambda m, a: m.linalg.cholesky(a @ m.swapaxes(a, -1, -2) + 4 * m.eye(4)),
    "eigvalsh": lambda m, a: m.linalg.eigvalsh(a + m.swapaxes(a, -1, -2)),
    "svd_s": lambda m, a: m.linalg.svd(a, compute_uv=False),
    "det": lambda m, a: m.linalg.det(a),
    "slogdet": lambda m, a: m.linalg.slogdet(a)[1],
    "pinv": lambda m, a: m.linalg.pinv(a),
    "qr_r_abs": lambda m, a: m.abs(m.linalg.qr(a)[1]),
    "lu_p": lambda m, a: m.linalg.lu_factor(a)[1],
    "norm2": lambda m, a: m.linalg.norm(a, 2),
}


@pytest.mark.parametrize("in_axis", [0, 2])
@pytest.mark.parametrize("name", sorted(VMAP_FNS))
def test_vmap_matches_loop(name, in_axis):
    rx = get_rmx()
    f = VMAP_FNS[name]
    x = general((3, 4, 4), 65)
    x = np.moveaxis(x, 0, in_axis)
    xa = rx.array(x, dtype=rx.float32)
    got = rx.vmap(lambda a: f(rx, a), in_axes=in_axis)(xa)
    loop = rx.stack([f(rx, xa[(slice(None),) * in_axis + (i,)]) for i in range(3)])
    np.testing.assert_allclose(npa(got), npa(loop), rtol=1e-5, atol=1e-5)


def test_vmap_solve():
    rx = get_rmx()
    a = general((3, 4, 4), 66)
    b = rand((4, 2), "float64", seed=67)
    got = rx.vmap(lambda x, y: rx.linalg.solve(x, y), in_axes=(0, None))(rx.array(a), rx.array(b))
    np.testing.assert_allclose(npa(got), np.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
    got = rx.vmap(lambda x, y: rx.linalg.solve_triangular(x, y), in_axes=(None, 1))(
        rx.array(a[0]), rx.array(rand((4, 3), "float64", seed=68)))
    ref = np.linalg.solve(np.tril(a[0]), rand((4, 3), "float64", seed=68)).T
    np.testing.assert_allclose(npa(got), ref, rtol=1e-4, atol=1e-5)


def test_vmap_vs_mlx():
    # MLX 0.32.4 has no vmap for det/slogdet beyond 3x3 (LUF); those are tested against a loop
    x = A(general((3, 4, 4), 69), "float32")
    for name in ("inv", "eigvalsh", "svd_s"):
        check(lambda m, a: m.vmap(lambda q: VMAP_FNS[name](m, q))(a), x, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------- multivariate_normal

def cov_matrix(n=3, seed=70):
    b = rand((n, n), "float64", seed=seed)
    return (b @ b.T + np.eye(n)).astype(np.float32)


def test_multivariate_normal_same_key_as_mlx():
    # U sqrt(S) Vt is the symmetric square root whatever the SVD's signs, so the samples
    # agree with MLX's up to float32 rounding of the two SVDs
    cov = cov_matrix()
    for shape in ([], [4], [2, 5]):
        check(lambda m, mu, c: m.random.multivariate_normal(mu, c, shape=shape,
                                                            key=m.random.key(3)),
              A(np.array([1.0, 2.0, 3.0])), A(cov), rtol=1e-4, atol=1e-4)
    check(lambda m, mu, c: m.random.multivariate_normal(mu, c, key=m.random.key(5)),
          A(np.zeros((2, 3))), A(np.stack([cov, 2 * cov])), rtol=1e-4, atol=1e-4)
    check(lambda m, mu, c: m.random.multivariate_normal(mu, c, shape=[4, 2],
                                                        key=m.random.key(6)),
          A(np.zeros((2, 3))), A(np.stack([cov, cov])), rtol=1e-4, atol=1e-4)
    # dtype rules: float64 mean promotes, float64/int cov is cast to float32
    for md, cd in [("float64", "float32"), ("float32", "float64"), ("int32", "float32")]:
        check(lambda m, mu, c: m.random.multivariate_normal(mu, c, key=m.random.key(7)),
              A(np.array([1, 2, 3]), md), A(cov, cd), rtol=1e-4, atol=1e-4)
    check(lambda m, mu, c: m.random.multivariate_normal(mu, c, key=m.random.key(8)),
          A(np.zeros((0, 3))), A(cov))


def test_multivariate_normal_errors():
    cov = cov_matrix()
    mvn = lambda **kw: (lambda m, mu, c: m.random.multivariate_normal(  # noqa: E731
        mu, c, key=m.random.key(0), **kw))
    three = A(np.zeros(3))
    check_raises(mvn(dtype=None) if False else (
        lambda m, mu, c: m.random.multivariate_normal(mu, c, dtype=m.float64, key=m.random.key(0))),
        three, A(cov), err=ValueError)
    check_raises(lambda m, mu, c: m.random.multivariate_normal(
        mu, c, dtype=m.float16, key=m.random.key(0)), three, A(cov), err=ValueError)
    check_raises(mvn(), A(np.array(1.0)), A(cov), err=ValueError)
    check_raises(mvn(), three, A(np.ones(3)), err=ValueError)
    check_raises(mvn(), three, A(np.ones((3, 4))), err=ValueError)
    check_raises(mvn(), A(np.zeros(4)), A(cov), err=ValueError)
    check_raises(mvn(shape=[3]), A(np.zeros((2, 3))), A(cov), err=ValueError)
    check_raises(mvn(), A(np.zeros((2, 3))), A(np.stack([cov] * 3)), err=ValueError)


def test_multivariate_normal_moments():
    rx = get_rmx()
    cov = cov_matrix(seed=71)
    mean = np.array([1.0, -2.0, 0.5], np.float32)
    x = npa(rx.random.multivariate_normal(rx.array(mean), rx.array(cov), shape=[20000],
                                          key=rx.random.key(1))).astype(np.float64)
    np.testing.assert_allclose(x.mean(0), mean, atol=0.06)
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.05, atol=0.06)
    # implicit key: two calls differ
    a = npa(rx.random.multivariate_normal(rx.array(mean), rx.array(cov)))
    b = npa(rx.random.multivariate_normal(rx.array(mean), rx.array(cov)))
    assert not np.array_equal(a, b)
