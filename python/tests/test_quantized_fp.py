"""quantize, dequantize, quantized_matmul, gather_qmm in the fp modes (mxfp4, mxfp8, nvfp4)
against MLX 0.32.4: packed words, e8m0/e4m3 scales and dequantized values bit for bit
(special groups: zeros, ties between codes, inf/nan, tiny and huge values), products bit
for bit (MLX's CPU rounding order), defaults, returned lists, errors and messages,
gradients as MLX has them."""

import numpy as np
import pytest

import mlx.core as MX
from diff import A, get_rmx, to_numpy

MODES = ["mxfp4", "mxfp8", "nvfp4"]
FLOATS = ["float32", "float16", "bfloat16"]


def data(n, k, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k)) * rng.uniform(1e-3, 100, size=(n, 1))
    x = x.astype(np.float32)
    x[0, :32] = 0
    x[1, :16], x[1, 16:32] = 6.0, 448.0
    x[2] *= 1e-30
    x[3] = np.round(x[3] * 4) / 4
    x[4, :32] = np.linspace(-6, 6, 32)
    x[5] *= 1e20
    x[6, :16] = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5,
                 -5, 6, 0]
    x[7, :16] = [np.inf] + [1] * 15
    x[7, 16:32] = np.nan
    x[7, 40] = -np.inf
    x[8] *= 1e-42
    x[11] = -0.0
    return x


def both(x, dt):
    rx = get_rmx()
    return MX.array(x).astype(getattr(MX, dt)), rx.array(x).astype(getattr(rx, dt))


def same(a, b):
    """Equal values (nan where nan), dtypes and shapes."""
    assert str(b.dtype).split(".")[-1] == str(a.dtype).split(".")[-1]
    assert tuple(a.shape) == tuple(b.shape)
    x, y = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    assert np.array_equal(x, y, equal_nan=True), np.argwhere(~((x == y) | np.isnan(x) & np.isnan(y)))[:5]


def gscales(mode):
    return [None, 0.5, 3.7] if mode == "nvfp4" else [None]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_quantize_dequantize_bit_identical(mode, dt, seed):
    rx = get_rmx()
    xm, xr = both(data(32, 256, seed), dt)
    for g in gscales(mode):
        km = {} if g is None else {"global_scale": MX.array(g)}
        kr = {} if g is None else {"global_scale": rx.array(g)}
        qm = MX.quantize(xm, mode=mode, **km)
        qr = rx.quantize(xr, mode=mode, **kr)
        assert isinstance(qr, list) and len(qr) == len(qm) == 2
        same(qm[0], qr[0])
        same(qm[1], qr[1])
        for odt in [None, "float32", "float16", "bfloat16"]:
            dm = MX.dequantize(*qm, mode=mode, dtype=odt and getattr(MX, odt), **km)
            dr = rx.dequantize(*qr, mode=mode, dtype=odt and getattr(rx, odt), **kr)
            same(dm, dr)


@pytest.mark.parametrize("shape", [(3, 4, 64), (2, 32), (1, 2, 3, 96)])
@pytest.mark.parametrize("mode", MODES)
def test_quantize_batched_shapes(mode, shape):
    rx = get_rmx()
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    qm, qr = MX.quantize(MX.array(x), mode=mode), rx.quantize(rx.array(x), mode=mode)
    for a, b in zip(qm, qr):
        same(a, b)
    same(MX.dequantize(*qm, mode=mode), rx.dequantize(*qr, mode=mode))


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("mode", MODES)
def test_quantized_matmul_bit_identical(mode, dt, transpose):
    rx = get_rmx()
    wm, wr = both(data(64, 256, 3), dt)
    qm, qr = MX.quantize(wm, mode=mode), rx.quantize(wr, mode=mode)
    k = 256 if transpose else 64
    for shape in [(5, k), (k,), (2, 3, k)]:
        x = np.random.default_rng(4).normal(size=shape).astype(np.float32)
        xm, xr = both(x, dt)
        ym = MX.quantized_matmul(xm, *qm, mode=mode, transpose=transpose)
        yr = rx.quantized_matmul(xr, *qr, mode=mode, transpose=transpose)
        same(ym, yr)


@pytest.mark.parametrize("mode", MODES)
def test_gather_qmm_fp_modes(mode):
    rx = get_rmx()
    w = np.random.default_rng(5).normal(size=(4, 16, 64)).astype(np.float32)
    x = np.random.default_rng(6).normal(size=(3, 1, 64)).astype(np.float32)
    qm, qr = MX.quantize(MX.array(w), mode=mode), rx.quantize(rx.array(w), mode=mode)
    ym = MX.gather_qmm(MX.array(x), *qm, None, MX.array([0, 2, 1]), MX.array([3, 1, 1]),
                       mode=mode)
    yr = rx.gather_qmm(rx.array(x), *qr, None, rx.array([0, 2, 1]), rx.array([3, 1, 1]),
                       mode=mode)
    same(ym, yr)


