"""qqmm and gather_qqmm against MLX 0.32.4.

MLX's CPU evaluates qqmm only for one row of x against packed weights (other cases raise
"[QQMatmul] NYI", gather_qqmm always "[GatherQQMM] NYI"). rmx computes every case with the
same per-row arithmetic, so each row of an rmx product is compared bit for bit with MLX's
one-row product; a dense w must give what MLX gives for ``mx.quantize(w)``; gathered
products equal MLX's one-row products of the gathered matrices; gradients equal MLX's vjp
rule (qqmm of the cotangent) evaluated row by row with MLX. Global scales (which MLX's CPU
ignores) are compared with MLX's quantize/dequantize composition within float32 rounding.
Construction-time checks compare exception types (and messages) with MLX, and shapes and
dtypes without evaluating."""

import numpy as np
import pytest

import mlx.core as MX
from diff import check_meta, get_rmx, rmx_only, to_numpy

MODES = ["nvfp4", "mxfp8", "mxfp4"]
FLOATS = ["float32", "float16", "bfloat16"]


def data(m, k, seed):
    """Rows of mixed magnitudes plus groups that hit the e2m1 thresholds, zeros,
    tiny values and an inf/nan row."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, k)) * rng.uniform(1e-2, 100, size=(m, 1))
    x = x.astype(np.float32)
    if m >= 6:
        x[0, :32] = 0
        x[1, :16] = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -0.75, -1.25, -1.75,
                     -2.5, -3.5, -5, 6, 0]
        x[1, 16:32] = x[1, :16] * 2
        x[2] *= 1e-30
        x[3] = np.round(x[3] * 4) / 4
        x[4, :32] = np.linspace(-6, 6, 32)
        x[5, 3] = np.inf if seed % 2 else np.nan
    return x


def pair(a, dt="float32"):
    rx = get_rmx()
    return MX.array(a).astype(getattr(MX, dt)), rx.array(a).astype(getattr(rx, dt))


def npf(a):
    return to_numpy(a).astype(np.float64)


def same(a, b):
    """Equal values (nan where nan), dtypes and shapes."""
    assert str(b.dtype).split(".")[-1] == str(a.dtype).split(".")[-1]
    assert tuple(a.shape) == tuple(b.shape), (a.shape, b.shape)
    x, y = npf(a), npf(b)
    assert np.array_equal(x, y, equal_nan=True), np.argwhere(
        ~((x == y) | np.isnan(x) & np.isnan(y)))[:5]


def mlx_rows(xm, wq, s, mode, **kw):
    """MLX's product, one row at a time (the case MLX's CPU evaluates)."""
    rows = [MX.qqmm(xm[i:i + 1], wq, s, mode=mode, **kw) for i in range(xm.shape[0])]
    return MX.concatenate(rows, axis=0)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_packed_rows_bit_identical(mode, dt, seed):
    rx = get_rmx()
    xm, xr = pair(data(12, 256, seed), dt)
    wm, wr = pair(data(64, 256, seed + 10), dt)
    qm, qr = MX.quantize(wm, mode=mode), rx.quantize(wr, mode=mode)
    same(mlx_rows(xm, qm[0], qm[1], mode), rx.qqmm(xr, qr[0], qr[1], mode=mode))
    # one row, as MLX evaluates it itself; 1-d x; explicit defaults
    same(MX.qqmm(xm[1:2], *qm, mode=mode), rx.qqmm(xr[1:2], *qr, mode=mode))
    same(MX.qqmm(xm[4], *qm, mode=mode), rx.qqmm(xr[4], *qr, mode=mode))
    gs, bits = {"nvfp4": (16, 4), "mxfp8": (32, 8), "mxfp4": (32, 4)}[mode]
    same(MX.qqmm(xm[3:4], *qm, gs, bits, mode),
         rx.qqmm(xr[3:4], *qr, gs, bits, mode))


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_dense_w_is_quantized_as_mx_quantize(mode, dt):
    rx = get_rmx()
    xm, xr = pair(data(7, 128, 3), dt)
    wm, wr = pair(data(32, 128, 4), dt)
    qm = MX.quantize(wm, mode=mode)
    same(mlx_rows(xm, qm[0], qm[1], mode), rx.qqmm(xr, wr, mode=mode))


def test_default_mode_is_nvfp4_and_w_dtype_free():
    rx = get_rmx()
    xm, xr = pair(data(3, 64, 5), "float16")
    wm, wr = pair(data(16, 64, 6))
    qm = MX.quantize(wm, mode="nvfp4")
    out = rx.qqmm(xr, wr)  # f32 w with f16 x: x's dtype
    same(mlx_rows(xm, qm[0], qm[1], "nvfp4"), out)


@pytest.mark.parametrize("mode", MODES)
def test_leading_dims_and_vectors(mode):
    rx = get_rmx()
    xm, xr = pair(data(12, 64, 7).reshape(2, 3, 2, 64))
    wm, wr = pair(data(32, 64, 8))
    qm = MX.quantize(wm, mode=mode)
    got = rx.qqmm(xr, wr, mode=mode)
    assert got.shape == (2, 3, 2, 32)
    exp = mlx_rows(xm.reshape(-1, 64), qm[0], qm[1], mode).reshape(2, 3, 2, 32)
    same(exp, got)
    # shapes and dtypes MLX builds (without evaluating: MLX's CPU raises NYI)
    for shape in [(64,), (5, 64), (2, 5, 64), (0, 64)]:
        for dt in FLOATS:
            check_meta(lambda m, s=shape, d=dt: m.qqmm(
                m.zeros(s, getattr(m, d)), m.ones((32, 64)), mode=mode))


def test_single_output_column_and_empty_rows():
    rx = get_rmx()
    xm, xr = pair(data(4, 64, 9))
    wm, wr = pair(data(32, 64, 10)[:1].repeat(2, 0))
    qm = MX.quantize(wm, mode="nvfp4")
    same(mlx_rows(xm, qm[0], qm[1], "nvfp4"), rx.qqmm(xr, wr))
    e = rx.qqmm(rx.zeros((0, 64)), wr)
    assert e.shape == (0, 2) and npf(e).size == 0


def _ref_global(xm, wm, gx, gw, packed):
    """MLX's quantize/dequantize composition with global scales (float32)."""
    q = MX.quantize(xm, mode="nvfp4", global_scale=gx)
    xd = MX.dequantize(*q, mode="nvfp4", global_scale=gx, dtype=MX.float32)
    wq, ws = packed if packed is not None else MX.quantize(wm, mode="nvfp4",
                                                          global_scale=gw)
    wd = MX.dequantize(wq, ws, mode="nvfp4", global_scale=gw, dtype=MX.float32)
    return xd @ wd.T


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("g", [(1.0, 1.0), (37.0, 5.5), (0.25, 900.0)])
def test_global_scales(g, packed):
    rx = get_rmx()
    xm, xr = pair(np.random.default_rng(1).normal(size=(6, 128)).astype(np.float32))
    wm, wr = pair(np.random.default_rng(2).normal(size=(16, 128)).astype(np.float32))
    gxm, gxr = pair(np.array(g[0], np.float32))
    gwm, gwr = pair(np.array(g[1], np.float32))
    if packed:
        qm = MX.quantize(wm, mode="nvfp4", global_scale=gwm)
        qr = rx.quantize(wr, mode="nvfp4", global_scale=gwr)
        same(qm[0], qr[0])
        got = rx.qqmm(xr, qr[0], qr[1], global_scale_x=gxr, global_scale_w=gwr)
        ref = _ref_global(xm, wm, gxm, gwm, qm)
    else:
        got = rx.qqmm(xr, wr, global_scale_x=gxr, global_scale_w=gwr)
        ref = _ref_global(xm, wm, gxm, gwm, None)
    r, o = npf(ref), npf(got)
    # same codes; x's scale path differs from quantize's by float32 rounding only
    assert np.allclose(o, r, rtol=1e-5, atol=1e-5 * np.abs(r).max())
    # (1,)-shaped scales are accepted as MLX does
    got1 = rx.qqmm(xr, wr, global_scale_x=gxr.reshape(1),
                   global_scale_w=gwr.reshape(1, 1))
    same(rx.qqmm(xr, wr, global_scale_x=gxr, global_scale_w=gwr), got1)


