"""The CUDA backend: every op run with ``stream=mx.gpu`` agrees with the same op on
``mx.cpu`` (and with NumPy in float64 where that is meaningful), within dtype tolerance.

Skips where no GPU backend is available (CI has no GPU); run on the GPU machine with a
build made with ``--features cuda`` (see docs/design/cuda.md).
"""

import numpy as np
import pytest

from gpu_util import (FLOATS, INTS, TOL, assert_close, both, dt, host, host_fallbacks, mx,  # noqa: F401
                      on_gpu_natively, rand, requires_gpu)

pytestmark = requires_gpu


def test_default_device_is_the_gpu_as_in_mlx():
    assert mx.default_device() == mx.gpu
    assert mx.device_count(mx.gpu) >= 1
    info = mx.device_info(mx.gpu)
    assert "device_name" in info


def test_seed_walkthrough_add_on_both_devices():
    a = mx.random.uniform(shape=(100,))
    b = mx.random.uniform(shape=(100,))
    c = mx.add(a, b, stream=mx.cpu)
    d = mx.add(a, b, stream=mx.gpu)
    # a device result feeds a host op and back, with no user-visible copies
    e = mx.multiply(d, 2, stream=mx.cpu)
    f = mx.subtract(e, c, stream=mx.gpu)
    np.testing.assert_allclose(np.array(f), np.array(a) + np.array(b), rtol=1e-6)
    np.testing.assert_allclose(np.array(d), np.array(c), rtol=0)


UNARY_FLOAT = {
    "abs": (-3, 3), "negative": (-3, 3), "sign": (-3, 3), "sqrt": (0, 9), "rsqrt": (0.1, 9),
    "square": (-3, 3), "reciprocal": (0.5, 3), "exp": (-5, 5), "expm1": (-2, 2),
    "log": (0.1, 9), "log1p": (-0.5, 9), "log2": (0.1, 9), "log10": (0.1, 9),
    "sin": (-3, 3), "cos": (-3, 3), "tan": (-1.2, 1.2), "arcsin": (-0.9, 0.9),
    "arccos": (-0.9, 0.9), "arctan": (-3, 3), "sinh": (-3, 3), "cosh": (-3, 3),
    "tanh": (-3, 3), "arcsinh": (-3, 3), "arccosh": (1.1, 9), "arctanh": (-0.9, 0.9),
    "floor": (-3, 3), "ceil": (-3, 3), "round": (-3, 3), "erf": (-2, 2),
    "erfinv": (-0.9, 0.9), "sigmoid": (-5, 5), "logical_not": (-1, 1), "isnan": (-1, 1),
    "isinf": (-1, 1), "isposinf": (-1, 1), "isneginf": (-1, 1),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", sorted(UNARY_FLOAT))
def test_unary_floats(op, dtype):
    lo, hi = UNARY_FLOAT[op]
    x = rand((33, 65), dtype, lo, hi)
    g, c = both(lambda x, s: getattr(mx, op)(x, stream=s), x)
    assert_close(g, c, dtype, f"{op} {dtype}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_special_values(dtype):
    x = mx.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e30]).astype(dt(dtype))
    for op in ["abs", "sign", "exp", "isnan", "isinf", "floor", "sigmoid", "negative"]:
        g, c = both(lambda x, s: getattr(mx, op)(x, stream=s), x)
        assert_close(g, c, dtype, f"{op} {dtype}")


@pytest.mark.parametrize("dtype", INTS + ["bool_"])
@pytest.mark.parametrize("op", ["abs", "negative", "sign", "square", "logical_not",
                                "bitwise_invert", "floor", "isnan"])
def test_unary_integers(op, dtype):
    x = rand((7, 9), dtype, -50, 50)
    try:
        c = getattr(mx, op)(x, stream=mx.cpu)
        mx.eval(c)
    except Exception as e:  # the op rejects this dtype: the GPU must reject it alike
        with pytest.raises(type(e)):
            mx.eval(getattr(mx, op)(x, stream=mx.gpu))
        return
    g = getattr(mx, op)(x, stream=mx.gpu)
    mx.eval(g)
    assert_close(g, c, dtype, f"{op} {dtype}")


BINARY = ["add", "subtract", "multiply", "divide", "power", "maximum", "minimum",
          "remainder", "floor_divide", "arctan2", "logaddexp", "equal", "not_equal",
          "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or"]
INT_BINARY = ["add", "subtract", "multiply", "maximum", "minimum", "bitwise_and",
              "bitwise_or", "bitwise_xor", "equal", "less", "remainder", "floor_divide",
              "left_shift", "right_shift", "power", "divide"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", BINARY)
def test_binary_floats_broadcast_and_views(op, dtype):
    a = rand((4, 1, 33), dtype, 0.5, 3, seed=1)
    b = rand((33, 5), dtype, -3, 3, seed=2).T  # a transposed view, broadcast against a
    g, c = both(lambda a, b, s: getattr(mx, op)(a, b, stream=s), a, b)
    assert_close(g, c, dtype, f"{op} {dtype}")
    g, c = both(lambda a, s: getattr(mx, op)(a, 1.5, stream=s), a)
    assert_close(g, c, dtype, f"{op} {dtype} scalar")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32", "uint8"])
def test_row_and_column_broadcasts(dtype):
    """A row repeated over rows (a bias), one value per row, and a transposed view,
    eager and inside a compiled (fused) function; equal to the CPU bit for bit."""
    x = rand((70, 130), dtype, 0, 50, seed=5)
    row = rand((130,), dtype, 0, 50, seed=6)
    col = rand((70, 1), dtype, 0, 50, seed=7)
    xt = rand((130, 70), dtype, 0, 50, seed=8).T  # strided: the generic path beside them
    for fn in [lambda x, s: mx.add(x, row, stream=s),
               lambda x, s: mx.maximum(x, col, stream=s),
               lambda x, s: mx.add(mx.add(x, row, stream=s), col, stream=s),
               lambda x, s: mx.add(xt, row, stream=s)]:
        g, c = both(fn, x)
        np.testing.assert_array_equal(host(g), host(c))
    f = mx.compile(lambda x, r, c: (x + r) * 2 - c)
    with mx.stream(mx.gpu):
        g = f(x, row, col)
    with mx.stream(mx.cpu):
        c = f(x, row, col)
    np.testing.assert_array_equal(host(g), host(c))


@pytest.mark.parametrize("dtype", FLOATS)
def test_power_by_small_integers(dtype):
    """Squares and cubes are products on the GPU (GELU's x**3), other exponents powf:
    special values and overflow as the CPU, values within the dtype's tolerance of float64,
    eager equal to compiled."""
    base = [0.0, -0.0, 1.5, -2.25, 3e-3, -7.0, 1e20, -1e20, 1e-30, np.inf, -np.inf, np.nan]
    x = mx.array(base + list(np.random.default_rng(3).uniform(-9, 9, 100))).astype(dt(dtype))
    for e in [2, 3, 2.0, 3.0, 3.5, 0.5, -2, 1]:
        g, c = both(lambda x, s: mx.power(x, e, stream=s), x)
        assert_close(g, c, dtype, f"x**{e} {dtype}")
        with np.errstate(all="ignore"):
            ref = np.power(host(x).astype(np.float64), float(e))
        # special values and overflow exactly as the CPU: NaN, ±inf, signed zeros (a NaN's
        # sign is not compared: x86 makes negative NaNs, CUDA positive ones)
        gh, ch = host(g).astype(np.float64), host(c).astype(np.float64)
        special = ~np.isfinite(ch) | (ch == 0)
        np.testing.assert_array_equal(gh[special], ch[special], err_msg=f"x**{e}")
        signed = special & ~np.isnan(ch)
        np.testing.assert_array_equal(np.signbit(gh[signed]), np.signbit(ch[signed]))
        finite = np.isfinite(ref) & np.isfinite(gh) & (np.abs(ref) > 1e-4)  # normal in f16
        np.testing.assert_allclose(gh[finite], ref[finite], rtol=TOL[dtype][0], atol=0,
                                   err_msg=f"x**{e}")
    f = mx.compile(lambda x: 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x**3))))
    with mx.stream(mx.gpu):
        fused = f(x)
        eager = 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    np.testing.assert_array_equal(host(fused), host(eager))


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "int8", "float64"])
def test_copies_of_transposed_views(dtype):
    """Row-major copies of views whose inner runs are whole 16-byte vectors (copied 16
    bytes at a time) and of views whose runs, offsets or strides are not: equal to the
    CPU's bit for bit."""
    x = rand((4, 6, 5, 32), dtype, -50, 50, seed=9)
    views = [x.transpose(0, 2, 1, 3), x[:, ::-1].transpose(0, 2, 1, 3), x[:, :, 1:4, :16],
             x[..., 1:17], x[..., :12].transpose(1, 0, 2, 3), x[::2, :, ::-1],
             x.transpose(0, 1, 3, 2)]
    for i, v in enumerate(views):
        g, c = both(lambda v, s: mx.reshape(v, (-1,), stream=s), v)
        np.testing.assert_array_equal(host(g), host(c), err_msg=f"view {i}")
        np.testing.assert_array_equal(host(g), host(v).reshape(-1), err_msg=f"view {i}")


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", INT_BINARY)
def test_binary_integers(op, dtype):
    a = rand((6, 10), dtype, 0, 60, seed=3)
    b = rand((10,), dtype, 1, 7, seed=4)
    g, c = both(lambda a, b, s: getattr(mx, op)(a, b, stream=s), a, b)
    assert_close(g, c, dtype, f"{op} {dtype}")


