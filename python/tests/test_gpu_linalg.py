"""Linear algebra on the GPU (cuSOLVER, cuBLAS trsm) against the CPU backend.

Skips where no GPU backend is available (CI has no GPU); see test_gpu.py.
"""

import numpy as np
import pytest

from gpu_util import (FLOATS, TOL, assert_close, dt, host, mx, on_gpu_natively, rand,  # noqa: F401
                      requires_gpu)

pytestmark = requires_gpu

LINALG_TOL = {"float32": (2e-4, 2e-5), "float64": (1e-10, 1e-12)}


def well_conditioned(shape, dtype, seed, symmetric=False, spd=False):
    r = np.random.default_rng(seed)
    n = shape[-1]
    a = r.uniform(-1, 1, shape)
    if symmetric or spd:
        a = a + np.swapaxes(a, -1, -2)
    if spd:
        a = a @ np.swapaxes(a, -1, -2)
    a = a + n * np.eye(n)
    return mx.array(a.astype(np.float64)).astype(dt(dtype), stream=mx.cpu)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linalg_runs_natively(dtype):
    rtol, atol = LINALG_TOL[dtype]
    a = well_conditioned((3, 6, 6), dtype, 130)
    b = rand((3, 6, 4), dtype, -1, 1, seed=131)
    spd = well_conditioned((2, 5, 5), dtype, 132, spd=True)
    sym = well_conditioned((2, 7, 7), dtype, 133, symmetric=True)
    cases = [
        lambda a, b, spd, sym, s: mx.linalg.inv(a, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.inv(a[0].T, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.solve(a, b, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.solve(a[1], b[1, :, 0], stream=s),
        lambda a, b, spd, sym, s: mx.linalg.cholesky(spd, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.cholesky(spd, upper=True, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.eigvalsh(sym, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.eigvalsh(sym, UPLO="U", stream=s),
        lambda a, b, spd, sym, s: mx.linalg.det(a, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.slogdet(-a, stream=s)[0],
        lambda a, b, spd, sym, s: mx.linalg.slogdet(-a, stream=s)[1],
        lambda a, b, spd, sym, s: mx.linalg.solve_triangular(mx.triu(a), b, upper=True, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.solve_triangular(mx.tril(a), b, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.tri_inv(mx.triu(a), upper=True, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.tri_inv(mx.tril(a), stream=s),
        lambda a, b, spd, sym, s: mx.linalg.svd(b, compute_uv=False, stream=s),
        lambda a, b, spd, sym, s: mx.linalg.svd(mx.swapaxes(b, 1, 2), compute_uv=False, stream=s),
    ]
    for i, fn in enumerate(cases):
        g = on_gpu_natively(fn, a, b, spd, sym)
        c = fn(a, b, spd, sym, mx.cpu)
        assert g.shape == c.shape and g.dtype == c.dtype, i
        np.testing.assert_allclose(np.array(g), np.array(c), rtol=rtol, atol=atol, err_msg=str(i))
    # eigenvectors: unique up to sign, so check A V = V diag(w) and |V| against the CPU
    for uplo in ["L", "U"]:
        w, v = on_gpu_natively(lambda x, s: mx.linalg.eigh(x, UPLO=uplo, stream=s), sym)
        wc, vc = mx.linalg.eigh(sym, UPLO=uplo, stream=mx.cpu)
        an, wn, vn = np.array(sym), np.array(w), np.array(v)
        np.testing.assert_allclose(wn, np.array(wc), rtol=rtol, atol=atol)
        np.testing.assert_allclose(an @ vn, vn * wn[..., None, :], rtol=rtol * 10, atol=atol * 100)
        np.testing.assert_allclose(np.abs(vn), np.abs(np.array(vc)), rtol=rtol * 10,
                                   atol=atol * 100)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 6, 4), (4, 6), (5, 5)])
def test_svd_runs_natively(dtype, shape):
    rtol, atol = LINALG_TOL[dtype]
    x = rand(shape, dtype, -1, 1, seed=134)
    u, s_, vh = on_gpu_natively(lambda x, s: mx.linalg.svd(x, stream=s), x)
    uc, sc, vhc = mx.linalg.svd(x, stream=mx.cpu)
    assert (u.shape, s_.shape, vh.shape) == (uc.shape, sc.shape, vhc.shape)
    un, sn, vn = np.array(u), np.array(s_), np.array(vh)
    np.testing.assert_allclose(sn, np.array(sc), rtol=rtol, atol=atol)
    k = sn.shape[-1]
    recon = (un[..., :, :k] * sn[..., None, :]) @ vn[..., :k, :]
    np.testing.assert_allclose(recon, np.array(x), rtol=rtol * 10, atol=atol * 100)
    eye = lambda m: np.broadcast_to(np.eye(m), un.shape[:-2] + (m, m))  # noqa: E731
    np.testing.assert_allclose(np.swapaxes(un, -1, -2) @ un, eye(un.shape[-1]), atol=atol * 100)
    np.testing.assert_allclose(vn @ np.swapaxes(vn, -1, -2), eye(vn.shape[-1]), atol=atol * 100)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 6, 4), (4, 6), (5, 5)])
def test_qr_and_lu_run_natively(dtype, shape):
    rtol, atol = LINALG_TOL[dtype]
    x = rand(shape, dtype, -1, 1, seed=135)
    xn = np.array(x)
    q, r = on_gpu_natively(lambda x, s: mx.linalg.qr(x, stream=s), x)
    qc, rc = mx.linalg.qr(x, stream=mx.cpu)
    assert (q.shape, r.shape) == (qc.shape, rc.shape)
    qn, rn = np.array(q), np.array(r)
    np.testing.assert_allclose(qn @ rn, xn, rtol=rtol * 10, atol=atol * 100)
    np.testing.assert_allclose(np.abs(rn), np.abs(np.array(rc)), rtol=rtol * 10, atol=atol * 100)
    np.testing.assert_array_equal(np.tril(rn, -1), 0)
    lu, piv = on_gpu_natively(lambda x, s: mx.linalg.lu_factor(x, stream=s), x)
    luc, pivc = mx.linalg.lu_factor(x, stream=mx.cpu)
    assert piv.dtype == pivc.dtype and lu.shape == luc.shape
    np.testing.assert_array_equal(np.array(piv), np.array(pivc))
    np.testing.assert_allclose(np.array(lu), np.array(luc), rtol=rtol, atol=atol)
    p, l, u = on_gpu_natively(lambda x, s: mx.linalg.lu(x, stream=s), x)
    pc, lc, uc = mx.linalg.lu(x, stream=mx.cpu)
    assert (p.dtype, l.shape, u.shape) == (pc.dtype, lc.shape, uc.shape)
    np.testing.assert_array_equal(np.array(p), np.array(pc))
    np.testing.assert_allclose(np.array(l), np.array(lc), rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.array(u), np.array(uc), rtol=rtol, atol=atol)


def test_linalg_errors_on_gpu():
    with pytest.raises(RuntimeError, match="singular"):
        mx.eval(mx.linalg.solve_triangular(mx.zeros((3, 3)), mx.ones((3, 2)), stream=mx.gpu))
    with pytest.raises(RuntimeError, match="singular"):
        mx.eval(mx.linalg.tri_inv(mx.triu(mx.ones((3, 3))) - mx.eye(3), stream=mx.gpu))
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        mx.eval(mx.linalg.svd(mx.full((3, 2), np.inf), stream=mx.gpu))
    g = mx.linalg.det(mx.zeros((2, 3, 3)), stream=mx.gpu)
    np.testing.assert_array_equal(np.array(g), np.zeros(2))
    with pytest.raises(RuntimeError, match="singular"):
        mx.eval(mx.linalg.inv(mx.zeros((2, 3, 3)), stream=mx.gpu))
    with pytest.raises(RuntimeError, match="singular"):
        mx.eval(mx.linalg.solve(mx.zeros((3, 3)), mx.ones((3, 2)), stream=mx.gpu))
    with pytest.raises(RuntimeError, match="positive definite"):
        mx.eval(mx.linalg.cholesky(-mx.eye(3), stream=mx.gpu))
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        mx.eval(mx.linalg.eigh(mx.full((3, 3), np.nan), stream=mx.gpu))
    # the next call is clean
    g = mx.linalg.inv(2 * mx.eye(3), stream=mx.gpu)
    np.testing.assert_allclose(np.array(g), 0.5 * np.eye(3))
