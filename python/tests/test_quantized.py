"""quantize, dequantize, quantized_matmul (affine mode) against MLX 0.32.4: packed words,
scales and biases bit for bit, dequantized values exactly, products within rounding,
shapes, dtypes, errors, gradients (against MLX and finite differences), vmap (against a
loop), GGUF-loaded weights. A NumPy reference unpacks the bits independently."""

import numpy as np
import pytest

import mlx.core as MX
from diff import A, REF, check, check_raises, get_rmx, rand, rmx_only, to_numpy

BITS = [1, 2, 3, 4, 5, 6, 8]
GROUPS = [32, 64, 128]
FLOATS = ["float32", "float16", "bfloat16"]


# ---------------------------------------------------------------- NumPy reference

def np_unpack(wq, bits):
    """Values of packed uint32 rows [..., C] -> [..., C*32/bits] (element j at bits j*bits..)."""
    wq = np.asarray(wq, dtype=np.uint32)
    bitstream = np.unpackbits(wq.view(np.uint8).reshape(*wq.shape[:-1], -1), axis=-1,
                              bitorder="little")
    b = bitstream.reshape(*wq.shape[:-1], -1, bits).astype(np.uint64)
    return (b << np.arange(bits, dtype=np.uint64)).sum(-1).astype(np.float64)


def np_dequantize(wq, s, b, gs, bits):
    q = np_unpack(wq, bits)
    s = np.repeat(np.asarray(s, np.float64), gs, axis=-1)
    b = np.repeat(np.asarray(b, np.float64), gs, axis=-1)
    return q * s + b


def weights(shape, dt, seed, scale=1.0):
    """Random words, scales and biases of `dt` (uint32 words, (N, K*bits/32))."""
    g = np.random.default_rng(seed)
    n, c, groups = shape
    wq = g.integers(0, 2**32, size=(n, c), dtype=np.uint64).astype(np.uint32)
    s = (g.uniform(-1, 1, (n, groups)) * 0.1 * scale).astype(np.float32)
    b = (g.uniform(-1, 1, (n, groups)) * scale).astype(np.float32)
    return A(wq, "uint32"), A(s, dt), A(b, dt)


