"""conv1d/2d/3d, conv_transpose1d/2d/3d, conv_general, convolve: values against MLX and
a NumPy float64 reference, dtypes, views, edge shapes, errors, vjp (vs MLX and finite
differences), jvp (MLX has none: vs NumPy) and vmap (vs MLX and vs a loop)."""

import itertools

import numpy as np
import pytest

from diff import (A, check, check_meta, check_np, check_raises, get_rmx, mlx_quirk, rand,
                  rmx_only, to_numpy)

TOL = dict(rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ NumPy reference

def np_conv(x, w, stride=1, lo=0, hi=0, kdil=1, idil=1, groups=1, flip=False):
    """conv_general in float64 for non-negative padding, straight from the definition."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    nsp = x.ndim - 2
    vec = lambda v: list(v) if isinstance(v, (list, tuple)) else [v] * nsp  # noqa: E731
    stride, lo, hi, kdil, idil = map(vec, (stride, lo, hi, kdil, idil))
    n, c = x.shape[0], x.shape[-1]
    ld = [(s - 1) * d + 1 for s, d in zip(x.shape[1:-1], idil)]
    xd = np.zeros((n, *ld, c))
    xd[(slice(None),) + tuple(slice(None, None, d) for d in idil)] = x
    xp = np.pad(xd, [(0, 0)] + list(zip(lo, hi)) + [(0, 0)])
    if flip:
        w = w[(slice(None),) + (slice(None, None, -1),) * nsp]
    ks = w.shape[1:-1]
    # MLX's size rule divides like C (toward zero); reads past the end see zeros
    t = [int((p - ((k - 1) * kd + 1)) / s) + 1
         for p, k, kd, s in zip(xp.shape[1:-1], ks, kdil, stride)]
    need = [(tt - 1) * s + (k - 1) * kd + 1 for tt, s, k, kd in zip(t, stride, ks, kdil)]
    xp = np.pad(xp, [(0, 0)] + [(0, max(0, nd - p)) for nd, p in zip(need, xp.shape[1:-1])]
                + [(0, 0)])
    o = w.shape[0]
    cg, og = c // groups, o // groups
    out = np.zeros((n, *t, o))
    for k in itertools.product(*[range(v) for v in ks]):
        sl = tuple(slice(kk * kd, kk * kd + (tt - 1) * s + 1, s)
                   for kk, kd, tt, s in zip(k, kdil, t, stride))
        patch = xp[(slice(None),) + sl]
        for g in range(groups):
            wk = w[(slice(g * og, (g + 1) * og),) + k]  # (og, cg)
            out[..., g * og:(g + 1) * og] += patch[..., g * cg:(g + 1) * cg] @ wk.T
    return out


def np_conv_transpose(x, w, stride, padding, dilation, output_padding, groups):
    """Transposed convolution by scattering: every input element adds its weighted kernel."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    nsp = x.ndim - 2
    n, c = x.shape[0], x.shape[-1]
    o, ks = w.shape[0], w.shape[1:-1]
    cg, og = c // groups, o // groups
    full = [(l - 1) * s + (k - 1) * d + 1 + op
            for l, s, k, d, op in zip(x.shape[1:-1], stride, ks, dilation, output_padding)]
    out = np.zeros((n, *[f + 0 for f in full], o))
    for i in itertools.product(*[range(v) for v in x.shape[1:-1]]):
        for k in itertools.product(*[range(v) for v in ks]):
            pos = tuple(ii * s + kk * d for ii, s, kk, d in zip(i, stride, k, dilation))
            for g in range(groups):
                v = x[(slice(None),) + i + (slice(g * cg, (g + 1) * cg),)]  # (n, cg)
                wk = w[(slice(g * og, (g + 1) * og),) + k]  # (og, cg)
                out[(slice(None),) + pos + (slice(g * og, (g + 1) * og),)] += v @ wk.T
    sl = tuple(slice(p, f - p) for p, f in zip(padding, [f - op for f, op in
                                                          zip(full, output_padding)]))
    # output_padding extends the high end
    sl = tuple(slice(s.start, s.stop + op) for s, op in zip(sl, output_padding))
    assert nsp == len(sl)
    return out[(slice(None),) + sl]


def _xw(xshape, wshape, seed=0, dt="float32"):
    return A(rand(xshape, dt, seed=seed, low=-1, high=1), dt), \
        A(rand(wshape, dt, seed=seed + 100, low=-1, high=1), dt)


# ------------------------------------------------------------------ forward values

CONV1D = [  # (L, C_in, C_out, K, stride, padding, dilation, groups)
    (9, 4, 6, 3, 1, 0, 1, 1), (9, 4, 6, 3, 2, 1, 1, 1), (10, 4, 6, 3, 3, 2, 2, 1),
    (8, 4, 6, 1, 1, 0, 1, 1), (8, 6, 4, 2, 1, 1, 1, 2), (8, 6, 6, 3, 1, 1, 1, 6),
    (12, 8, 4, 5, 2, 3, 2, 4), (5, 3, 2, 5, 1, 0, 1, 1),
]


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("case", CONV1D, ids=str)
def test_conv1d(case, n):
    ln, ci, co, k, s, p, d, g = case
    x, w = _xw((n, ln, ci), (co, k, ci // g), seed=1)
    check(lambda m, a, b: m.conv1d(a, b, stride=s, padding=p, dilation=d, groups=g), x, w,
          **TOL, np_fn=lambda a, b: np_conv(a, b, s, p, p, d, 1, g))


CONV2D = [  # (H, W, C_in, C_out, (KH, KW), stride, padding, dilation, groups)
    (7, 8, 3, 5, (3, 3), 1, 1, 1, 1), (9, 7, 4, 6, (3, 2), (2, 1), (1, 0), 1, 1),
    (10, 10, 4, 4, (3, 3), 2, 2, (2, 1), 1), (8, 8, 6, 4, (2, 2), 1, 0, 1, 2),
    (8, 8, 8, 8, (3, 3), 1, 1, 1, 8), (8, 8, 8, 16, (3, 3), (1, 2), 1, 1, 8),
    (6, 6, 16, 32, (1, 1), 1, 0, 1, 1), (6, 5, 16, 24, (1, 1), 2, 0, 1, 4),
]


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("case", CONV2D, ids=str)
def test_conv2d(case, n):
    h, wd, ci, co, k, s, p, d, g = case
    x, w = _xw((n, h, wd, ci), (co, *k, ci // g), seed=2)
    check(lambda m, a, b: m.conv2d(a, b, stride=s, padding=p, dilation=d, groups=g), x, w,
          **TOL, np_fn=lambda a, b: np_conv(a, b, s if isinstance(s, tuple) else (s, s),
                                            p if isinstance(p, tuple) else (p, p),
                                            p if isinstance(p, tuple) else (p, p),
                                            d if isinstance(d, tuple) else (d, d), 1, g))


CONV3D = [  # (spatial, C_in, C_out, K, stride, padding, dilation)
    ((5, 6, 4), 3, 4, (2, 3, 2), 1, 0, 1), ((6, 6, 6), 2, 3, (3, 3, 3), 2, 1, 1),
    ((7, 5, 6), 4, 2, (2, 2, 2), (1, 2, 1), (1, 0, 2), (2, 1, 1)),
]


@pytest.mark.parametrize("case", CONV3D, ids=str)
def test_conv3d(case):
    sp, ci, co, k, s, p, d = case
    x, w = _xw((2, *sp, ci), (co, *k, ci), seed=3)
    v = lambda t: t if isinstance(t, tuple) else (t,) * 3  # noqa: E731
    check(lambda m, a, b: m.conv3d(a, b, stride=s, padding=p, dilation=d), x, w, **TOL,
          np_fn=lambda a, b: np_conv(a, b, v(s), v(p), v(p), v(d), 1, 1))


GENERAL = [  # (x shape, w shape, kwargs, numpy-comparable)
    ((2, 9, 4), (6, 3, 4), dict(padding=([1], [2])), True),
    ((2, 9, 4), (6, 3, 4), dict(input_dilation=2), True),
    ((2, 9, 4), (6, 3, 4), dict(input_dilation=3, stride=2, padding=([2], [0])), True),
    ((2, 9, 4), (6, 3, 4), dict(flip=True, kernel_dilation=2), True),
    ((2, 9, 4), (6, 3, 2), dict(groups=2, flip=True, input_dilation=2, padding=1), True),
    ((1, 7, 6, 3), (4, 3, 2, 3), dict(stride=[2, 1], padding=([0, 1], [2, 3]),
                                      input_dilation=[2, 1], kernel_dilation=[1, 2]), True),
    ((1, 5, 5, 3), (2, 2, 2, 3), dict(flip=True, stride=[1, 2]), True),
    ((1, 5, 4, 4, 2), (3, 2, 2, 2, 2), dict(input_dilation=[1, 2, 2], flip=True), True),
    ((2, 9, 4), (6, 3, 4), dict(padding=([-1], [2])), False),
    ((2, 9, 4), (6, 3, 4), dict(padding=([1], [-2]), input_dilation=2), False),
    ((1, 8, 8, 2), (3, 3, 3, 2), dict(padding=([-2, 1], [0, -1]), stride=2), False),
    ((2, 9, 4), (6, 3, 4), dict(stride=[]), True),
    ((2, 9, 4), (6, 3, 4), dict(padding=[[1], [2]]), True),
]


@pytest.mark.parametrize("case", range(len(GENERAL)))
def test_conv_general(case):
    xs, ws, kw, comparable = GENERAL[case]
    x, w = _xw(xs, ws, seed=4 + case)
    np_fn = None
    if comparable:
        nsp = len(xs) - 2
        pad = kw.get("padding", 0)
        lo, hi = (pad[0], pad[1]) if isinstance(pad, tuple) or (
            isinstance(pad, list) and pad and isinstance(pad[0], list)) else (pad, pad)
        stride = kw.get("stride", 1) or 1
        np_fn = lambda a, b: np_conv(  # noqa: E731
            a, b, stride if isinstance(stride, list) else [stride] * nsp,
            lo if isinstance(lo, list) else [lo] * nsp, hi if isinstance(hi, list) else [hi] * nsp,
            kw.get("kernel_dilation", 1), kw.get("input_dilation", 1), kw.get("groups", 1),
            kw.get("flip", False))
    check(lambda m, a, b: m.conv_general(a, b, **kw), x, w, **TOL, np_fn=np_fn)


TRANSPOSE = [  # (nsp, spatial, C_in, C_out, K, stride, padding, dilation, output_padding, groups)
    (1, (7,), 4, 6, (3,), 1, 0, 1, 0, 1), (1, (7,), 4, 6, (3,), 2, 1, 1, 1, 1),
    (1, (6,), 4, 6, (4,), 3, 2, 2, 2, 2), (1, (5,), 3, 3, (3,), 2, 0, 1, 0, 3),
    (2, (5, 4), 3, 4, (3, 3), (2, 1), (1, 0), 1, (1, 0), 1),
    (2, (4, 4), 4, 6, (2, 3), 2, 0, (1, 2), 1, 2),
    (3, (3, 4, 3), 2, 3, (2, 3, 2), (2, 1, 2), (0, 1, 1), 1, (1, 0, 0), 1),
]


@pytest.mark.parametrize("case", TRANSPOSE, ids=str)
def test_conv_transpose(case):
    nsp, sp, ci, co, k, s, p, d, op, g = case
    x, w = _xw((2, *sp, ci), (co, *k, ci // g), seed=5)
    name = f"conv_transpose{nsp}d"
    v = lambda t: tuple(t) if isinstance(t, tuple) else (t,) * nsp  # noqa: E731
    check(lambda m, a, b: getattr(m, name)(a, b, stride=s, padding=p, dilation=d,
                                           output_padding=op, groups=g), x, w, **TOL,
          np_fn=lambda a, b: np_conv_transpose(a, b, v(s), v(p), v(d), v(op), g))


def test_conv_transpose_mlx_edges():
    """Padding larger than the dilated kernel crops; negative padding and output_padding
    beyond the stride are accepted as MLX does."""
    x, w = _xw((2, 8, 4), (6, 3, 4), seed=6)
    for kw in [dict(padding=2), dict(padding=3), dict(padding=-1), dict(stride=2, output_padding=2),
               dict(stride=2, output_padding=-1), dict(padding=5)]:
        check(lambda m, a, b: m.conv_transpose1d(a, b, **kw), x, w, **TOL)


# ------------------------------------------------------------------ dtypes, views, shapes

@pytest.mark.parametrize("xdt,wdt", [("float16", "float16"), ("bfloat16", "bfloat16"),
                                     ("float32", "float16"), ("float16", "int32"),
                                     ("float16", "bfloat16"), ("float32", "int8")])
def test_dtypes(xdt, wdt):
    x = A(rand((2, 7, 6, 4), xdt, seed=7, low=-1, high=1), xdt)
    w = A(rand((5, 3, 3, 4), wdt, seed=8, low=-1, high=1), wdt)
    tol = {"float16": dict(rtol=5e-3, atol=5e-3), "bfloat16": dict(rtol=3e-2, atol=3e-2)}
    check(lambda m, a, b: m.conv2d(a, b, padding=1), x, w, **tol.get(xdt, TOL))
    check(lambda m, a, b: m.conv_transpose2d(a, b, stride=2), x, w, **tol.get(xdt, TOL))


def test_float64_dtype():
    """Convolutions promote to float64 as in MLX (where its CPU kernels accept float64:
    no padding). MLX's float64 results carry float32 precision only, hence the tolerance;
    rmx's float64 precision is checked against NumPy in test_float64_all_paths."""
    x = A(rand((2, 7, 6, 4), "float64", seed=7), "float64")
    w = A(rand((5, 3, 3, 4), "float64", seed=8), "float64")
    check(lambda m, a, b: m.conv2d(a, b), x, w, rtol=1e-5, atol=1e-5)
    check(lambda m, a, b: m.conv1d(a[:, 0], b[:, 0].astype(m.float32)), x, w, rtol=1e-5,
          atol=1e-5)


@rmx_only
@pytest.mark.parametrize("kw", [dict(), dict(padding=1), dict(groups=2),
                                dict(flip=True, input_dilation=2)], ids=str)
def test_float64_all_paths(kw):
    """MLX 0.32.4 raises 'unsupported data type' at eval for float64 in most kernel paths
    (padding, groups, flips); rmx computes them all in float64."""
    x = A(rand((2, 7, 6, 4), "float64", seed=7), "float64")
    w = A(rand((6, 3, 3, 4 // kw.get("groups", 1)), "float64", seed=8), "float64")
    p = kw.get("padding", 0)
    check_np(lambda m, a, b: m.conv_general(a, b, **kw), lambda a, b: np_conv(
        a, b, 1, p, p, 1, kw.get("input_dilation", 1), kw.get("groups", 1),
        kw.get("flip", False)), x, w, rtol=1e-12, atol=1e-12, dtype="float64")


@mlx_quirk
def test_complex_weight_keeps_real_part():
    """MLX 0.32.4 promotes a real input with a complex weight to complex64 but convolves
    with the weight's real part only; rmx matches it."""
    x = A(rand((1, 6, 2), "float32", seed=9))
    w = A(rand((2, 3, 2), "complex64", seed=10))
    check(lambda m, a, b: m.conv1d(a, b), x, w, **TOL)


VIEWS = {
    "transposed": (lambda t: t.transpose(0, 2, 1, 3), (2, 6, 7, 4)),
    "strided": (lambda t: t[:, ::2, 1:, :], (2, 14, 8, 4)),
    "reversed": (lambda t: t[::-1, :, ::-1], (2, 7, 6, 4)),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_noncontiguous(view):
    f, shape = VIEWS[view]
    x = A(rand(shape, "float32", seed=11, low=-1, high=1), view=f)
    w = A(rand((3, 4, 3, 5), "float32", seed=12, low=-1, high=1),
          view=lambda t: t.transpose(0, 2, 1, 3)[..., :4])
    check(lambda m, a, b: m.conv2d(a, b, padding=1), x, w, **TOL,
          np_fn=lambda a, b: np_conv(a, b, 1, 1, 1))


def test_edge_shapes():
    check(lambda m: m.conv1d(m.ones((0, 8, 4)), m.ones((6, 3, 4))))
    check(lambda m: m.conv2d(m.ones((0, 5, 5, 2)), m.ones((3, 2, 2, 2)), padding=1))
    check(lambda m: m.conv1d(m.ones((2, 0, 4)), m.ones((6, 3, 4)), padding=2))
    check(lambda m: m.conv1d(m.ones((1, 1, 1)), m.ones((1, 1, 1))))
    # the output size MLX computes for a kernel overhanging the input
    check_meta(lambda m: m.conv1d(m.ones((3, 3, 2)), m.ones((2, 4, 2)), stride=2))
    check_meta(lambda m: m.conv2d(m.ones((1, 5, 3, 2)), m.ones((2, 3, 4, 2)), stride=(1, 3)))


@rmx_only
@pytest.mark.parametrize("shape", [((3, 3, 2), (2, 4, 2), 2), ((2, 7, 3), (4, 5, 3), 3)], ids=str)
def test_kernel_overhang_reads_zeros(shape):
    """MLX sizes the output with C's truncating division, so a kernel that overhangs the
    input by less than a stride still gives one output; MLX then reads past the input
    (other batch elements or garbage), rmx reads zeros, as padding."""
    xs, ws, s = shape
    x, w = _xw(xs, ws, seed=16)
    check_np(lambda m, a, b: m.conv1d(a, b, stride=s), lambda a, b: np_conv(a, b, s), x, w,
             **TOL)


@rmx_only
def test_zero_sized_weights():
    """MLX crashes the process (an SGEMM argument error) on these; rmx returns the empty
    sums: zeros, or an empty output."""
    rx = get_rmx()
    out = rx.conv1d(rx.ones((2, 8, 0)), rx.ones((6, 3, 0)))
    assert out.shape == (2, 6, 6) and np.array_equal(np.array(out), np.zeros((2, 6, 6)))
    out = rx.conv1d(rx.ones((2, 8, 4)), rx.ones((0, 3, 4)))
    assert out.shape == (2, 6, 0)
    out = rx.conv1d(rx.ones((2, 8, 4)), rx.ones((6, 0, 4)))
    assert out.shape == (2, 9, 6) and not np.any(np.array(out))


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("na,nv", [(7, 3), (7, 4), (3, 7), (4, 7), (5, 5), (1, 1), (6, 1)])
def test_convolve(mode, na, nv):
    a = A(rand((na,), "float32", seed=13))
    v = A(rand((nv,), "float32", seed=14))
    check(lambda m, p, q: m.convolve(p, q, mode=mode), a, v, **TOL,
          np_fn=lambda p, q: np.convolve(p, q, mode=mode))


def test_convolve_dtypes():
    check(lambda m: m.convolve(m.ones(3, dtype=m.int32), m.arange(5.0)))
    check(lambda m: m.convolve(m.arange(5.0, dtype=m.float16), m.ones(3, dtype=m.float16)))
    check(lambda m: m.convolve(m.arange(5.0, dtype=m.float64), m.ones(2)))
    check(lambda m: m.convolve(m.arange(5.0, dtype=m.bfloat16), m.ones(2)), rtol=1e-2,
          atol=1e-2)


# ------------------------------------------------------------------ errors

X1, W1 = (lambda m: m.ones((2, 8, 4))), (lambda m: m.ones((6, 3, 4)))
ERRORS = {
    "int_input": lambda m: m.conv1d(m.ones((2, 8, 4), dtype=m.int32), W1(m)),
    "bool_input": lambda m: m.conv1d(m.ones((2, 8, 4), dtype=m.bool_), W1(m)),
    "complex_input": lambda m: m.conv1d(m.ones((2, 8, 4), dtype=m.complex64), W1(m)),
    "channels": lambda m: m.conv1d(X1(m), m.ones((6, 3, 3))),
    "channels_2d": lambda m: m.conv2d(m.ones((1, 4, 4, 4)), m.ones((2, 2, 2, 3))),
    "groups_in": lambda m: m.conv1d(X1(m), m.ones((6, 3, 2)), groups=3),
    "groups_out": lambda m: m.conv1d(X1(m), m.ones((5, 3, 2)), groups=2),
    "groups_wt": lambda m: m.conv1d(X1(m), W1(m), groups=2),
    "groups_neg": lambda m: m.conv2d(m.ones((1, 4, 4, 4)), m.ones((2, 2, 2, 4)), groups=-1),
    "groups_3d": lambda m: m.conv3d(m.ones((1, 4, 4, 4, 2)), m.ones((2, 2, 2, 2, 1)), groups=2),
    "groups_t3d": lambda m: m.conv_transpose3d(m.ones((1, 4, 4, 4, 2)),
                                               m.ones((2, 2, 2, 2, 1)), groups=2),
    "stride0": lambda m: m.conv1d(X1(m), W1(m), stride=0),
    "stride_neg": lambda m: m.conv2d(m.ones((1, 4, 4, 4)), m.ones((2, 2, 2, 4)), stride=(1, -1)),
    "dilation0": lambda m: m.conv1d(X1(m), W1(m), dilation=0),
    "input_dilation0": lambda m: m.conv_general(X1(m), W1(m), input_dilation=0),
    "transpose_stride0": lambda m: m.conv_transpose1d(X1(m), W1(m), stride=0),
    "too_small": lambda m: m.conv1d(X1(m), m.ones((6, 9, 4))),
    "too_small_crop": lambda m: m.conv1d(X1(m), W1(m), padding=-3),
    "transpose_pad": lambda m: m.conv_transpose1d(X1(m), W1(m), padding=6),
    "input_rank": lambda m: m.conv1d(m.ones((8, 4)), W1(m)),
    "weight_rank": lambda m: m.conv1d(X1(m), m.ones((6, 4))),
    "conv2d_on_3d": lambda m: m.conv2d(X1(m), W1(m)),
    "four_spatial": lambda m: m.conv_general(m.ones((1, 3, 3, 3, 3, 2)),
                                             m.ones((1, 2, 2, 2, 2, 2))),
    "stride_len": lambda m: m.conv_general(X1(m), W1(m), stride=[1, 1]),
    "pad_len": lambda m: m.conv_general(X1(m), W1(m), padding=[1, 1]),
    "pad_pair_len": lambda m: m.conv_general(X1(m), W1(m), padding=([1], [1, 1])),
    "kdil_len": lambda m: m.conv_general(X1(m), W1(m), kernel_dilation=[1, 1]),
    "scalar_input": lambda m: m.conv1d(1.0, W1(m)),
    "list_input": lambda m: m.conv1d([[[1.0] * 4] * 8], W1(m)),
    "float_stride": lambda m: m.conv1d(X1(m), W1(m), stride=1.5),
    "huge_stride": lambda m: m.conv1d(X1(m), W1(m), stride=2 ** 40),
    "huge_padding": lambda m: m.conv_general(X1(m), W1(m), padding=([2 ** 31], [0])),
    "int32_max_padding": lambda m: m.conv_transpose1d(X1(m), W1(m), padding=2 ** 31 - 1),
    "tuple3_for_2d": lambda m: m.conv2d(m.ones((1, 4, 4, 4)), m.ones((2, 2, 2, 4)),
                                        stride=(1, 1, 1)),
    "tuple1_for_2d": lambda m: m.conv2d(m.ones((1, 4, 4, 4)), m.ones((2, 2, 2, 4)),
                                        padding=(1,)),
    "pad_three_lists": lambda m: m.conv_general(X1(m), W1(m), padding=[[1], [2], [3]]),
    "convolve_2d": lambda m: m.convolve(m.ones((3, 3)), m.ones(5)),
    "convolve_0d": lambda m: m.convolve(m.array(1.0), m.ones(5)),
    "convolve_empty": lambda m: m.convolve(m.ones(0), m.ones(5)),
    "convolve_mode": lambda m: m.convolve(m.ones(3), m.ones(5), mode="x"),
    "convolve_int": lambda m: m.convolve(m.ones(3, dtype=m.int32), m.ones(5, dtype=m.int32)),
    "convolve_int_longer": lambda m: m.convolve(m.ones(6, dtype=m.int32), m.ones(5)),
    "convolve_list": lambda m: m.convolve([1.0, 2.0], m.ones(1)),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors(name):
    check_raises(ERRORS[name])


@rmx_only
def test_groups_zero_is_an_error():
    """MLX 0.32.4 dies of a division by zero (SIGFPE) here; rmx raises ValueError."""
    rx = get_rmx()
    with pytest.raises(ValueError):
        rx.conv1d(rx.ones((2, 8, 4)), rx.ones((6, 3, 4)), groups=0)
    with pytest.raises(ValueError):
        rx.conv_general(rx.ones((2, 8, 4)), rx.ones((6, 3, 4)), groups=0)


@rmx_only
def test_extreme_negative_padding():
    """A crop by -2**31 leaves nothing: ValueError (MLX raises OverflowError for the
    cropped shape instead)."""
    rx = get_rmx()
    with pytest.raises(ValueError):
        rx.conv_general(rx.ones((2, 8, 4)), rx.ones((6, 3, 4)), padding=([-2 ** 31], [0]))


def test_accepted_argument_forms():
    x, w = _xw((1, 6, 6, 4), (2, 3, 3, 4), seed=15)
    check(lambda m, a, b: m.conv2d(a, b, stride=[2, 1], padding=[1, 0]), x, w, **TOL)
    check(lambda m, a, b: m.conv2d(a, b, 2, 1, 1, 1), x, w, **TOL)
    check(lambda m, a, b: m.conv_general(a, b, padding=((1,), (2,)), stride=2), x, w, **TOL)
    check(lambda m, a, b: m.conv_general(a, b, 1, 1, stream=m.cpu), x, w, **TOL)
    check(lambda m, a, b: m.conv2d(a, b, stride=np.int64(2), stream=m.cpu), x, w, **TOL)


# ------------------------------------------------------------------ gradients

GRAD_CASES = [  # (x shape, w shape, conv_general kwargs)
    ((2, 9, 4), (6, 3, 4), {}),
    ((2, 9, 4), (6, 3, 4), dict(stride=2)),
    ((2, 10, 4), (6, 3, 4), dict(stride=3, padding=([1], [2]))),
    ((2, 9, 4), (6, 3, 4), dict(kernel_dilation=2, padding=2)),
    ((2, 9, 4), (6, 3, 4), dict(input_dilation=2)),
    ((2, 9, 4), (6, 3, 4), dict(flip=True, stride=2)),
    ((2, 9, 4), (6, 3, 2), dict(groups=2)),
    ((2, 9, 6), (6, 3, 1), dict(groups=6, padding=1)),
    ((2, 11, 4), (6, 3, 2), dict(stride=2, padding=([1], [2]), kernel_dilation=2,
                                 input_dilation=3, groups=2, flip=True)),
    ((2, 9, 4), (6, 3, 4), dict(padding=([-1], [0]))),
    ((2, 6, 7, 3), (4, 3, 2, 3), dict(stride=[2, 1], padding=([1, 0], [0, 2]))),
    ((1, 7, 6, 4), (4, 3, 3, 2), dict(groups=2, kernel_dilation=[1, 2], input_dilation=[2, 1])),
    ((1, 5, 4, 4, 2), (3, 2, 3, 2, 2), dict(stride=[1, 2, 1], padding=1, flip=True)),
]


@pytest.mark.parametrize("case", range(len(GRAD_CASES)))
def test_vjp_vs_mlx(case):
    xs, ws, kw = GRAD_CASES[case]
    x, w = _xw(xs, ws, seed=20 + case)
    ct = A(rand((64,), "float32", seed=40 + case))

    def f(m, a, b, c):
        def loss(p, q):
            y = m.conv_general(p, q, **kw)
            return (y * c[: y.size].reshape(y.shape)).sum()
        return m.grad(loss, argnums=(0, 1))(a, b)
    if np.prod(xs[:-1]) * 8 > 64:
        ct = A(rand((4096,), "float32", seed=40 + case))
    check(f, x, w, ct, **TOL)


def test_vjp_transpose_and_convolve():
    x, w = _xw((2, 5, 4), (6, 3, 2), seed=30)
    check(lambda m, a, b: m.grad(lambda p, q: (m.conv_transpose1d(
        p, q, stride=2, padding=1, output_padding=1, groups=2) ** 2).sum(), argnums=(0, 1))(a, b),
        x, w, **TOL)
    a, v = A(rand((7,), "float32", seed=31)), A(rand((3,), "float32", seed=32))
    for mode in ["full", "valid", "same"]:
        check(lambda m, p, q: m.grad(lambda s, t: (m.convolve(s, t, mode=mode) ** 2).sum(),
                                     argnums=(0, 1))(p, q), a, v, **TOL)


def _fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


FD_CASES = [GRAD_CASES[i] for i in (0, 2, 4, 5, 8, 10)] + [((1, 3, 1), (1, 4, 1), dict(stride=2))]


@rmx_only
@pytest.mark.parametrize("case", range(len(FD_CASES)))
def test_vjp_finite_differences(case):
    rx = get_rmx()
    xs, ws, kw = FD_CASES[case]
    g = np.random.default_rng(50 + case)
    x, w = g.standard_normal(xs), g.standard_normal(ws)
    y0 = np.array(rx.conv_general(rx.array(x, dtype=rx.float64), rx.array(w, dtype=rx.float64),
                                  **kw))
    c = g.standard_normal(y0.shape)

    def loss(p, q):
        return (rx.conv_general(p, q, **kw) * rx.array(c, dtype=rx.float64)).sum()
    gx, gw = rx.grad(loss, argnums=(0, 1))(rx.array(x, dtype=rx.float64),
                                           rx.array(w, dtype=rx.float64))
    ref_x = _fd(lambda v: float(loss(rx.array(v, dtype=rx.float64),
                                     rx.array(w, dtype=rx.float64)).item()), x)
    ref_w = _fd(lambda v: float(loss(rx.array(x, dtype=rx.float64),
                                     rx.array(v, dtype=rx.float64)).item()), w)
    assert np.allclose(np.array(gx), ref_x, rtol=1e-6, atol=1e-7)
    assert np.allclose(np.array(gw), ref_w, rtol=1e-6, atol=1e-7)


@rmx_only
@pytest.mark.parametrize("case", [0, 3, 6, 8, 11, 12])
def test_jvp_vs_numpy(case):
    """MLX has no jvp for convolutions; the tangent is conv(tx, w) + conv(x, tw)."""
    rx = get_rmx()
    xs, ws, kw = GRAD_CASES[case]
    g = np.random.default_rng(60 + case)
    x, w, tx, tw = (g.standard_normal(s) for s in (xs, ws, xs, ws))
    arr = lambda v: rx.array(v, dtype=rx.float64)  # noqa: E731
    f = lambda p, q: rx.conv_general(p, q, **kw)  # noqa: E731
    out, (tan,) = rx.jvp(f, [arr(x), arr(w)], [arr(tx), arr(tw)])
    ref = np.array(f(arr(tx), arr(w))) + np.array(f(arr(x), arr(tw)))
    assert np.allclose(np.array(tan), ref, rtol=1e-10, atol=1e-10)
    if all((p if isinstance(p, int) else min(min(p[0]), min(p[1])) if isinstance(p, tuple)
            else 0) >= 0 for p in [kw.get("padding", 0)]):
        pad = kw.get("padding", 0)
        lo, hi = pad if isinstance(pad, tuple) else (pad, pad)
        np_ref = np_conv(tx, w, kw.get("stride", 1), lo, hi, kw.get("kernel_dilation", 1),
                         kw.get("input_dilation", 1), kw.get("groups", 1), kw.get("flip", False)) \
            + np_conv(x, tw, kw.get("stride", 1), lo, hi, kw.get("kernel_dilation", 1),
                      kw.get("input_dilation", 1), kw.get("groups", 1), kw.get("flip", False))
        assert np.allclose(np.array(tan), np_ref, rtol=1e-10, atol=1e-10)
    # one argument at a time
    _, (tx_only,) = rx.jvp(lambda p: f(p, arr(w)), [arr(x)], [arr(tx)])
    assert np.allclose(np.array(tx_only), np.array(f(arr(tx), arr(w))), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ vmap

VMAP_AXES = [(0, None), (None, 0), (0, 0), (2, 1), (3, None), (None, 3)]
VMAP_KW = [dict(), dict(stride=2, padding=1), dict(groups=2)]


def _vmap_inputs(axes, kw):
    ax, aw = axes
    xs, ws = [2, 9, 4], [6, 3, 4 // kw.get("groups", 1)]
    if ax is not None:
        xs.insert(ax, 3)
    if aw is not None:
        ws.insert(aw, 3)
    return _xw(xs, ws, seed=70)


@pytest.mark.parametrize("axes", VMAP_AXES, ids=str)
@pytest.mark.parametrize("kw", VMAP_KW, ids=str)
def test_vmap(axes, kw):
    if axes[1] is not None and kw.get("groups", 1) > 1:
        pytest.skip("MLX 0.32.4's vmap over a grouped convolution's weight gives wrong values "
                    "(it disagrees with its own loop); test_vmap_vs_loop covers it")
    x, w = _vmap_inputs(axes, kw)
    check(lambda m, a, b: m.vmap(lambda p, q: m.conv1d(p, q, **kw), in_axes=axes)(a, b), x, w,
          **TOL)


@rmx_only
@pytest.mark.parametrize("axes", VMAP_AXES, ids=str)
@pytest.mark.parametrize("kw", VMAP_KW, ids=str)
def test_vmap_vs_loop(axes, kw):
    ax, aw = axes
    x, w = _vmap_inputs(axes, kw)
    rx = get_rmx()
    xr, wr = x.make(rx), w.make(rx)
    f = lambda p, q: rx.conv1d(p, q, **kw)  # noqa: E731
    outs = [f(xr if ax is None else rx.take(xr, i, axis=ax),
              wr if aw is None else rx.take(wr, i, axis=aw)) for i in range(3)]
    got = to_numpy(rx.vmap(f, in_axes=axes)(xr, wr))
    assert np.allclose(got, to_numpy(rx.stack(outs)), rtol=1e-5, atol=1e-5)


@rmx_only
def test_vmap_of_grad():
    """Per-example weight gradients (MLX cannot vmap its conv vjp: AsStrided has no vmap)."""
    rx = get_rmx()
    g = np.random.default_rng(71)
    x, w = g.standard_normal((3, 2, 8, 4)), g.standard_normal((6, 3, 4))
    arr = lambda v: rx.array(v, dtype=rx.float64)  # noqa: E731
    gf = rx.grad(lambda p, q: (rx.conv1d(p, q, stride=2, padding=1) ** 2).sum(), argnums=1)
    got = np.array(rx.vmap(gf, in_axes=(0, None))(arr(x), arr(w)))
    ref = np.stack([np.array(gf(arr(x[i]), arr(w))) for i in range(3)])
    assert np.allclose(got, ref, rtol=1e-12, atol=1e-12)