def test_binary_nan_semantics():
    a = mx.array([np.nan, 1.0, -np.inf, np.inf, 0.0])
    b = mx.array([1.0, np.nan, -np.inf, np.inf, -0.0])
    for op in ["maximum", "minimum", "logaddexp", "equal", "add", "remainder"]:
        g, c = both(lambda a, b, s: getattr(mx, op)(a, b, stream=s), a, b)
        assert_close(g, c, "float32", op)


def test_where_and_casts():
    cond = rand((5, 7), "float32", -1, 1) > 0
    for dtype in FLOATS + INTS + ["complex64"]:
        a = rand((5, 7), "float32", 0, 9, seed=5).astype(dt(dtype))
        b = rand((7,), "float32", 0, 9, seed=6).astype(dt(dtype))
        g, c = both(lambda c_, a, b, s: mx.where(c_, a, b, stream=s), cond, a, b)
        assert_close(g, c, dtype, f"where {dtype}")
    for src in FLOATS + INTS + ["bool_"]:
        x = rand((4, 9), src, 0, 100, seed=7)
        for dst in FLOATS + INTS + ["bool_"]:
            g, c = both(lambda x, s: x.astype(dt(dst), stream=s), x)
            assert_close(g, c, dst, f"{src} -> {dst}")


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "uint8", "int64", "bool_"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (1,)])
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "all", "any"])
def test_reductions(op, axis, dtype):
    x = rand((5, 33, 7), dtype, 0.5, 1.5 if op == "prod" else 9, seed=8)
    if dtype == "bool_" and op in ("mean",):
        return
    g, c = both(lambda x, s: getattr(mx, op)(x, axis=axis, keepdims=True, stream=s), x)
    assert_close(g, c, dtype, f"{op} {axis} {dtype}")
    # over a transposed view
    g, c = both(lambda x, s: getattr(mx, op)(x.transpose(2, 0, 1), axis=axis, stream=s), x)
    assert_close(g, c, dtype, f"{op} {axis} {dtype} view")


def test_reduction_nan_and_large():
    x = mx.array(np.random.default_rng(9).standard_normal(1_000_003).astype(np.float32))
    g, c = both(lambda x, s: mx.sum(x, stream=s), x)
    np.testing.assert_allclose(np.array(g), np.array(x, dtype=np.float64).sum(), rtol=1e-4)
    y = mx.array([1.0, np.nan, 3.0])
    for op in ["max", "min", "sum"]:
        g, c = both(lambda y, s: getattr(mx, op)(y, stream=s), y)
        assert np.isnan(np.array(g))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", [((1, 64), (64, 48)), ((3, 17, 33), (33, 9)),
                                    ((2, 1, 5, 8), (4, 8, 6)), ((0, 4), (4, 3)),
                                    ((3, 0), (0, 5)), ((128, 256), (256, 64))])
def test_matmul(dtype, shapes):
    sa, sb = shapes
    a = rand(sa, dtype, -1, 1, seed=10)
    b = rand(sb, dtype, -1, 1, seed=11)
    g, c = both(lambda a, b, s: mx.matmul(a, b, stream=s), a, b)
    tol = {"float16": 5e-3, "bfloat16": 3e-2, "float32": 1e-4, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(host(g), host(c), rtol=tol, atol=tol)
    ref = np.array(a.astype(mx.float64, stream=mx.cpu)) @ np.array(b.astype(mx.float64, stream=mx.cpu))
    np.testing.assert_allclose(host(g).astype(np.float64), ref, rtol=tol * 4, atol=tol * 4)


def test_matmul_transposed_and_sliced_operands():
    a = rand((40, 30), "float32", -1, 1, seed=12)
    b = rand((20, 40), "float32", -1, 1, seed=13)
    for x, y in [(a.T, b.T), (a[::2, :].T, b[:, ::2].T), (a.T[:, 1:], b.T[1:, :])]:
        g, c = both(lambda x, y, s: mx.matmul(x, y, stream=s), x, y)
        assert_close(g, c, "float32", "matmul views")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_matvec_against_a_weight_transpose(dtype):
    """x @ w.T with up to 8 rows in all takes the matrix-vector kernel (16-byte runs of
    w's rows): 1 to 8 rows with batch axes, N not a multiple of the block's 4 features,
    a long K, w a column slice of a wider matrix (rows further apart than K), and the
    cases it leaves to cuBLAS (9 rows, K not a multiple of the 16-byte run, a weight
    starting off 16-byte alignment, a batched weight). Narrow weights with long rows are
    shared by 2 or 4 warps per feature."""
    tol = {"float16": 5e-3, "bfloat16": 3e-2, "float32": 1e-4}[dtype]
    wide = rand((203, 4160), dtype, -1, 1, seed=70)
    cases = [((1, 4096), wide[:, :4096]), ((2, 3, 512), wide[:, 64:576]),
             ((8, 1024), wide[:, :1024]), ((1, 1, 64), wide[:5, :64]),
             ((9, 256), wide[:, :256]), ((2, 100), wide[:, :100]),
             ((1, 256), wide[:, 1:257]), ((3, 1, 64), rand((3, 7, 64), dtype, -1, 1, seed=71)),
             ((3, 4096), wide[:37, :4096]), ((1, 2048), wide[:2, 2048:4096])]
    for i, (xs, w) in enumerate(cases):
        x = rand(xs, dtype, -1, 1, seed=72 + i)
        wt = mx.swapaxes(w, -1, -2)
        g, c = both(lambda x, wt, s: mx.matmul(x, wt, stream=s), x, wt)
        assert g.shape == c.shape and g.dtype == c.dtype, xs
        np.testing.assert_allclose(host(g), host(c), rtol=tol, atol=tol * 4, err_msg=str(xs))
        ref = host(x).astype(np.float64) @ np.swapaxes(host(w).astype(np.float64), -1, -2)
        np.testing.assert_allclose(host(g), ref, rtol=tol * 4, atol=tol * 8, err_msg=str(xs))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [2047, 2048, 2049, 4096, 4097, 8192, 9000])