def qshape(n, k, gs, bits):
    return (n, k * bits // 32, k // gs)


def group_data(shape, seed):
    """Random rows with varied magnitudes plus the special groups: constant, zero, all
    positive, all negative, one outlier, tiny values."""
    g = np.random.default_rng(seed)
    x = g.normal(size=shape) * g.uniform(0.01, 20, size=shape[:-1] + (1,))
    rows = x.reshape(-1, shape[-1])
    specials = [0.0, 1.5, -3.0, None, None, None, None]
    for i, v in enumerate(specials[: len(rows)]):
        if v is not None:
            rows[i, :32] = v
    if len(rows) > 3:
        rows[3] = np.abs(rows[3]) + 0.5
    if len(rows) > 4:
        rows[4] = -np.abs(rows[4]) - 0.25
    if len(rows) > 5:
        rows[5, 7] = 1e4
    if len(rows) > 6:
        rows[6] *= 1e-6
    return x.astype(np.float32)


# ---------------------------------------------------------------- quantize

@pytest.mark.parametrize("gs", GROUPS)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dt", FLOATS)
def test_quantize_bit_identical(dt, bits, gs):
    w = A(group_data((12, 256), seed=bits * 7 + gs), dt)
    check(lambda m, w: m.quantize(w, gs, bits), w, exact=True)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dt", FLOATS)
def test_quantize_random_distributions(dt, seed):
    g = np.random.default_rng(100 + seed)
    kind = seed % 4
    x = [g.normal(size=(64, 128)), g.uniform(0, 1, (64, 128)), g.standard_t(2, (64, 128)),
         g.integers(-8, 8, (64, 128)).astype(np.float64) / 4][kind]
    x = x * 10.0 ** g.uniform(-4, 4)
    for bits in (4, 8, 3):
        check(lambda m, w: m.quantize(w, 64, bits), A(x.astype(np.float32), dt), exact=True)


def test_quantize_defaults_and_3d():
    w = A(group_data((2, 3, 128), seed=1))
    r = check(lambda m, w: m.quantize(w), w, exact=True)
    assert r[0].shape == (2, 3, 16) and r[1].shape == (2, 3, 2)
    check(lambda m, w: m.quantize(w, bits=8), w, exact=True)
    check(lambda m, w: m.quantize(w, group_size=32), w, exact=True)


@pytest.mark.parametrize("view", ["T", "step", "neg"])
def test_quantize_noncontiguous(view):
    f = {"T": lambda x: x.T, "step": lambda x: x[::2, ::2], "neg": lambda x: x[::-1]}[view]
    w = A(group_data((128, 128), seed=2), view=f)
    check(lambda m, w: m.quantize(w, 32, 4), w, exact=True)


def test_quantize_round_trip_error_bounded():
    # independent of MLX: every value inside a group's representable range
    # [bias, bias + (2^bits - 1) * scale] comes back within half a step
    mx = get_rmx()
    x = group_data((16, 256), seed=3).astype(np.float64)
    for bits in BITS:
        q, s, b = mx.quantize(mx.array(x.astype(np.float32)), 64, bits)
        s, b = np.array(s, np.float64), np.array(b, np.float64)
        back = np_dequantize(np.array(q), s, b, 64, bits)
        lo = np.repeat(np.minimum(b, b + (2**bits - 1) * s), 64, axis=-1)
        hi = np.repeat(np.maximum(b, b + (2**bits - 1) * s), 64, axis=-1)
        step = np.repeat(np.abs(s), 64, axis=-1)
        err = np.abs(back - np.clip(x, lo, hi))
        assert np.all(err <= step * 0.5 * (1 + 1e-5) + 1e-6 * np.abs(x)), bits
        assert np.mean((x >= lo) & (x <= hi)) > 0.9, bits


def test_quantize_empty():
    check(lambda m, w: m.quantize(w), A(np.zeros((0, 64), np.float32)), exact=True)
    check(lambda m, w: m.quantize(w), A(np.zeros((3, 0), np.float32)), exact=True)


QUANTIZE_ERRORS = {
    "1d": (lambda m, w: m.quantize(w[0]), ValueError),
    "0d": (lambda m, w: m.quantize(w[0, 0]), ValueError),
    "not_divisible": (lambda m, w: m.quantize(w[:, :96]), ValueError),
    "group16": (lambda m, w: m.quantize(w, 16), ValueError),
    "group48": (lambda m, w: m.quantize(w[:, :96], 48), ValueError),
    "group256": (lambda m, w: m.quantize(w, 256), ValueError),
    "bits7": (lambda m, w: m.quantize(w, 64, 7), ValueError),
    "bits0": (lambda m, w: m.quantize(w, 64, 0), ValueError),
    "bits16": (lambda m, w: m.quantize(w, 64, 16), ValueError),
    "int": (lambda m, w: m.quantize(w.astype(m.int32)), ValueError),
    "complex": (lambda m, w: m.quantize(w.astype(m.complex64)), ValueError),
    "float64": (lambda m, w: m.quantize(w.astype(m.float64)), RuntimeError),
    "mode": (lambda m, w: m.quantize(w, mode="foo"), ValueError),
    "mode_group": (lambda m, w: m.quantize(w, 64, mode="mxfp4"), ValueError),
    "global_scale": (lambda m, w: m.quantize(w, global_scale=m.array(1.0)), ValueError),
    "list": (lambda m, w: m.quantize([[1.0] * 64] * 2), TypeError),
    "float_group": (lambda m, w: m.quantize(w, 64.0), TypeError),
    "mode_none": (lambda m, w: m.quantize(w, mode=None), TypeError),
}


@pytest.mark.parametrize("name", sorted(QUANTIZE_ERRORS))
def test_quantize_errors(name):
    fn, err = QUANTIZE_ERRORS[name]
    check_raises(fn, A(rand((4, 128), seed=4)), err=err)


# ---------------------------------------------------------------- dequantize

@pytest.mark.parametrize("gs", GROUPS)
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dt", FLOATS)
def test_dequantize_exact(dt, bits, gs):
    wq, s, b = weights(qshape(6, 256, gs, bits), dt, seed=bits + gs)
    got = check(lambda m, w, s, b: m.dequantize(w, s, b, gs, bits), wq, s, b, exact=True)
    ref = np_dequantize(wq.data, to_numpy(s.make(REF)), to_numpy(b.make(REF)), gs, bits)
    # float16/bfloat16: the product and the sum each round to the type (as MLX)
    rtol, atol = {"float32": (1e-6, 1e-6), "float16": (1e-2, 2e-3)}.get(dt, (2e-2, 2e-2))
    np.testing.assert_allclose(to_numpy(got), ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("out", ["float32", "float16", "bfloat16", "float64"])
@pytest.mark.parametrize("dt", FLOATS)
def test_dequantize_dtype_argument(dt, out):
    wq, s, b = weights(qshape(4, 128, 64, 4), dt, seed=5, scale=30.0)
    check(lambda m, w, s, b: m.dequantize(w, s, b, dtype=getattr(m, out)), wq, s, b, exact=True)


@pytest.mark.parametrize("sd,bd", [("float16", "float32"), ("float32", "float16"),
                                   ("bfloat16", "float16"), ("float64", "float64"),
                                   ("int32", "float32"), ("bool_", "float32")])
def test_dequantize_mixed_scale_bias_dtypes(sd, bd):
    wq, s, b = weights(qshape(4, 128, 64, 8), "float32", seed=6, scale=30.0)
    s, b = A(s.data, sd), A(b.data, bd)
    check(lambda m, w, s, b: m.dequantize(w, s, b, 64, 8), wq, s, b, exact=True)


def test_dequantize_batched_and_views():
    wq, s, b = weights(qshape(8, 128, 32, 4), "float32", seed=7)
    r3 = lambda x: x.reshape(2, 4, -1)  # noqa: E731
    check(lambda m, w, s, b: m.dequantize(r3(w), r3(s), r3(b), 32), wq, s, b, exact=True)
    check(lambda m, w, s, b: m.dequantize(w[::2], s[::2], b[::2], 32), wq, s, b, exact=True)
    check(lambda m, w, s, b: m.dequantize(w[::-1], s[::-1], b[::-1], 32), wq, s, b, exact=True)


def test_dequantize_of_quantize_round_trip():
    for dt in FLOATS:
        w = A(group_data((8, 256), seed=8), dt)
        for bits in BITS:
            check(lambda m, w: m.dequantize(*m.quantize(w, 64, bits), 64, bits), w, exact=True)


@rmx_only
def test_dequantize_empty():
    # MLX raises from an internal reshape here; rmx returns the empty result
    mx = get_rmx()
    out = mx.dequantize(mx.zeros((0, 8), mx.uint32), mx.zeros((0, 1)), mx.zeros((0, 1)))
    assert out.shape == (0, 64) and out.dtype == mx.float32


DEQUANTIZE_ERRORS = {
    "no_biases": (lambda m, w, s, b: m.dequantize(w, s), ValueError),
    "int_dtype": (lambda m, w, s, b: m.dequantize(w, s, b, dtype=m.int32), ValueError),
    "complex_dtype": (lambda m, w, s, b: m.dequantize(w, s, b, dtype=m.complex64), ValueError),
    "str_dtype": (lambda m, w, s, b: m.dequantize(w, s, b, dtype="float32"), TypeError),
    "float_words": (lambda m, w, s, b: m.dequantize(w.astype(m.float32), s, b), ValueError),
    "int_words": (lambda m, w, s, b: m.dequantize(w.astype(m.int32), s, b), ValueError),
    "group32": (lambda m, w, s, b: m.dequantize(w, s, b, 32), ValueError),
    "bits8": (lambda m, w, s, b: m.dequantize(w, s, b, bits=8), ValueError),
    "bits7": (lambda m, w, s, b: m.dequantize(w, s, b, bits=7), ValueError),
    "group16": (lambda m, w, s, b: m.dequantize(w, s, b, 16), ValueError),
    "scales_shape": (lambda m, w, s, b: m.dequantize(w, s[:, :1], b), ValueError),
    "biases_shape": (lambda m, w, s, b: m.dequantize(w, s, b[:2]), ValueError),
    "1d": (lambda m, w, s, b: m.dequantize(w[0], s[0], b[0]), ValueError),
    "broadcast": (lambda m, w, s, b: m.dequantize(w.reshape(2, 4, -1), s[:4], b[:4]),
                  ValueError),
    "int_scales": (lambda m, w, s, b: m.dequantize(w, s.astype(m.int32), b.astype(m.int32)),
                   ValueError),
    "complex_scales": (lambda m, w, s, b: m.dequantize(w, s.astype(m.complex64), b),
                       ValueError),
    "mode": (lambda m, w, s, b: m.dequantize(w, s, b, mode="foo"), ValueError),
    "global_scale": (lambda m, w, s, b: m.dequantize(w, s, b, global_scale=m.array(1.0)),
                     ValueError),
    "list": (lambda m, w, s, b: m.dequantize([1, 2], s, b), TypeError),
}


@pytest.mark.parametrize("name", sorted(DEQUANTIZE_ERRORS))
def test_dequantize_errors(name):
    fn, err = DEQUANTIZE_ERRORS[name]
    check_raises(fn, *weights(qshape(8, 128, 64, 4), "float32", seed=9), err=err)


# ---------------------------------------------------------------- quantized_matmul

def np_qmm(x, wq, s, b, gs, bits, transpose):
    w = np_dequantize(wq, s, b, gs, bits)
    return x @ (np.swapaxes(w, -1, -2) if transpose else w)


QMM_TOL = {"float32": (2e-4, 2e-4), "float16": (2e-2, 5e-2), "bfloat16": (5e-2, 2e-1)}


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("gs", GROUPS)
@pytest.mark.parametrize("bits", BITS)
def test_qmm_bits_groups(bits, gs, transpose):
    n, k = (64, 256) if transpose else (256, 128)
    wq, s, b = weights(qshape(n, k, gs, bits), "float32", seed=bits * gs)
    x = A(rand((5, k if transpose else n), seed=bits))
    r, a = QMM_TOL["float32"]
    check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, transpose, gs, bits),
          x, wq, s, b, rtol=r, atol=a,
          np_fn=lambda x, w, s, b: np_qmm(x, w.astype(np.uint32), s, b, gs, bits, transpose),
          np_rtol=r, np_atol=a)


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("xdt,sdt", [("float16", "float16"), ("bfloat16", "bfloat16"),
                                     ("float16", "float32"), ("bfloat16", "float16"),
                                     ("int32", "float32"), ("bool_", "float32"),
                                     ("int32", "float16")])