def _err(fn):
    rx = get_rmx()
    try:
        fn(MX)
    except Exception as e:  # noqa: BLE001
        em = e
    else:
        raise AssertionError("test premise: MLX should raise")
    with pytest.raises(type(em)) as er:
        fn(rx)
    return str(er.value), str(em)


def _ops(m):
    x = m.ones((3, 64))
    w = m.ones((32, 64))
    wq, s = m.quantize(w, mode="nvfp4")
    return x, w, wq, s, m.array(2.0)


ERRORS = {
    "bad mode": lambda m: m.qqmm(*_ops(m)[:2], mode="bogus"),
    "bad mode + f64": lambda m: m.qqmm(_ops(m)[0].astype(m.float64), _ops(m)[1], mode="zz"),
    "x float64": lambda m: m.qqmm(_ops(m)[0].astype(m.float64), _ops(m)[1]),
    "x int": lambda m: m.qqmm(_ops(m)[0].astype(m.int32), _ops(m)[1]),
    "x complex": lambda m: m.qqmm(_ops(m)[0].astype(m.complex64), _ops(m)[1]),
    "w int": lambda m: m.qqmm(_ops(m)[0], _ops(m)[1].astype(m.int32)),
    "w uint8": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2].view(m.uint8), _ops(m)[3]),
    "w float64": lambda m: m.qqmm(_ops(m)[0], _ops(m)[1].astype(m.float64)),
    "w 3d": lambda m: m.qqmm(_ops(m)[0], _ops(m)[1][None]),
    "w 3d + f64 x": lambda m: m.qqmm(_ops(m)[0].astype(m.float64), _ops(m)[1][None]),
    "wq 3d": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2][None], _ops(m)[3][None]),
    "x 0d": lambda m: m.qqmm(m.array(1.0), _ops(m)[1]),
    "w 1d": lambda m: m.qqmm(_ops(m)[0], _ops(m)[1][0]),
    "wq 1d": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2][0], _ops(m)[3]),
    "no scales": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2]),
    "no scales + one gs": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2], global_scale_x=_ops(m)[4]),
    "scales shape": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2], _ops(m)[3][:, :2]),
    "K mismatch packed": lambda m: m.qqmm(_ops(m)[0][:, :32], _ops(m)[2], _ops(m)[3]),
    "K mismatch dense": lambda m: m.qqmm(m.ones((2, 3, 32)), _ops(m)[1]),
    "nvfp4 scales as mxfp8": lambda m: m.qqmm(_ops(m)[0], _ops(m)[2], _ops(m)[3], mode="mxfp8"),
    "only gx": lambda m: m.qqmm(*_ops(m)[:2], global_scale_x=_ops(m)[4]),
    "only gw": lambda m: m.qqmm(*_ops(m)[:2], global_scale_w=_ops(m)[4]),
    "gs mxfp8": lambda m: m.qqmm(*_ops(m)[:2], mode="mxfp8", global_scale_x=_ops(m)[4],
                                 global_scale_w=_ops(m)[4]),
    "gs f16": lambda m: m.qqmm(*_ops(m)[:2], global_scale_x=_ops(m)[4].astype(m.float16),
                               global_scale_w=_ops(m)[4]),
    "gs int": lambda m: m.qqmm(*_ops(m)[:2], global_scale_x=m.array(1),
                               global_scale_w=_ops(m)[4]),
    "gs shape": lambda m: m.qqmm(*_ops(m)[:2], global_scale_x=_ops(m)[4],
                                 global_scale_w=m.array([1.0, 2.0])),
    "gs shape f64": lambda m: m.qqmm(*_ops(m)[:2], global_scale_x=m.array([1.0, 2.0], m.float64),
                                     global_scale_w=_ops(m)[4]),
    "gs empty": lambda m: m.qqmm(*_ops(m)[:2], global_scale_x=m.zeros((0,)),
                                 global_scale_w=_ops(m)[4]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(case):
    got, exp = _err(ERRORS[case])
    assert got == exp


GATHER_ERRORS = {
    "bad mode": lambda m: m.gather_qqmm(m.ones((2, 1, 64)), m.ones((4, 32, 64)), mode="zz",
                                        rhs_indices=m.array([0, 1])),
    "float indices": lambda m: m.gather_qqmm(m.ones((2, 1, 64)), m.ones((4, 32, 64)),
                                             rhs_indices=m.array([0.0, 1.0])),
    "x 1d": lambda m: m.gather_qqmm(m.ones((64,)), m.ones((4, 32, 64)),
                                    rhs_indices=m.array([0, 1])),
    "w 1d": lambda m: m.gather_qqmm(m.ones((2, 1, 64)), m.ones((64,)),
                                    rhs_indices=m.array([0, 1])),
    "index shapes": lambda m: m.gather_qqmm(m.ones((5, 1, 64)), m.ones((4, 32, 64)),
                                            rhs_indices=m.array([0, 1])),
    "K mismatch dense": lambda m: m.gather_qqmm(m.ones((2, 1, 32)), m.ones((4, 32, 64)),
                                                rhs_indices=m.array([0, 1])),
    "K mismatch packed": lambda m: m.gather_qqmm(
        m.ones((2, 1, 32)), *m.quantize(m.ones((4, 32, 64)), mode="nvfp4"),
        rhs_indices=m.array([0, 1])),
}


@pytest.mark.parametrize("case", list(GATHER_ERRORS))
def test_gather_errors(case):
    got, exp = _err(GATHER_ERRORS[case])
    assert got == exp


def _gather_ref(xm, wm, lhs, rhs, mode, packed):
    """MLX one-row products of the gathered matrices, stacked as gather_qqmm's output."""
    xs = xm.reshape(-1, *xm.shape[-2:])
    ws = wm.reshape(-1, *wm.shape[-2:])
    qs = MX.quantize(ws, mode=mode) if not packed else None
    lhs = np.broadcast_to(np.arange(xs.shape[0]) if lhs is None else lhs,
                          np.broadcast_shapes(*(np.shape(i) for i in (lhs, rhs)
                                                if i is not None)))
    rhs = np.broadcast_to(rhs, lhs.shape)
    outs = []
    for a, b in zip(lhs.ravel(), rhs.ravel()):
        wq, s = qs[0][int(b)], qs[1][int(b)]
        outs.append(mlx_rows(xs[int(a)], wq, s, mode))
    return MX.stack(outs).reshape(*lhs.shape, *outs[0].shape)


@pytest.mark.parametrize("sorted_", [False, True])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_gather_qqmm(mode, packed, sorted_):
    rx = get_rmx()
    xm, xr = pair(data(10, 64, 12).reshape(5, 2, 64))
    wm, wr = pair(data(4 * 32, 64, 13).reshape(4, 32, 64))
    rhs = np.array([0, 3, 1, 3, 2, 2])
    lhs = np.array([4, 0, 1, 1, 3, 2])
    if sorted_:
        rhs = np.sort(rhs)
    w_args_r = rx.quantize(wr, mode=mode) if packed else [wr]
    got = rx.gather_qqmm(xr, *w_args_r, lhs_indices=rx.array(lhs), rhs_indices=rx.array(rhs),
                         mode=mode, sorted_indices=sorted_)
    same(_gather_ref(xm, wm, lhs, rhs, mode, False), got)
    # rhs only, broadcasting x's batch against a 2-d index
    x1m, x1r = pair(data(6, 64, 14).reshape(6, 1, 64))
    rhs2 = np.array([[0], [3], [1]])
    got = rx.gather_qqmm(x1r[:1], *w_args_r, rhs_indices=rx.array(rhs2), mode=mode)
    same(_gather_ref(x1m[:1], wm, None, rhs2, mode, False), got)
    # shapes and dtypes MLX builds
    check_meta(lambda m: m.gather_qqmm(m.ones((5, 3, 64), m.bfloat16), m.ones((4, 32, 64)),
                                       rhs_indices=m.array([[1], [2]]), mode=mode))
    check_meta(lambda m: m.gather_qqmm(m.ones((2, 4, 1, 64)), m.ones((4, 32, 64)), mode=mode))


def test_gather_without_indices_is_batched_qqmm():
    rx = get_rmx()
    xm, xr = pair(data(8, 64, 15).reshape(2, 4, 1, 64))
    wm, wr = pair(data(4 * 32, 64, 16).reshape(4, 32, 64))
    got = rx.gather_qqmm(xr, wr)
    assert got.shape == (2, 4, 1, 32)
    qm = MX.quantize(wm, mode="nvfp4")
    for i in range(2):
        for j in range(4):
            same(MX.qqmm(xm[i, j], qm[0][j], qm[1][j]), got[i, j])


@pytest.mark.parametrize("dt", ["float32", "bfloat16"])
@pytest.mark.parametrize("mode", MODES)
def test_vjp_is_mlx_rule(mode, dt):
    """dx = qqmm(ct, w.T), dw = qqmm(ct.T, x.T): MLX's rule, evaluated row by row with
    MLX (its one-row case); the dense transposed operands are quantized as mx.quantize."""
    rx = get_rmx()
    # finite data: quantize's inf groups (of the transposed x) are quantize's business
    xm, xr = pair(np.nan_to_num(data(32, 64, 17), posinf=7.0), dt)
    wm, wr = pair(np.nan_to_num(data(32, 64, 18)), dt)
    cm, cr = pair(np.random.default_rng(3).normal(size=(32, 32)).astype(np.float32), dt)
    out, (dx, dw) = rx.vjp(lambda x, w: rx.qqmm(x, w, mode=mode), [xr, wr], [cr])
    qt = MX.quantize(wm.T, mode=mode)
    same(mlx_rows(cm, qt[0], qt[1], mode), dx[0] if isinstance(dx, list) else dx)
    qx = MX.quantize(xm.T, mode=mode)
    same(mlx_rows(cm.T, qx[0], qx[1], mode), dw)
    # grad through a sum
    g = rx.grad(lambda x: rx.qqmm(x, wr, mode=mode).sum())(xr)
    ones = MX.ones((32, 32), getattr(MX, dt))
    same(mlx_rows(ones, qt[0], qt[1], mode), g)


def test_vjp_global_scales():
    """With global scales MLX's rule uses max|ct| as the cotangent's global scale and the
    other operand's; compared with MLX's quantize/dequantize composition."""
    rx = get_rmx()
    rng = np.random.default_rng(4)
    xm, xr = pair(rng.normal(size=(16, 64)).astype(np.float32))
    wm, wr = pair(rng.normal(size=(32, 64)).astype(np.float32))
    cm, cr = pair(rng.normal(size=(16, 32)).astype(np.float32))
    gxm, gxr = pair(np.array(3.0, np.float32))
    gwm, gwr = pair(np.array(7.0, np.float32))
    _, (dx, dw) = rx.vjp(lambda x, w: rx.qqmm(x, w, global_scale_x=gxr, global_scale_w=gwr),
                         [xr, wr], [cr])
    gc = MX.abs(cm).max()
    for got, ref in [(dx, _ref_global(cm, wm.T, gc, gwm, None)),
                     (dw, _ref_global(cm.T, xm.T, gc, gxm, None))]:
        r, o = npf(ref), npf(got)
        assert np.allclose(o, r, rtol=1e-5, atol=1e-5 * np.abs(r).max())


GRAD_CASES = {
    # MLX's vjp builds qqmm(ct, w_packed.T) without scales: ValueError
    "dx with packed w": lambda m: m.grad(lambda x: m.qqmm(x, *_ops(m)[2:4]).sum())(
        m.ones((1, 64))),
    "d scales": lambda m: m.grad(lambda s: m.qqmm(m.ones((1, 64)), _ops(m)[2], s).sum())(
        _ops(m)[3]),
    "d global scale": lambda m: m.grad(lambda g: m.qqmm(
        m.ones((1, 64)), *_ops(m)[2:4], global_scale_x=g, global_scale_w=g).sum())(
        m.array(3.0)),
    "jvp": lambda m: m.jvp(lambda x: m.qqmm(x, *_ops(m)[2:4]), [m.ones((1, 64))],
                           [m.ones((1, 64))]),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_grad_cases(case):
    rx = get_rmx()
    fn = GRAD_CASES[case]
    try:
        exp, eerr = fn(MX), None
    except Exception as e:  # noqa: BLE001
        exp, eerr = None, e
    if eerr is not None:
        with pytest.raises(type(eerr)) as er:
            fn(rx)
        assert str(er.value) == str(eerr)
    else:
        same(exp, fn(rx))


@rmx_only
def test_vmap_beyond_mlx():
    """MLX has no vmap for qqmm; rmx's equals the per-entry products."""
    rx = get_rmx()
    xr = rx.array(data(12, 64, 19).reshape(3, 4, 64))
    wr = rx.array(data(3 * 32, 64, 20).reshape(3, 32, 64))
    q = rx.quantize(wr[0], mode="nvfp4")
    y = rx.vmap(lambda x: rx.qqmm(x, *q))(xr)
    for i in range(3):
        same(rx.qqmm(xr[i], *q), y[i])
    y = rx.vmap(lambda x, w: rx.qqmm(x, w), in_axes=(1, 0))(xr.swapaxes(0, 1), wr)
    for i in range(3):
        same(rx.qqmm(xr[i], wr[i]), y[i])


@rmx_only
def test_gather_grad_beyond_mlx():
    """MLX has no vjp for GatherQQMM; rmx's is the gathered qqmm rule."""
    rx = get_rmx()
    xr = rx.array(data(4 * 32, 64, 21).reshape(4, 32, 64))
    wr = rx.array(data(3 * 32, 64, 22).reshape(3, 32, 64))
    idx = rx.array([2, 0, 2, 1])
    gx, gw = rx.grad(lambda x, w: rx.gather_qqmm(x, w, rhs_indices=idx).sum(),
                     argnums=(0, 1))(xr, wr)
    ones = rx.ones((32, 32))
    for i, e in enumerate([2, 0, 2, 1]):
        same(rx.qqmm(ones, wr[e].T), gx[i])
    exp = [sum(rx.qqmm(ones.T, xr[i].T) for i, e in enumerate([2, 0, 2, 1]) if e == j)
           for j in range(3)]
    for j in range(3):
        same(exp[j], gw[j])