def test_norms_of_wide_rows(dtype, n):
    """Rows up to 8 elements per thread are held in registers (256 threads, 512 for rows
    past 2048), wider ones read twice: both sides of each block size's boundary, with
    and without weight and bias."""
    x = rand((3, n), dtype, -4, 4, seed=n)
    w = rand((n,), dtype, -1, 1, seed=n + 1)
    bias = rand((n,), dtype, -1, 1, seed=n + 2)
    for i, fn in enumerate([
        lambda x, s: mx.fast.rms_norm(x, w, 1e-5, stream=s),
        lambda x, s: mx.fast.rms_norm(x, None, 1e-5, stream=s),
        lambda x, s: mx.fast.layer_norm(x, w, bias, 1e-5, stream=s),
        lambda x, s: mx.fast.layer_norm(x, None, None, 1e-5, stream=s),
    ]):
        g, c = both(fn, x)
        assert_close(g, c, dtype, f"norm {i} n={n}")
    # the residual add fused in (rmx's fast.add_rms_norm): the sum and its norm
    r = rand((3, n), dtype, -4, 4, seed=n + 3)
    for wt in (w, None):
        g, c = both(lambda x, r, s: mx.fast.add_rms_norm(x, r, wt, 1e-5, stream=s), x, r)
        for i in range(2):
            assert_close(g[i], c[i], dtype, f"add_rms_norm output {i} n={n}")
        assert_close(g[0], mx.add(x, r, stream=mx.cpu), dtype, "the sum is add's")


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_and_norms(dtype):
    x = rand((6, 5, 130), dtype, -4, 4, seed=14)
    w = rand((130,), dtype, -1, 1, seed=15)
    bias = rand((130,), dtype, -1, 1, seed=16)
    for fn in [
        lambda x, s: mx.softmax(x, axis=-1, stream=s),
        lambda x, s: mx.softmax(x, axis=0, stream=s),
        lambda x, s: mx.fast.rms_norm(x, w, 1e-5, stream=s),
        lambda x, s: mx.fast.rms_norm(x, None, 1e-5, stream=s),
        lambda x, s: mx.fast.layer_norm(x, w, bias, 1e-5, stream=s),
        lambda x, s: mx.fast.layer_norm(x, None, bias, 1e-5, stream=s),
        lambda x, s: mx.fast.layer_norm(x, w, None, 1e-5, stream=s),
        lambda x, s: mx.fast.layer_norm(x[:, ::2, :], None, None, 1e-5, stream=s),
    ]:
        g, c = both(fn, x)
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 4, atol=atol * 4)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [1, 3, 8, 31, 130, 1000, 1024, 1025, 4096, 8192, 8200, 20000])
def test_softmax_row_lengths(dtype, n):
    """Every spread of a row (a warp or a block per row, vector or scalar reads, rows past
    the register limit) against the CPU; also rows starting off a 16-byte boundary, and rows
    holding -inf, +inf and NaN."""
    rows = max(1, min(37, 300_000 // n))
    x = rand((rows, n), dtype, -8, 8, seed=n)
    views = [x, x[1:], x[:, :-1]] if rows > 1 and n > 1 else [x]
    special = np.array(rand((3, n), dtype, -8, 8, seed=n + 1).astype(mx.float32))
    special[0, -1] = np.inf
    special[1, 0] = np.nan
    special[2, :] = -np.inf
    views.append(mx.array(special).astype(dt(dtype)))
    for v in views:
        g, c = both(lambda x, s: mx.softmax(x, axis=-1, stream=s), v)
        assert g.dtype == c.dtype and g.shape == c.shape
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 4, atol=atol * 4)
        np.testing.assert_array_equal(np.isnan(host(g)), np.isnan(host(c)))
    on_gpu_natively(lambda x, s: mx.softmax(x, axis=-1, stream=s), x)


def test_host_fallback_families_match():
    """Families without a CUDA kernel yet run on the host; results are identical."""
    x = rand((8, 16), "float32", -3, 3, seed=17)
    before = host_fallbacks()
    g, c = both(lambda x, s: mx.linalg.eigvals(x[:, :8] + 8 * mx.eye(8), stream=s), x)
    np.testing.assert_array_equal(np.array(g), np.array(c))
    assert host_fallbacks() > before


@pytest.mark.parametrize("bad", [
    lambda x: mx.take(x, mx.array([1, 12]), stream=mx.gpu),
    lambda x: mx.take(x, mx.array([-11]), stream=mx.gpu),
    lambda x: mx.take_along_axis(x, mx.array([3, 10]), axis=0, stream=mx.gpu),
    lambda x: mx.put_along_axis(x, mx.array([10]), mx.array([1]), axis=0, stream=mx.gpu),
    lambda x: mx.put_along_axis(x, mx.array([0, 10]), mx.array([1, 2]), axis=0, stream=mx.gpu),
])
def test_out_of_bounds_index_raises_on_gpu(bad):
    """The kernel records the index; the next synchronization raises MLX-style IndexError."""
    x = mx.arange(10, stream=mx.gpu)
    with pytest.raises(IndexError, match="out of bounds"):
        mx.eval(bad(x))
    # the record is cleared: the next evaluation is clean
    y = mx.take(x, mx.array([9, -10]), stream=mx.gpu)
    assert y.tolist() == [9, 0]


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "uint8", "int64", "bool_"])
@pytest.mark.parametrize("idx_dtype", ["int32", "uint32", "int64", "int16"])
def test_gathers(dtype, idx_dtype):
    x = rand((5, 7, 6), dtype, -9, 9, seed=30)
    idx = mx.array([[0, -1, 3], [6, 2, -7]]).astype(dt(idx_dtype)) if "u" not in idx_dtype \
        else mx.array([[0, 6, 3], [6, 2, 0]]).astype(dt(idx_dtype))
    along = mx.array(np.random.default_rng(31).integers(0, 7, (5, 4, 6))).astype(dt(idx_dtype))
    for fn in [
        lambda x, s: mx.take(x, idx, axis=1, stream=s),
        lambda x, s: mx.take(x, idx[0], axis=1, stream=s),
        lambda x, s: mx.take(x.transpose(2, 0, 1), idx, axis=2, stream=s),
        lambda x, s: mx.take_along_axis(x, along, axis=1, stream=s),
        lambda x, s: x[:, mx.array([1, -2]).astype(dt(idx_dtype)) if "u" not in idx_dtype
                       else mx.array([1, 2]).astype(dt(idx_dtype)), 2:4],
    ]:
        g, c = both(fn, x)
        assert_close(g, c, dtype, "gather")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64", "int32", "int64"])
def test_scatters(dtype):
    x = rand((6, 5), dtype, -9, 9, seed=32)
    # distinct indices for set (duplicates are unordered on a GPU, as in MLX)
    idx_set = mx.array([[3, 0, 5, 1, 2]])
    idx_dup = mx.array([[1, 1, 4, 0, 1], [1, 3, 3, 0, 1]])
    upd1 = rand((1, 5), dtype, -9, 9, seed=33)
    upd2 = rand((2, 5), dtype, -9, 9, seed=34)
    for fn in [
        lambda x, s: mx.put_along_axis(x, idx_set, upd1, axis=0, stream=s),
        lambda x, s: x.at[mx.array([0, 2, 2, 5])].add(rand((4, 5), dtype, -9, 9, seed=35)),
        lambda x, s: x.at[mx.array([0, 2, 2, 5])].maximum(rand((4, 5), dtype, -9, 9, seed=36)),
        lambda x, s: x.at[mx.array([0, 2, 2, 5])].minimum(rand((4, 5), dtype, -9, 9, seed=37)),
        lambda x, s: x.at[mx.array([1, 1])].multiply(rand((2, 5), dtype, 0.5, 2, seed=38)),
        # scatter-add with duplicate indices along axis 0
        lambda x, s: x.at[idx_dup[0]].add(rand((5, 5), dtype, -9, 9, seed=39)),
    ]:
        with mx.stream(mx.gpu):
            g = fn(x, mx.gpu)
        with mx.stream(mx.cpu):
            c = fn(x, mx.cpu)
        mx.eval(g, c)
        tol = {"bfloat16": 3e-2, "float16": 4e-3}.get(dtype)
        if tol:
            np.testing.assert_allclose(host(g), host(c), rtol=tol, atol=tol)
        else:
            assert_close(g, c, dtype, "scatter")


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "uint8", "bool_"])
def test_argmax_argmin(dtype):
    x = rand((7, 300, 5), dtype, -50, 50, seed=40)
    for fn in [
        lambda x, s: mx.argmax(x, axis=1, stream=s),
        lambda x, s: mx.argmin(x, axis=0, keepdims=True, stream=s),
        lambda x, s: mx.argmax(x[:, ::3].transpose(2, 1, 0), axis=-1, stream=s),
        lambda x, s: mx.argmax(mx.zeros((4, 9), dt(dtype)), axis=1, stream=s),
    ]:
        g, c = both(fn, x)
        assert_close(g, c, "uint32", "arg reduce")
    if dtype in FLOATS:
        y = mx.array([1.0, float("nan"), 3.0, float("nan")]).astype(dt(dtype))
        assert mx.argmax(y, stream=mx.gpu).item() == 1
        assert mx.argmin(y, stream=mx.gpu).item() == 1


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "uint8", "int64", "bool_"])
@pytest.mark.parametrize("length", [4096, 5000, 128256, 300001])
def test_argmax_argmin_over_long_rows(dtype, length):
    """Few long rows are split over many blocks and the parts' bests compared (a decode
    step's argmax over the vocabulary): the first index of the best value must still win,
    across part boundaries, and NaN beats everything."""
    x = rand((2, length), dtype, -4, 4, seed=length)
    ops = [lambda x, s: mx.argmax(x, axis=1, stream=s),
           lambda x, s: mx.argmin(x, axis=-1, keepdims=True, stream=s),
           lambda x, s: mx.argmax(x[:, ::-1], axis=1, stream=s)]
    for fn in ops:
        g, c = both(fn, x)
        assert_close(g, c, "uint32", "arg reduce")
    if dtype in FLOATS:
        n = np.zeros((1, length), np.float32)
        n[0, length - 3] = np.nan
        n[0, length // 2] = np.nan
        y = mx.array(n).astype(dt(dtype))
        assert mx.argmax(y, axis=1, stream=mx.gpu).item() == length // 2
        assert mx.argmin(y, axis=1, stream=mx.gpu).item() == length // 2


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("traditional", [False, True])
def test_rope(dtype, traditional):
    x = rand((2, 3, 9, 32), dtype, -2, 2, seed=41)
    freqs = mx.array(np.random.default_rng(42).uniform(1, 1000, 12).astype(np.float32))
    offs = mx.array([5, 300], mx.int32)
    for fn in [
        lambda x, s: mx.fast.rope(x, 32, traditional=traditional, base=10000.0, scale=1.0,
                                  offset=7, stream=s),
        lambda x, s: mx.fast.rope(x, 24, traditional=traditional, base=None, scale=0.5,
                                  offset=offs, freqs=freqs, stream=s),
        lambda x, s: mx.fast.rope(x.transpose(0, 2, 1, 3), 16, traditional=traditional,
                                  base=500000.0, scale=1.0, offset=4000, stream=s),
    ]:
        g, c = both(fn, x)
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 4, atol=atol * 8)