def test_qmm_dtypes(xdt, sdt, transpose):
    wq, s, b = weights(qshape(64, 128, 64, 4), sdt, seed=11)
    x = A(rand((3, 128 if transpose else 64), xdt, seed=12, low=-2, high=2), xdt)
    out = {("float16", "float16"): "float16", ("bfloat16", "bfloat16"): "bfloat16",
           ("int32", "float16"): "float16"}.get((xdt, sdt), "float32")
    r, a = QMM_TOL[out]
    # MLX accumulates bfloat16 products in bfloat16 (errors near 1.0 on results of ~30);
    # rmx accumulates in float32 and is held to NumPy more tightly than to MLX
    mlx_a = 1.5 if out == "bfloat16" else a
    got = check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, transpose), x, wq, s, b,
                rtol=r, atol=mlx_a,
                np_fn=lambda x, w, s, b: np_qmm(x, w.astype(np.uint32), s, b, 64, 4, transpose),
                np_rtol=r, np_atol=a)
    assert str(got.dtype).endswith(out)


@pytest.mark.parametrize("m_rows", [1, 2, 15, 16, 17, 40, 130])
def test_qmm_decode_and_tiled_paths(m_rows):
    wq, s, b = weights(qshape(300, 512, 64, 4), "float32", seed=13)
    x = A(rand((m_rows, 512), seed=m_rows))
    check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b), x, wq, s, b, rtol=2e-4,
          atol=2e-4, np_fn=lambda x, w, s, b: np_qmm(x, w.astype(np.uint32), s, b, 64, 4, True),
          np_rtol=2e-4, np_atol=2e-4)
    xt = A(rand((m_rows, 300), seed=m_rows))
    check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, False), xt, wq, s, b, rtol=2e-4,
          atol=2e-4)