def _err(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None


W = np.random.default_rng(7).normal(size=(4, 64)).astype(np.float32)

ERRORS = {
    "gs": lambda m: m.quantize(m.array(W), 64, mode="mxfp4"),
    "bits": lambda m: m.quantize(m.array(W), bits=8, mode="mxfp4"),
    "bits8": lambda m: m.quantize(m.array(W), bits=4, mode="mxfp8"),
    "nv_gs": lambda m: m.quantize(m.array(W), 32, mode="nvfp4"),
    "bad_mode": lambda m: m.quantize(m.array(W), mode="foo"),
    "gscale_mx": lambda m: m.quantize(m.array(W), mode="mxfp4", global_scale=m.array(1.0)),
    "gscale_affine": lambda m: m.quantize(m.array(W), global_scale=m.array(1.0)),
    "gscale_vec": lambda m: m.quantize(m.array(W), mode="nvfp4", global_scale=m.array([1.0, 2])),
    "gscale_f16": lambda m: m.quantize(m.array(W), mode="nvfp4",
                                       global_scale=m.array(1.0, m.float16)),
    "q_1d": lambda m: m.quantize(m.array(W[0]), mode="mxfp4"),
    "q_indivisible": lambda m: m.quantize(m.array(W[:, :48]), mode="mxfp4"),
    "q_int": lambda m: m.quantize(m.array(W).astype(m.int32), mode="mxfp4"),
    "q_nv_16": lambda m: m.quantize(m.array(W[:1, :16]), mode="nvfp4"),
    "dq_biases": lambda m: m.dequantize(*m.quantize(m.array(W), mode="mxfp4"),
                                        m.ones((4, 2)), mode="mxfp4"),
    "dq_scale_dtype": lambda m: m.dequantize(m.quantize(m.array(W), mode="mxfp4")[0],
                                             m.ones((4, 2)), mode="mxfp4"),
    "dq_int_dtype": lambda m: m.dequantize(*m.quantize(m.array(W), mode="nvfp4"),
                                           mode="nvfp4", dtype=m.int32),
    "dq_w_f32": lambda m: m.dequantize(m.ones((4, 8)), m.ones((4, 2), m.uint8), mode="mxfp4"),
    "dq_shape": lambda m: m.dequantize(m.zeros((4, 8), m.uint32), m.ones((4, 1), m.uint8),
                                       mode="nvfp4"),
    "dq_gs": lambda m: m.dequantize(*m.quantize(m.array(W), mode="nvfp4"), group_size=64,
                                           mode="nvfp4"),
    "dq_gscale_f16": lambda m: m.dequantize(*m.quantize(m.array(W), mode="nvfp4"), mode="nvfp4",
                                            global_scale=m.array(1.0, m.float16)),
    "qmm_biases": lambda m: m.quantized_matmul(m.ones((2, 64)), *m.quantize(m.array(W), mode="mxfp8"),
                                               m.ones((4, 2)), mode="mxfp8"),
    "qmm_scale_dtype": lambda m: m.quantized_matmul(m.ones((2, 64)),
                                                    m.quantize(m.array(W), mode="mxfp8")[0],
                                                    m.ones((4, 2)), mode="mxfp8"),
    "qmm_int": lambda m: m.quantized_matmul(m.ones((2, 64), m.int32),
                                            *m.quantize(m.array(W), mode="nvfp4"), mode="nvfp4"),
    "qmm_k": lambda m: m.quantized_matmul(m.ones((2, 32)),
                                          *m.quantize(m.array(W), mode="nvfp4"), mode="nvfp4"),
    "qmm_gs": lambda m: m.quantized_matmul(m.ones((2, 64)),
                                           *m.quantize(m.array(W), mode="nvfp4"), group_size=64,
                                           mode="nvfp4"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_mlx(name):
    em, er = _err(lambda: ERRORS[name](MX)), _err(lambda: ERRORS[name](get_rmx()))
    assert em is not None and er is not None, (em, er)
    assert er[0] is em[0]
    assert er[1] == em[1]


@pytest.mark.parametrize("mode", MODES)
def test_gradients_as_mlx(mode):
    rx = get_rmx()
    w = np.random.default_rng(8).normal(size=(4, 32)).astype(np.float32)
    x = np.random.default_rng(9).normal(size=(3, 32)).astype(np.float32)

    def cases(m):
        q, s = m.quantize(m.array(w), mode=mode)
        return {
            "quantize": lambda: m.grad(lambda w: m.quantize(w, mode=mode)[0]
                                       .astype(m.float32).sum())(m.array(w)),
            "qmm_x": lambda: m.grad(lambda x: m.quantized_matmul(x, q, s, mode=mode).sum())(
                m.array(x)),
            "qmm_x_n": lambda: m.grad(lambda x: m.quantized_matmul(
                x, q, s, mode=mode, transpose=False).sum())(m.ones((3, 4))),
            "qmm_s": lambda: m.grad(lambda s: m.quantized_matmul(
                m.array(x), q, s, mode=mode).sum())(s),
            "qmm_w": lambda: m.grad(lambda q: m.quantized_matmul(
                m.array(x), q, s, mode=mode).sum())(q),
            "jvp": lambda: m.jvp(lambda x: m.quantized_matmul(x, q, s, mode=mode),
                                 [m.array(x)], [m.ones((3, 32))])[1][0],
        }

    cm, cr = cases(MX), cases(rx)
    for k in cm:
        try:
            gm = cm[k]()
            MX.eval(gm)
        except Exception as e:  # noqa: BLE001
            with pytest.raises(type(e)):
                rx.eval(cr[k]())
            continue
        same(gm, cr[k]())


def test_nn_quantized_linear_fp_modes():
    rx = get_rmx()
    import mlx.nn as mnn
    import rmx.nn as rnn
    w = np.random.default_rng(10).normal(size=(16, 64)).astype(np.float32)
    x = np.random.default_rng(11).normal(size=(2, 64)).astype(np.float32)
    for mode in MODES:
        lm, lr = mnn.Linear(64, 16), rnn.Linear(64, 16)
        lm.weight, lr.weight = MX.array(w), rx.array(w)
        lm.bias, lr.bias = MX.zeros((16,)), rx.zeros((16,))
        qm = mnn.QuantizedLinear.from_linear(lm, mode=mode)
        qr = rnn.QuantizedLinear.from_linear(lr, mode=mode)
        assert repr(qr) == repr(qm)
        same(qm(MX.array(x)), qr(rx.array(x)))