def swiglu_definition(x, w, q, s):
    """silu(x G^T) * (x U^T) as the product and three rounded elementwise ops on stream s."""
    if q is None:
        y = mx.matmul(x, w.T, stream=s)
    else:
        y = mx.quantized_matmul(x, *q[:3], transpose=True, group_size=q[3], bits=q[4], stream=s)
    f = y.shape[-1] // 2
    g, u = y[..., :f], y[..., f:]
    return mx.multiply(mx.multiply(g, mx.sigmoid(g, stream=s), stream=s), u, stream=s)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("bits", [None, 4, 8, 2])
@pytest.mark.parametrize("rows,k,f", [(1, 256, 48), (1, 2048, 8192), (3, 256, 40)])
def test_swiglu_linear(dtype, bits, rows, k, f):
    """rmx's fused gate/up product with SiLU gating: one row runs the matrix-vector
    kernels' gated entries, more rows the product and elementwise kernels. The gating
    rounds as the separate ops do and the gated entries split each row over warps as the
    plain matrix-vector kernels do (these shapes: 1 or 2 warps per row), so the result
    equals the GPU's own product and ops bit for bit. Always within the dtype's rounding of
    the CPU's."""
    x = rand((rows, k), dtype, -1, 1, seed=49)
    w = rand((2 * f, k), "float32", -0.2, 0.2, seed=50)
    q = None
    if bits is not None:
        wq, sc, bi = mx.quantize(w, group_size=64, bits=bits, stream=mx.cpu)
        q = (wq, sc.astype(dt(dtype), stream=mx.cpu), bi.astype(dt(dtype), stream=mx.cpu), 64, bits)
    w = w.astype(dt(dtype), stream=mx.cpu)
    fused = lambda x, s: (mx.fast.swiglu_linear(x, w, stream=s) if q is None  # noqa: E731
                          else mx.fast.swiglu_linear(x, *q[:3], group_size=64, bits=bits, stream=s))
    g = on_gpu_natively(fused, x)
    assert g.shape == (rows, f) and g.dtype == x.dtype
    rtol, atol = TOL[dtype]
    sep = host(swiglu_definition(x, w, q, mx.gpu))
    np.testing.assert_array_equal(host(g), sep)
    np.testing.assert_allclose(host(g), host(fused(x, mx.cpu)), rtol=rtol * 8, atol=atol * 16)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("bits", [None, 4, 8])