@pytest.mark.parametrize("sdt", FLOATS)
@pytest.mark.parametrize("bits,gs,k", [(4, 32, 576), (4, 32, 96), (4, 64, 576), (4, 128, 384),
                                       (8, 32, 576), (8, 32, 96), (8, 64, 192), (8, 128, 640),
                                       (4, 32, 4096), (2, 32, 576), (6, 64, 576)])
@pytest.mark.parametrize("m_rows", [1, 3, 5, 16])
def test_qmm_decode_kernels(m_rows, bits, gs, k, sdt):
    """The decode kernels (float32 x, few rows): row lengths that end inside a chunk of
    16 words, every group size, and half-precision scales read without a cast."""
    wq, s, b = weights(qshape(37, k, gs, bits), sdt, seed=bits + gs + k)
    x = A(rand((m_rows, k), seed=m_rows + k))
    got = check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, True, gs, bits),
                x, wq, s, b, rtol=2e-4, atol=2e-4,
                np_fn=lambda x, w, s, b: np_qmm(x, w.astype(np.uint32), s, b, gs, bits, True),
                np_rtol=2e-4, np_atol=2e-4)
    assert str(got.dtype).endswith("float32")


@pytest.mark.parametrize("case", ["nan", "inf", "tiny", "subnormal", "huge", "outlier", "zeros"])
@pytest.mark.parametrize("bits", [4, 8])
def test_qmm_decode_kernels_special_x(case, bits):
    """Rows of `x` the integer decode kernel (qmm_vnni.rs) splits into bytes per block of
    32 values, or hands to the float kernel: non-finite values propagate, blocks too small
    to scale, huge magnitudes, one outlier per block (the others keep float32 precision
    relative to it), all-zero blocks."""
    k = 256
    wq, s, b = weights(qshape(40, k, 32, bits), "float32", seed=bits + 3)
    x = rand((2, k), seed=7).astype(np.float32)
    if case == "nan":
        x[1, 5] = np.nan
    elif case == "inf":
        x[0, 100] = np.inf
    elif case == "tiny":
        x[:, :32] *= 1e-33  # one block below 2^-100
    elif case == "subnormal":
        x[:, 64:96] = 1e-40
    elif case == "huge":
        x *= 1e30
    elif case == "outlier":
        x[:, ::32] = 3e3
    else:
        x[:, 32:96] = 0.0
    scale = float(np.abs(x[np.isfinite(x)]).max())
    tol = 2e-4 * max(scale, 1.0) if case in ("huge", "outlier") else 2e-4
    check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, True, 32, bits),
          A(x), wq, s, b, rtol=2e-4, atol=tol,
          np_fn=lambda x, w, s, b: np_qmm(x, w.astype(np.uint32), s, b, 32, bits, True),
          np_rtol=2e-4, np_atol=tol)