@pytest.mark.parametrize("rows,k,f", [(1, 256, 48), (1, 2048, 8192), (1, 2048, 16384), (3, 256, 40)])
@pytest.mark.parametrize("residual,swiglu", [(True, False), (False, True), (True, True)])
def test_rms_norm_linear(dtype, bits, rows, k, f, residual, swiglu):
    """rmx's pre-norm block entry: for one row the matrix-vector kernels' `_norm` entries
    make the RMS norm inside the product's blocks (more rows: the norm kernel, then the
    product). The residual sum h equals the GPU's add bit for bit; the product agrees with
    the GPU's norm-then-product within the dtype's rounding (the blocks add the squares in
    another order than the norm kernel), and with the CPU's."""
    x = rand((rows, k), dtype, -1, 1, seed=51)
    r = rand((rows, k), dtype, -1, 1, seed=52) if residual else None
    nw = rand((k,), dtype, 0.5, 1.5, seed=53)
    w = rand((f, k), "float32", -0.2, 0.2, seed=54)
    q = None
    if bits is not None:
        wq, sc, bi = mx.quantize(w, group_size=64, bits=bits, stream=mx.cpu)
        q = (wq, sc.astype(dt(dtype), stream=mx.cpu), bi.astype(dt(dtype), stream=mx.cpu), 64, bits)
    w = w.astype(dt(dtype), stream=mx.cpu)
    ws = (w,) if q is None else q[:3]

    def fused(x, r, s):
        out = mx.fast.rms_norm_linear(x, nw, 1e-5, *ws, residual=r, swiglu=swiglu,
                                      group_size=64, bits=bits or 4, stream=s)
        return out if r is not None else (x, out)

    def separate(x, r, s):
        h = x if r is None else mx.add(x, r, stream=s)
        n = mx.fast.rms_norm(h, nw, 1e-5, stream=s)
        if swiglu:
            return h, swiglu_definition(n, w, q, s)
        if q is None:
            return h, mx.matmul(n, w.T, stream=s)
        return h, mx.quantized_matmul(n, *q[:3], transpose=True, group_size=64, bits=bits, stream=s)

    g = on_gpu_natively(fused, x, r)
    assert g[1].shape == (rows, f // 2 if swiglu else f) and g[1].dtype == x.dtype
    sep = separate(x, r, mx.gpu)
    np.testing.assert_array_equal(host(g[0]), host(sep[0]))
    rtol, atol = TOL[dtype]
    # the norm kernel and the blocks add the squares in other orders, and so do the CPU's
    # norm and product: float32 outputs near zero (cancelling sums of 2048 terms) differ by
    # more than atol * 16, so the bound also scales with the output's magnitude (~100
    # float32 ulps of its largest)
    s = host(sep[1])
    np.testing.assert_allclose(host(g[1]), s, rtol=rtol * 8,
                               atol=atol * 16 + 1e-5 * np.abs(s).max())
    c = host(fused(x, r, mx.cpu)[1])
    np.testing.assert_allclose(host(g[1]), c, rtol=rtol * 8,
                               atol=atol * 16 + 1e-5 * np.abs(c).max())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("traditional", [False, True])
def test_rope_kv_update(dtype, traditional):
    """rmx's fused decode-step RoPE and cache writes: one kernel, the CPU's values within
    the dtype's rounding (sincosf and FMA contraction against the CPU's), bit for bit the
    GPU's own RoPE and scatters (the same rotation expression), caches the caller holds
    left unchanged, and a position past the cache an IndexError."""
    x = rand((2, 3, 8 + 2 * 2, 64), dtype, -2, 2, seed=44)
    kc, vc = rand((2, 2, 40, 64), dtype, seed=45), rand((2, 2, 40, 64), dtype, seed=46)
    freqs = mx.array(np.random.default_rng(47).uniform(1, 1000, 24).astype(np.float32))
    before = host(kc)
    for dims, off, fr in [(64, 37, None), (48, 5, freqs), (64, -4, None)]:
        base = None if fr is not None else 10000.0
        fn = lambda x, kc, vc, s: mx.fast.rope_kv_update(  # noqa: E731
            x, kc, vc, 8, 2, dims, traditional=traditional, base=base, scale=1.0,
            offset=mx.array(off, mx.int32), freqs=fr, stream=s)
        g = on_gpu_natively(fn, x, kc, vc)
        c = fn(x, kc, vc, mx.cpu)
        rtol, atol = TOL[dtype]
        for a, b in zip(g, c):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(host(a), host(b), rtol=rtol * 4, atol=atol * 8)
        kw = dict(traditional=traditional, base=base, scale=1.0, offset=off, freqs=fr,
                  stream=mx.gpu)
        part = lambda a, n: x[:, :, a:a + n].transpose(0, 2, 1, 3)  # noqa: E731
        k = mx.fast.rope(part(8, 2), dims, **kw)
        at = mx.broadcast_to((mx.arange(3) + off).reshape(1, 1, 3, 1), k.shape)
        sep = (mx.fast.rope(part(0, 8), dims, **kw),
               mx.put_along_axis(kc, at, k, axis=2, stream=mx.gpu),
               mx.put_along_axis(vc, at, part(10, 2), axis=2, stream=mx.gpu))
        for a, b in zip(g, sep):
            np.testing.assert_array_equal(host(a), host(b))
    np.testing.assert_array_equal(host(kc), before)  # held by the caller: not written
    # a cache nothing else holds (written in place; rmx-lm's decode capture checks the
    # buffer stays the same) gets this step's row and keeps the rest
    cache = mx.zeros((1, 1, 8, 64), dt(dtype), stream=mx.gpu)
    mx.eval(cache)
    step = lambda c: mx.fast.rope_kv_update(  # noqa: E731
        rand((1, 1, 4, 64), dtype, seed=48), c, c * 1, 2, 1, 64, traditional=traditional,
        base=10000.0, scale=1.0, offset=mx.array(3, mx.int32), stream=mx.gpu)
    q, k, v = step(cache)
    del cache
    mx.eval(q, k, v)
    assert np.count_nonzero(host(k)[0, 0, 3]) > 0 and np.count_nonzero(host(k)[0, 0, 4]) == 0
    with pytest.raises(IndexError):
        mx.eval(*mx.fast.rope_kv_update(x, kc, vc, 8, 2, 64, traditional=traditional,
                                        base=10000.0, scale=1.0,
                                        offset=mx.array(38, mx.int32), stream=mx.gpu))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("shape", [(1, 8, 2, 1, 9, 64), (2, 4, 4, 7, 7, 32),
                                   (1, 6, 3, 12, 5, 80), (1, 4, 1, 1, 300, 128),
                                   (2, 32, 8, 1, 1000, 64), (1, 32, 8, 1, 256, 64),
                                   (1, 6, 2, 2, 77, 72), (1, 4, 2, 1, 64, 36)])
def test_sdpa(dtype, shape):
    """Single-query rows with many keys split them over blocks, the last block of a row
    merging the parts (its counter reset for the next call: each case runs seven calls).
    A row whose every key is masked averages the values, as the CPU."""
    b, hq, hkv, lq, lk, d = shape
    q = rand((b, hq, lq, d), dtype, -1, 1, seed=43)
    k = rand((b, hkv, lk, d), dtype, -1, 1, seed=44)
    v = rand((b, hkv, lk, d), dtype, -1, 1, seed=45)
    bmask = mx.array(np.random.default_rng(46).random((lq, lk)) > 0.3)
    amask = rand((b, 1, lq, lk), dtype, -2, 0, seed=47)
    sinks = rand((hq,), dtype, -1, 1, seed=48)
    scale = d ** -0.5
    for fn in [
        lambda q, s: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, stream=s),
        lambda q, s: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask="causal",
                                                          stream=s),
        lambda q, s: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=bmask,
                                                          stream=s),
        lambda q, s: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=amask,
                                                          stream=s),
        lambda q, s: mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, sinks=sinks,
                                                          stream=s),
        lambda q, s: mx.fast.scaled_dot_product_attention(
            q, k, v, scale=scale, mask=mx.zeros((lq, lk), mx.bool_), stream=s),
        lambda q, s: mx.fast.scaled_dot_product_attention(
            q.transpose(0, 2, 1, 3).transpose(0, 2, 1, 3), k[..., ::-1, :], v, scale=scale,
            mask="causal", stream=s),
    ]:
        g, c = both(fn, q)
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 8, atol=atol * 8 + 1e-5)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1, 32, 8, 64, 64, 128), (2, 8, 8, 3, 9000, 64),
                                   (1, 4, 4, 100, 100, 64), (1, 2, 1, 33, 500, 96),
                                   (2, 4, 2, 50, 20, 32)])
def test_sdpa_many_query_rows(dtype, shape):
    """Prompt-sized attention (the scores through cuBLAS, `attention_gemm.rs`): GQA,
    key rows past the register limit (9000), more queries than keys under the causal
    mask (rows seeing no key average the values), per-head and broadcast masks, strided
    and transposed inputs; each against the CPU."""
    b, hq, hkv, lq, lk, d = shape
    q = rand((b, hq, lq, d), dtype, -1, 1, seed=53)
    k = rand((b, hkv, lk, d), dtype, -1, 1, seed=54)
    v = rand((b, hkv, lk, d), dtype, -1, 1, seed=55)
    bmask = mx.array(np.random.default_rng(56).random((b, hq, lq, lk)) > 0.5)
    amask = rand((1, 1, lq, lk), dtype, -3, 0, seed=57)
    scale = d ** -0.5
    sdpa = mx.fast.scaled_dot_product_attention
    for fn in [
        lambda q, s: sdpa(q, k, v, scale=scale, stream=s),
        lambda q, s: sdpa(q, k, v, scale=scale, mask="causal", stream=s),
        lambda q, s: sdpa(q, k, v, scale=scale, mask=bmask, stream=s),
        lambda q, s: sdpa(q, k, v, scale=scale, mask=amask, stream=s),
        lambda q, s: sdpa(q.transpose(0, 2, 1, 3).transpose(0, 2, 1, 3) * 2, k[..., ::-1, :],
                          v[:, :, ::-1], scale=scale, mask="causal", stream=s),
    ]:
        g, c = both(fn, q)
        assert g.shape == c.shape and g.dtype == c.dtype
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 8, atol=atol * 8 + 1e-5)
    on_gpu_natively(lambda q, s: sdpa(q, k, v, scale=scale, mask="causal", stream=s), q)


def attention_f64(q, k, v, scale, causal):
    """softmax(scale q kᵀ) v in float64 NumPy, GQA by repeating the key heads; causal
    alignment lower right."""
    q, k, v = (host(a).astype(np.float64) for a in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = scale * q @ np.swapaxes(k, -1, -2)
    if causal:
        lq, lk = s.shape[-2:]
        s = np.where(np.arange(lk)[None, :] <= np.arange(lq)[:, None] + lk - lq, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("shape", [(2, 8, 2, 130, 130), (1, 4, 4, 64, 300), (1, 2, 1, 17, 17)])
def test_flash_attention(dtype, d, shape):
    """Half-precision attention with head size 64 or 128, no mask or causal (the
    tensor-core kernel, `flash_attention.rs`): query blocks and key tiles cut short,
    GQA, a key cache longer than the prompt, queries as the usual transposed view of a
    projection, large scores; against float64 NumPy and the CPU."""
    b, hq, hkv, lq, lk = shape
    scale = d ** -0.5
    sdpa = mx.fast.scaled_dot_product_attention
    # q as a model makes it: [b, l, h, d] transposed to [b, h, l, d] (strided, not copied)
    q = rand((b, lq, hq, d), dtype, -1, 1, seed=60).transpose(0, 2, 1, 3)
    k = rand((b, hkv, lk, d), dtype, -1, 1, seed=61)
    v = rand((b, hkv, lk, d), dtype, -1, 1, seed=62)
    for causal in (False, True):
        for amp in (1, 12):  # 12: scores up to ~100, where an unshifted exp overflows
            qa = q if amp == 1 else q * amp
            g = sdpa(qa, k, v, scale=scale, mask="causal" if causal else None, stream=mx.gpu)
            c = sdpa(qa, k, v, scale=scale, mask="causal" if causal else None, stream=mx.cpu)
            ref = attention_f64(qa, k, v, scale, causal)
            assert g.shape == (b, hq, lq, d) and g.dtype == qa.dtype
            rtol, atol = TOL[dtype]
            what = f"causal={causal} amp={amp}"
            # outputs are below 1: a few units in the last place of the dtype at 0.5
            tight = {"bfloat16": 8e-3, "float16": 1e-3}[dtype]
            np.testing.assert_allclose(host(g), ref, rtol=tight, atol=tight, err_msg=what)
            np.testing.assert_allclose(host(g), host(c), rtol=rtol * 8, atol=atol * 8,
                                       err_msg=what)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_quantized_matmul_and_dequantize(bits, group_size, dtype):
    w = rand((96, 256), "float32", -1, 1, seed=50).astype(dt(dtype))
    wq, sc, bi = mx.quantize(w, group_size=group_size, bits=bits, stream=mx.cpu)
    for rows in [(1, 256), (3, 1, 256), (40, 256)]:
        x = rand(rows, dtype, -1, 1, seed=51)
        g, c = both(lambda x, s: mx.quantized_matmul(x, wq, sc, bi, transpose=True,
                                                     group_size=group_size, bits=bits,
                                                     stream=s), x)
        rtol, atol = TOL[dtype]
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 10, atol=atol * 40 + 1e-4)
    w2 = rand((256, 128), "float32", -1, 1, seed=49).astype(dt(dtype))
    wq2, sc2, bi2 = mx.quantize(w2, group_size=group_size, bits=bits, stream=mx.cpu)
    x = rand((5, 256), dtype, -1, 1, seed=52)
    g, c = both(lambda x, s: mx.quantized_matmul(x, wq2, sc2, bi2, transpose=False,
                                                 group_size=group_size, bits=bits,
                                                 stream=s), x)
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(host(g), host(c), rtol=rtol * 10, atol=atol * 40 + 1e-4)
    g, c = both(lambda w, s: mx.dequantize(w, sc, bi, group_size=group_size, bits=bits,
                                           stream=s), wq)
    assert_close(g, c, "exact", "dequantize")


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_quantize_equals_the_host_bit_for_bit(bits, group_size, dtype):
    """mx.quantize on the GPU (one thread per group) gives the CPU's packed words, scales
    and biases exactly: random groups, a constant group (the eps scale), groups that are
    all negative, all positive or straddle zero, large magnitudes, a batch axis and a
    transposed (strided) input."""
    w = np.random.default_rng(80).uniform(-1, 1, (3, 6, 256)).astype(np.float32)
    w[0, 0, :group_size] = 0.25
    w[0, 1] = -np.abs(w[0, 1]) * 300
    w[0, 2] = np.abs(w[0, 2]) + 2
    w[1, 3] *= 6e4 if dtype == "float16" else 1e30
    x = mx.array(w).astype(dt(dtype), stream=mx.cpu)
    wt = mx.array(np.ascontiguousarray(w.swapaxes(0, 1))).astype(dt(dtype), stream=mx.cpu)
    strided = mx.swapaxes(wt, 0, 1)
    for v in [x, strided, x[:, :, :128]]:
        g = mx.quantize(v, group_size=group_size, bits=bits, stream=mx.gpu)
        c = mx.quantize(v, group_size=group_size, bits=bits, stream=mx.cpu)
        mx.eval(*g, *c)
        for a, b, what in zip(g, c, ["codes", "scales", "biases"]):
            assert a.dtype == b.dtype and a.shape == b.shape, what
            np.testing.assert_array_equal(host(a), host(b), err_msg=what)


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "uint8"])
def test_copies_into_views(dtype):
    a = rand((4, 5, 3), dtype, -9, 9, seed=53)
    b = rand((4, 2, 3), dtype, -9, 9, seed=54)
    for fn in [
        lambda a, s: mx.concatenate([a, b, a[:, ::2]], axis=1, stream=s),
        lambda a, s: mx.pad(a, [(1, 2), (0, 1), (3, 0)], constant_values=2, stream=s),
        lambda a, s: mx.pad(a, [(1, 2), (2, 1), (0, 0)], mode="edge", stream=s),
        lambda a, s: mx.slice_update(a, b, mx.array([0, 3, 0]), axes=(0, 1, 2), stream=s),
        lambda a, s: mx.stack([a, a.transpose(0, 1, 2) + a], axis=-1, stream=s),
        lambda a, s: mx.arange(3, 40, 3, dtype=dt(dtype), stream=s) if dtype != "uint8" else a,
    ]:
        g, c = both(fn, a)
        assert_close(g, c, dtype, "copy into view")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32"])
def test_donated_slice_updates_on_the_gpu(dtype):
    """A KV-cache-like chain of in-place updates (the cache buffer donated to each
    slice_update) on the GPU, with reads of earlier values and host reads in between,
    equals the same chain on the CPU; a view taken mid-way keeps its values."""
    outs = []
    for s in (mx.gpu, mx.cpu):
        with mx.stream(s):
            cache = mx.zeros((2, 3, 24, 8), dtype=dt(dtype))
            mx.eval(cache)
            seen = []
            for t in range(24):
                new = mx.full((2, 3, 1, 8), t + 1, dtype=dt(dtype))
                cache[:, :, t : t + 1, :] = new
                if t % 4 == 1:
                    mx.eval(cache)
                    seen.append(host(cache[:, :, : t + 1].sum(axis=2)))
                if t == 10:
                    view = cache[:, :, 5:9]
                    mx.eval(view)
            mx.eval(cache)
            outs.append((host(cache), host(view), seen))
    (gc, gv, gs), (cc, cv, cs) = outs
    np.testing.assert_array_equal(gc, cc)
    np.testing.assert_array_equal(gv, cv)
    for a, b in zip(gs, cs):
        np.testing.assert_array_equal(a, b)
    assert (gv == np.arange(6, 10).reshape(1, 1, 4, 1)).all()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "int32"])
def test_compiled_fused_kernels_equal_uncompiled(dtype):
    """compile's fused elementwise programs run as one generated kernel on the GPU and give
    the unfused ops' results bit for bit (each intermediate rounded to its dtype)."""
    x = rand((33, 65), dtype, -3, 3, seed=55)
    y = rand((65,), dtype, -3, 3, seed=56)

    def f(x, y):
        if dtype == "int32":
            return mx.where(x > y, (x * y) - 3, x // 2 + (y & 7))
        z = mx.exp(mx.sin(x) * 2 + 1) * x
        return mx.where(z > y, z.astype(mx.float32), mx.tanh(y) * 1.5).astype(x.dtype)

    with mx.stream(mx.gpu):
        eager = f(x, y)
        fused = mx.compile(f)(x, y)
        fused_t = mx.compile(f)(x.T.T[:, :], y)
    mx.eval(eager, fused, fused_t)
    assert fused.dtype == eager.dtype
    np.testing.assert_array_equal(host(fused), host(eager))
    np.testing.assert_array_equal(host(fused_t), host(eager))
    with mx.stream(mx.cpu):
        cpu = f(x, y)
    np.testing.assert_allclose(host(fused), host(cpu), rtol=TOL.get(dtype, (0, 0))[0] * 4,
                               atol=TOL.get(dtype, (0, 0))[1] * 4)


def test_device_results_read_repeatedly_and_reused():
    x = rand((1000,), "float32", -1, 1, seed=18)
    y = mx.exp(x, stream=mx.gpu)
    mx.eval(y)
    first = np.array(y)
    second = np.array(y)
    z = mx.add(y, y, stream=mx.gpu)
    w = mx.add(y, y, stream=mx.cpu)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.array(z), np.array(w), rtol=0)
    np.testing.assert_allclose(first, np.exp(np.array(x)), rtol=1e-6)


def test_slice_update_of_a_device_array():
    x = mx.zeros((4, 5), stream=mx.gpu) + 1
    mx.eval(x)
    x[1:3, 2] = mx.array([7.0, 8.0])
    expect = np.ones((4, 5), np.float32)
    expect[1:3, 2] = [7, 8]
    np.testing.assert_array_equal(np.array(x), expect)
    np.testing.assert_array_equal(np.array(mx.multiply(x, 1, stream=mx.gpu)), expect)


def test_grad_through_gpu_ops():
    w = rand((8, 4), "float32", -1, 1, seed=19)
    x = rand((16, 8), "float32", -1, 1, seed=20)

    def loss(w, s):
        with mx.stream(s):
            return mx.mean(mx.square(mx.tanh(x @ w)))

    gg = mx.grad(lambda w: loss(w, mx.gpu))(w)
    gc = mx.grad(lambda w: loss(w, mx.cpu))(w)
    np.testing.assert_allclose(np.array(gg), np.array(gc), rtol=1e-4, atol=1e-6)