def test_qmm_shapes():
    wq, s, b = weights(qshape(32, 128, 64, 4), "float32", seed=14)
    tol = dict(rtol=2e-4, atol=2e-4)
    for shape in [(128,), (2, 3, 128), (2, 1, 3, 128), (1, 128)]:
        x = A(rand(shape, seed=15))
        check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b), x, wq, s, b, **tol)
    stack = lambda m, a: m.stack([a, a[::-1]])  # noqa: E731
    for shape in [(2, 3, 128), (1, 3, 128), (4, 1, 3, 128), (2, 1, 128)]:
        x = A(rand(shape, seed=16))
        check(lambda m, x, w, s, b: m.quantized_matmul(x, stack(m, w), stack(m, s),
                                                       stack(m, b)), x, wq, s, b, **tol)


@rmx_only
def test_qmm_2d_x_broadcasts_against_batched_w():
    # MLX 0.32.4 returns shape (3, 8) here (x's shape), dropping w's batch; rmx broadcasts
    # as matmul does. Reference: NumPy on the dequantized weights.
    mx = get_rmx()
    g = np.random.default_rng(17)
    w = g.normal(size=(2, 8, 64)).astype(np.float32)
    q, s, b = mx.quantize(mx.array(w), 32)
    x = g.normal(size=(3, 64)).astype(np.float32)
    got = np.array(mx.quantized_matmul(mx.array(x), q, s, b, group_size=32))
    want = x @ np.swapaxes(np_dequantize(np.array(q), np.array(s), np.array(b), 32, 4), -1, -2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_qmm_noncontiguous():
    wq, s, b = weights(qshape(64, 256, 32, 4), "float32", seed=18)
    x = A(rand((256, 6), seed=19), view=lambda a: a.T)
    tol = dict(rtol=2e-4, atol=2e-4)
    check(lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, group_size=32), x, wq, s, b, **tol)
    check(lambda m, x, w, s, b: m.quantized_matmul(x[::2], w[::2], s[::2], b[::2],
                                                   group_size=32), x, wq, s, b, **tol)
    check(lambda m, x, w, s, b: m.quantized_matmul(x, w[::-1], s[::-1], b[::-1],
                                                   group_size=32), x, wq, s, b, **tol)


def test_qmm_with_quantized_weights():
    w = A(group_data((96, 256), seed=20))
    x = A(rand((4, 256), seed=21))
    for bits in (2, 4, 6, 8):
        check(lambda m, x, w: m.quantized_matmul(x, *m.quantize(w, 128, bits), True, 128, bits),
              x, w, rtol=2e-4, atol=2e-3)


@rmx_only
def test_qmm_empty():
    # MLX 0.32.4 dies with a floating point exception on these; rmx returns empty/zeros
    mx = get_rmx()
    q, s, b = mx.quantize(mx.ones((8, 64)))
    assert mx.quantized_matmul(mx.zeros((0, 64)), q, s, b).shape == (0, 8)
    assert mx.quantized_matmul(mx.zeros((2, 0, 64)), q, s, b).shape == (2, 0, 8)
    e = mx.quantized_matmul(mx.ones((3, 64)), q[:0], s[:0], b[:0])
    assert e.shape == (3, 0)
    z = mx.quantized_matmul(mx.ones((3, 0)), mx.zeros((0, 8), mx.uint32), mx.zeros((0, 1)),
                            mx.zeros((0, 1)), transpose=False)
    assert z.shape == (3, 64) and not np.any(np.array(z))


QMM_ERRORS = {
    "no_biases": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s), ValueError),
    "k_mismatch": (lambda m, x, w, s, b: m.quantized_matmul(x[:, :64], w, s, b), ValueError),
    "k_mismatch_t": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, False), ValueError),
    "x0d": (lambda m, x, w, s, b: m.quantized_matmul(x[0, 0], w, s, b), IndexError),
    "w_float": (lambda m, x, w, s, b: m.quantized_matmul(x, w.astype(m.float32), s, b),
                ValueError),
    "scales_shape": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s[:4], b), ValueError),
    "w1d": (lambda m, x, w, s, b: m.quantized_matmul(x, w[0], s[0], b[0]), ValueError),
    "batch_scales": (lambda m, x, w, s, b: m.quantized_matmul(x, m.stack([w, w]), s, b),
                     ValueError),
    "bits7": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, bits=7), ValueError),
    "group32": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, group_size=32),
                ValueError),
    "group16": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, group_size=16),
                ValueError),
    "int_scales": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s.astype(m.int32),
                                                            b.astype(m.int32)), ValueError),
    "complex_x": (lambda m, x, w, s, b: m.quantized_matmul(x.astype(m.complex64), w, s, b),
                  ValueError),
    "float64_x": (lambda m, x, w, s, b: m.quantized_matmul(x.astype(m.float64), w, s, b),
                  RuntimeError),
    "float64_scales": (lambda m, x, w, s, b: m.quantized_matmul(
        x, w, s.astype(m.float64), b.astype(m.float64)), RuntimeError),
    "batch_mismatch": (lambda m, x, w, s, b: m.quantized_matmul(
        m.ones((3, 3, 128)), m.stack([w, w]), m.stack([s, s]), m.stack([b, b])), ValueError),
    "mode": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, mode="foo"), ValueError),
    "list_x": (lambda m, x, w, s, b: m.quantized_matmul([[1.0] * 128], w, s, b), TypeError),
    "scalar_x": (lambda m, x, w, s, b: m.quantized_matmul(1.0, w, s, b), TypeError),
    "int_transpose": (lambda m, x, w, s, b: m.quantized_matmul(x, w, s, b, 1), TypeError),
}