def test_compiled_chain_with_many_scalar_constants():
    """A traced chain with hundreds of Python scalars fuses into one kernel whose scalars
    travel packed by value; it equals the eager chain bit for bit."""
    x = rand((1000,), "float32", -1, 1, seed=57)

    def f(z):
        for i in range(300):
            z = z * (1.0 + i * 1e-5) + 0.25 * (i % 3)
        return z

    with mx.stream(mx.gpu):
        eager = f(x)
        fused = mx.compile(f)(x)
        again = mx.compile(f)(x + 0)
    mx.eval(eager, fused, again)
    np.testing.assert_array_equal(host(fused), host(eager))
    np.testing.assert_array_equal(host(again), host(eager))


SCANS = {
    "cumsum": (-3, 3), "cumprod": (0.8, 1.25), "cummax": (-3, 3), "cummin": (-3, 3),
    "logcumsumexp": (-3, 3),
}


@pytest.mark.parametrize("dtype", FLOATS + ["int8", "uint8", "int32", "uint32", "int64"])
@pytest.mark.parametrize("op", sorted(SCANS))
def test_scans_match_cpu(dtype, op):
    """Native scans: one thread per line (half types, short lines, many columns) or one
    block per line (long lines); every axis, direction and strided view."""
    if op == "logcumsumexp" and dtype not in FLOATS:
        pytest.skip("logcumsumexp is for floating types")
    lo, hi = SCANS[op]
    f = getattr(mx, op)
    cases = [
        (rand((5, 300), dtype, lo, hi, seed=40), -1),   # long lines: block kernel
        (rand((300, 7), dtype, lo, hi, seed=41), 0),    # few long columns: block kernel
        (rand((4, 6, 37), dtype, lo, hi, seed=42), 1),  # many short lines: one thread each
        (rand((40, 130), dtype, lo, hi, seed=43).T, -1),  # a transposed (strided) view
        (rand((3, 2000), dtype, lo, hi, seed=44)[:, ::3], -1),
    ]
    for x, axis in cases:
        for reverse in (False, True):
            for inclusive in (True, False):
                g, c = both(lambda x, s: f(x, axis=axis, reverse=reverse,
                                           inclusive=inclusive, stream=s), x)
                what = f"{op} {dtype} {x.shape} axis={axis} rev={reverse} inc={inclusive}"
                assert g.shape == c.shape and g.dtype == c.dtype, what
                gn, cn = host(g), host(c)
                if dtype not in FLOATS or (dtype in ("float16", "bfloat16") and op != "logcumsumexp"):
                    # integers, max/min and the serial half-type walk: bit for bit
                    np.testing.assert_array_equal(gn, cn, err_msg=what)
                else:
                    rtol, atol = TOL[dtype]
                    scale = np.abs(host(x).astype(np.float64)).sum(axis=axis, keepdims=True)
                    np.testing.assert_allclose(gn, cn, rtol=rtol * 8,
                                               atol=atol + rtol * 8 * scale.max(), err_msg=what)


def test_scans_with_nan_inf_and_empty():
    x = rand((3, 400), "float32", -3, 3, seed=45)
    xn = np.array(x)
    xn[0, 10], xn[1, 200], xn[2, 399] = np.nan, np.inf, -np.inf
    x = mx.array(xn)
    for op in ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]:
        for axis in (0, 1):
            g, c = both(lambda x, s: getattr(mx, op)(x, axis=axis, stream=s), x)
            np.testing.assert_allclose(np.array(g), np.array(c), rtol=1e-5, atol=1e-4,
                                       equal_nan=True, err_msg=op)
    for shape in [(0, 5), (3, 0), (0,)]:
        g, c = both(lambda x, s: mx.cumsum(x, axis=-1, stream=s), mx.zeros(shape))
        assert g.shape == c.shape == shape


SORT_DTYPES = FLOATS + ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                        "uint64", "bool_"]


@pytest.mark.parametrize("dtype", SORT_DTYPES)
def test_sort_and_argsort_match_cpu(dtype):
    """Stable (equal values keep their order: argsort equals the CPU's), NaN last; lines
    of one tile, of several tiles merged, along every axis and through strided views."""
    lo, hi = (0, 1) if dtype == "bool_" else (-20, 20) if dtype not in ("uint8", "uint16", "uint32", "uint64") else (0, 40)
    cases = [
        (rand((7, 300), dtype, lo, hi, seed=50), -1),
        (rand((300, 5), dtype, lo, hi, seed=51), 0),
        (rand((3, 5000), dtype, lo, hi, seed=52), -1),      # 3 tiles: two merge passes
        (rand((2, 3, 9000), dtype, lo, hi, seed=53)[:, 1, ::2], -1),
        (rand((40, 33), dtype, lo, hi, seed=54).T, 1),
    ]
    if dtype in FLOATS:
        xn = host(cases[0][0]).copy()
        xn[0, [3, 50, 99]] = np.nan
        xn[1, [0, 7]] = [-0.0, 0.0]
        xn[2, [4, 5]] = [np.inf, -np.inf]
        cases.append((mx.array(xn).astype(dt(dtype), stream=mx.cpu), -1))
    for x, axis in cases:
        what = f"{dtype} {x.shape} axis={axis}"
        g, c = both(lambda x, s: mx.argsort(x, axis=axis, stream=s), x)
        np.testing.assert_array_equal(np.array(g), np.array(c), err_msg="argsort " + what)
        g, c = both(lambda x, s: mx.sort(x, axis=axis, stream=s), x)
        assert g.dtype == c.dtype
        np.testing.assert_array_equal(host(g), host(c), err_msg="sort " + what)


@pytest.mark.parametrize("dtype", ["float32", "int32", "bfloat16"])
def test_partition_on_gpu(dtype):
    x = rand((6, 3000), dtype, -50, 50, seed=55)
    for kth in (0, 17, 2999, -1):
        p = mx.partition(x, kth, axis=-1, stream=mx.gpu)
        ap = mx.argpartition(x, kth, axis=-1, stream=mx.gpu)
        xs = np.sort(host(x), axis=-1)
        k = kth % 3000
        pn, apn = host(p), np.array(ap)
        np.testing.assert_array_equal(pn[:, k], xs[:, k])
        assert (pn[:, :k] <= pn[:, k:k + 1]).all() and (pn[:, k + 1:] >= pn[:, k:k + 1]).all()
        np.testing.assert_array_equal(np.take_along_axis(host(x), apn.astype(np.int64), -1), pn)
    with pytest.raises(ValueError):
        mx.eval(mx.partition(x, 3000, axis=-1, stream=mx.gpu))
    g = mx.sort(mx.zeros((0, 4)), axis=0, stream=mx.gpu)
    assert g.shape == (0, 4)


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 1000), (0, 3), (4, 9, 3)])
def test_random_bits_match_cpu_bit_for_bit(width, shape):
    """threefry on the device: the same words per key as the CPU (and MLX), including odd
    word counts and keys whose last word is partial."""
    for seed in (0, 7, 12345):
        key = mx.random.key(seed)
        g, c = both(lambda k, s: mx.random.bits(shape, width=width, key=k, stream=s), key)
        assert g.dtype == c.dtype and g.shape == c.shape
        np.testing.assert_array_equal(np.array(g), np.array(c))
    keys = mx.random.split(mx.random.key(3), 6)
    g, c = both(lambda k, s: mx.random.uniform(shape=(6, 11), key=k[2], stream=s), keys)
    np.testing.assert_array_equal(np.array(g), np.array(c))
    g, c = both(lambda k, s: mx.random.randint(0, 100, (5, 13), key=k[4], stream=s), keys)
    np.testing.assert_array_equal(np.array(g), np.array(c))


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "all", "any"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int8", "int32", "uint8", "bool_"])
def test_column_reductions(op, dtype):
    """Reductions whose outputs are contiguous in the input (leading axes reduced): one
    thread per output, in chunks with a second pass when there are few outputs."""
    lo, hi = (0.9, 1.1) if op == "prod" else (-9, 9)
    if dtype in ("uint8", "bool_"):
        lo, hi = (0, 2)
    tol = {"float32": 1e-5, "float16": 4e-3, "bfloat16": 3e-2}
    for shape, axis in [((3000, 70), 0), ((600, 4, 300), (0, 1)), ((20, 50, 130), 1),
                        ((9000, 3), 0), ((64, 64), 0)]:
        x = rand(shape, dtype, lo, hi, seed=60)
        g, c = both(lambda x, s: getattr(mx, op)(x, axis=axis, stream=s), x)
        what = f"{op} {dtype} {shape} axis={axis}"
        assert g.shape == c.shape and g.dtype == c.dtype, what
        if g.dtype in (mx.float32, mx.float16, mx.bfloat16):
            t = tol[dtype] if dtype in tol else tol["float32"]
            scale = np.abs(host(x).astype(np.float64)).max() * (x.size / max(g.size, 1))
            np.testing.assert_allclose(host(g), host(c), rtol=t * 4,
                                       atol=t * (scale if op in ("sum",) else 1), err_msg=what)
        else:
            np.testing.assert_array_equal(host(g), host(c), err_msg=what)