@pytest.mark.parametrize("name", sorted(QMM_ERRORS))
def test_qmm_errors(name):
    fn, err = QMM_ERRORS[name]
    check_raises(fn, A(rand((3, 128), seed=22)), *weights(qshape(8, 128, 64, 4), "float32", 23),
                 err=err)


# ---------------------------------------------------------------- gradients

def _qmm_inputs(transpose, seed=24):
    wq, s, b = weights(qshape(16, 128, 32, 4), "float32", seed)
    x = A(rand((3, 128 if transpose else 16), seed=seed + 1))
    ct = A(rand((3, 16 if transpose else 128), seed=seed + 2))
    return x, wq, s, b, ct


@pytest.mark.parametrize("transpose", [True, False])
def test_qmm_vjp_matches_mlx(transpose):
    def f(m, x, w, s, b, ct):
        fn = lambda x, s, b: m.quantized_matmul(x, w, s, b, transpose, 32)  # noqa: E731
        return m.vjp(fn, [x, s, b], [ct])[1]
    check(f, *_qmm_inputs(transpose), rtol=1e-4, atol=1e-4)

    def g(m, x, w, s, b, ct):
        return m.grad(lambda x: (m.quantized_matmul(x, w, s, b, transpose, 32) * ct).sum())(x)
    check(g, *_qmm_inputs(transpose), rtol=1e-4, atol=1e-4)


def test_qmm_jvp_matches_mlx():
    x, wq, s, b, _ = _qmm_inputs(True)
    t = A(rand((3, 128), seed=30))
    check(lambda m, x, w, s, b, t: m.jvp(lambda x: m.quantized_matmul(x, w, s, b, True, 32),
                                         [x], [t])[1], x, wq, s, b, t, rtol=1e-4, atol=1e-4)


def test_qmm_derivative_errors():
    x, wq, s, b, ct = _qmm_inputs(True)
    check_raises(lambda m, x, w, s, b: m.grad(
        lambda w: m.quantized_matmul(x, w, s, b, True, 32).sum())(w), x, wq, s, b,
        err=RuntimeError)
    check_raises(lambda m, x, w, s, b: m.jvp(
        lambda s: m.quantized_matmul(x, w, s, b, True, 32), [s], [s])[1], x, wq, s, b,
        err=RuntimeError)


@pytest.mark.parametrize("transpose", [True, False])
def test_qmm_grads_match_finite_differences(transpose):
    # f(x, s, b) = sum(ct * (x @ W)) with W = dequantize(w, s, b); NumPy float64 central
    # differences of that function against rmx's gradients
    mx = get_rmx()
    x, wq, s, b, ct = (a.data for a in _qmm_inputs(transpose, seed=40))
    ops = lambda x, s, b: (ct * np_qmm(x, wq, s, b, 32, 4, transpose)).sum()  # noqa: E731
    gx, gs, gb = mx.grad(lambda x, s, b: (mx.quantized_matmul(x, mx.array(wq), s, b, transpose,
                                                              32) * mx.array(ct)).sum(),
                         argnums=(0, 1, 2))(mx.array(x), mx.array(s), mx.array(b))
    args = [x.astype(np.float64), s.astype(np.float64), b.astype(np.float64)]
    h = 1e-3
    for i, got in enumerate((gx, gs, gb)):
        fd = np.zeros_like(args[i])
        for idx in np.ndindex(args[i].shape):
            hi = [a.copy() for a in args]
            lo = [a.copy() for a in args]
            hi[i][idx] += h
            lo[i][idx] -= h
            fd[idx] = (ops(*hi) - ops(*lo)) / (2 * h)
        np.testing.assert_allclose(np.array(got), fd, rtol=1e-3, atol=1e-2 * np.abs(fd).max())


def test_dequantize_derivatives_match_mlx():
    wq, s, b = weights(qshape(4, 128, 64, 4), "float32", seed=50)
    ct = A(rand((4, 128), seed=51))
    check(lambda m, w, s, b, ct: m.vjp(lambda s, b: m.dequantize(w, s, b), [s, b], [ct])[1],
          wq, s, b, ct, rtol=1e-5, atol=1e-5)
    check(lambda m, w, s, b, ct: m.vjp(lambda w: m.dequantize(w, s, b), [w], [ct])[1],
          wq, s, b, ct, exact=True)
    ts, tb = A(rand((4, 2), seed=52)), A(rand((4, 2), seed=53))
    check(lambda m, w, s, b, ts, tb: m.jvp(lambda s, b: m.dequantize(w, s, b), [s, b],
                                           [ts, tb])[1], wq, s, b, ts, tb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("dt", FLOATS)
def test_quantize_vjp_like_mlx(dt, bits):
    # through the scale/bias formulas to each group's max/min elements (ties share)
    w = A(group_data((8, 128), seed=54), dt)
    cs, cb = A(rand((8, 2), seed=55)), A(rand((8, 2), seed=56))
    check(lambda m, w, cs, cb: m.vjp(lambda w: m.quantize(w, 64, bits)[1:], [w], [cs, cb])[0],
          w, cs, cb, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- vmap

def test_quantize_dequantize_vmap_match_mlx():
    w = A(group_data((3, 8, 128), seed=60))
    check(lambda m, w: m.vmap(lambda w: m.quantize(w))(w), w, exact=True)
    check(lambda m, w: m.vmap(lambda w: m.quantize(w), in_axes=1)(w), w, exact=True)
    check(lambda m, w: m.vmap(lambda q, s, b: m.dequantize(q, s, b))(*m.quantize(w)), w,
          exact=True)


@rmx_only
@pytest.mark.parametrize("axes", [(0, None, None, None), (1, None, None, None),
                                  (None, 0, 0, 0), (0, 0, 0, 0), (1, 0, None, None)])
def test_qmm_vmap_matches_loop(axes):
    # MLX 0.32.4 has no vmap rule for quantized_matmul; compare with a loop over the batch
    mx = get_rmx()
    g = np.random.default_rng(61)
    B = 3
    x = g.normal(size=(B, 2, 64)).astype(np.float32)
    if axes[0] == 1:
        x = np.swapaxes(x, 0, 1).copy()
    q, s, b = mx.quantize(mx.array(g.normal(size=(B, 8, 64)).astype(np.float32)), 32)
    xs = mx.array(x)
    ws = [q if a is not None else q[0] for a, q in zip(axes[1:], (q, s, b))]
    fn = lambda x, w, s, b: mx.quantized_matmul(x, w, s, b, group_size=32)  # noqa: E731
    got = mx.vmap(fn, in_axes=axes)(xs, *ws)
    pick = lambda a, ax, i: a if ax is None else (a[i] if ax == 0 else a[:, i])  # noqa: E731
    want = mx.stack([fn(*(pick(a, ax, i) for a, ax in zip([xs, *ws], axes))) for i in range(B)])
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- GGUF weights

@pytest.mark.parametrize("t,bits", [("Q4_0", 4), ("Q4_1", 4), ("Q8_0", 8)])
def test_gguf_quantized_weights_feed_qmm(tmp_path, t, bits):
    gguf = pytest.importorskip("gguf")
    Q = gguf.GGMLQuantizationType
    bs, ts = gguf.GGML_QUANT_SIZES[Q[t]]
    g = np.random.default_rng(70)
    n_rows, blocks_per_row = 8, 4
    d = g.integers(0, 256, size=(n_rows * blocks_per_row, ts), dtype=np.uint8)
    k = 2 if t == "Q4_1" else 1
    d[:, :2 * k] = g.uniform(-2, 2, size=(len(d), k)).astype(np.float16).view(np.uint8)
    path = str(tmp_path / "q.gguf")
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_tensor("w", d.reshape(n_rows, blocks_per_row * ts), raw_dtype=Q[t])
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    x = rand((2, blocks_per_row * 32), seed=71)

    def f(m):
        a = m.load(path)
        return m.quantized_matmul(m.array(x), a["w"], a["w.scales"], a["w.biases"], True, 32,
                                  bits)
    got, want = f(get_rmx()), f(MX)
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-3)
    ref = gguf.quants.dequantize(d.reshape(n_rows, -1), Q[t]).astype(np.float64)
    np.testing.assert_allclose(np.array(got), x @ ref.T, rtol=1e-4, atol=1e-3)