@pytest.mark.parametrize("src", FLOATS)
def test_float_to_int_casts_of_special_values_match_the_host(src):
    """NaN, ±inf and out-of-range floats convert as the host's x86 casts do (MLX's CPU):
    through a 32- or 64-bit signed conversion whose out-of-range result is the minimum
    value, then wrapped; eagerly and inside a compiled (fused) kernel."""
    vals = [np.nan, np.inf, -np.inf, 3e9, -3e9, 1e20, -1e20, 255.9, -1.5, 65536.0, 2.0 ** 63, 1.5e19]
    x = mx.array(np.array(vals, np.float64)).astype(dt(src), stream=mx.cpu)
    for dst in INTS:
        g, c = both(lambda x, s: x.astype(dt(dst), stream=s), x)
        np.testing.assert_array_equal(np.array(g), np.array(c), err_msg=f"{src} -> {dst}")
        f = mx.compile(lambda x: (x * 1).astype(dt(dst)) + 0)
        with mx.stream(mx.gpu):
            g = f(x)
        with mx.stream(mx.cpu):
            c = f(x)
        np.testing.assert_array_equal(np.array(g), np.array(c), err_msg=f"compiled {src} -> {dst}")


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_quantized_matvec_fast_path(bits, group_size, dtype):
    """Group sizes that hold whole 16-byte runs of codes take the vectorized matrix-vector
    entry (the others, 2 bits in groups of 32, the word-by-word one): N not a multiple of
    the block's 4 features, 1 to 8 rows, and against float64 arithmetic on the
    dequantized weights."""
    w = rand((203, 1536), "float32", -1, 1, seed=56).astype(dt(dtype))
    wq, sc, bi = mx.quantize(w, group_size=group_size, bits=bits, stream=mx.cpu)
    wf = np.array(mx.dequantize(wq, sc, bi, group_size=group_size, bits=bits,
                                stream=mx.cpu).astype(mx.float32, stream=mx.cpu)).astype(np.float64)
    rtol, atol = TOL[dtype]
    for rows in [(1, 1536), (2, 3, 1536), (8, 1536)]:
        x = rand(rows, dtype, -1, 1, seed=57)
        g, c = both(lambda x, s: mx.quantized_matmul(x, wq, sc, bi, transpose=True,
                                                     group_size=group_size, bits=bits,
                                                     stream=s), x)
        assert g.shape == c.shape == rows[:-1] + (203,)
        np.testing.assert_allclose(host(g), host(c), rtol=rtol * 10, atol=atol * 80 + 1e-4)
        ref = host(x).astype(np.float64) @ wf.T
        np.testing.assert_allclose(host(g), ref, rtol=rtol * 10, atol=atol * 80 + 1e-3)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_quantized_matvec_wide_matrix(bits, dtype):
    """One row against a matrix with many output features (a vocabulary head, more blocks
    than an H200 holds at once); N not a multiple of the 4 features per warp."""
    n = 32768 + 3
    w = rand((n, 256), "float32", -1, 1, seed=58).astype(dt(dtype))
    wq, sc, bi = mx.quantize(w, group_size=64, bits=bits, stream=mx.cpu)
    wf = np.array(mx.dequantize(wq, sc, bi, group_size=64, bits=bits,
                                stream=mx.cpu).astype(mx.float32, stream=mx.cpu)).astype(np.float64)
    x = rand((1, 256), dtype, -1, 1, seed=59)
    g = mx.quantized_matmul(x, wq, sc, bi, transpose=True, group_size=64, bits=bits,
                            stream=mx.gpu)
    assert g.shape == (1, n)
    rtol, atol = TOL[dtype]
    ref = host(x).astype(np.float64) @ wf.T
    np.testing.assert_allclose(host(g), ref, rtol=rtol * 10, atol=atol * 80 + 1e-3)


@pytest.mark.parametrize("dtype", FLOATS + ["int32", "uint8", "int64"])
def test_searchsorted_runs_natively(dtype):
    seq = mx.sort(rand((300,), dtype, -20, 20, seed=92), stream=mx.cpu)
    values = rand((7, 11), dtype, -25, 25, seed=93)
    if dtype in FLOATS:
        seq = mx.concatenate([seq, mx.array([np.nan, np.nan]).astype(dt(dtype))])
        values = mx.concatenate([values.flatten(), mx.array([np.nan, -np.inf, np.inf])
                                 .astype(dt(dtype)), seq[::37]])
    for side in ["left", "right"]:
        fn = lambda seq, v, s: mx.searchsorted(seq, v, side=side, stream=s)  # noqa: E731
        g = on_gpu_natively(fn, seq, values)
        c = fn(seq, values, mx.cpu)
        assert g.dtype == c.dtype
        np.testing.assert_array_equal(np.array(g), np.array(c))
    # a strided sequence
    g = on_gpu_natively(lambda seq, v, s: mx.searchsorted(seq[::2], v, stream=s), seq, values)
    np.testing.assert_array_equal(np.array(g), np.array(mx.searchsorted(seq[::2], values,
                                                                        stream=mx.cpu)))


@pytest.mark.parametrize("dtype", FLOATS)
def test_fp8_runs_natively(dtype):
    special = [0.0, -0.0, 1e-9, -3e-3, 1.9e-3, 448.0, 460.0, 1e6, -1e6, np.inf, -np.inf, np.nan,
               -np.nan]
    r = np.random.default_rng(94)
    vals = np.concatenate([special, r.standard_normal(500) * 10.0 ** r.integers(-4, 3, 500)])
    x = mx.array(vals).astype(dt(dtype), stream=mx.cpu)
    if dtype == "float16":  # every bit pattern, negative NaNs included
        x = mx.array(np.arange(65536, dtype=np.uint16).view(np.float16))
    g = on_gpu_natively(lambda x, s: mx.to_fp8(x, stream=s), x)
    c = mx.to_fp8(x, stream=mx.cpu)
    assert g.dtype == c.dtype == mx.uint8
    np.testing.assert_array_equal(np.array(g), np.array(c))
    codes = mx.arange(256, stream=mx.cpu).astype(mx.uint8, stream=mx.cpu)
    g = on_gpu_natively(lambda x, s: mx.from_fp8(x, dt(dtype), stream=s), codes)
    c = mx.from_fp8(codes, dt(dtype), stream=mx.cpu)
    assert g.dtype == c.dtype
    np.testing.assert_array_equal(host(g), host(c))


def test_float16_conversion_keeps_the_sign_and_payload_of_nan():
    bits = np.array([0x7FC00000, 0xFFC00000, 0x7FA01234, 0xFF812345, 0x3F800000],
                    dtype=np.uint32)
    x = mx.array(bits.view(np.float32))
    g = on_gpu_natively(lambda x, s: x.astype(mx.float16, stream=s), x)
    c = x.astype(mx.float16, stream=mx.cpu)
    np.testing.assert_array_equal(np.array(g).view(np.uint16), np.array(c).view(np.uint16))


@pytest.mark.parametrize("op", ["bitwise_and", "bitwise_or", "bitwise_xor"])
def test_boolean_bitwise_ops_run_natively(op):
    a = rand((7, 9), "float32", -1, 1, seed=126) > 0
    b = rand((9,), "float32", -1, 1, seed=127) > 0
    fn = lambda a, b, s: getattr(mx, op)(a, b, stream=s)  # noqa: E731
    g = on_gpu_natively(fn, a, b)
    c = fn(a, b, mx.cpu)
    assert g.dtype == c.dtype == mx.bool_
    np.testing.assert_array_equal(np.array(g), np.array(c))
