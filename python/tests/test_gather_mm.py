"""gather_mm, gather_qmm, block_masked_mm, segmented_mm and hadamard_transform against MLX
0.32.4 and NumPy float64: values, shapes, dtypes, errors, gradients (MLX's vjp where it has
one, finite differences), jvp and vmap (a loop where MLX has no rule)."""

import numpy as np
import pytest

import mlx.core as MX
from diff import A, check, check_raises, get_rmx, rand, rmx_only, to_numpy


def idx(values, dtype="uint32"):
    return A(np.array(values), dtype)


# ---------------------------------------------------------------- gather_mm

def np_gather_mm(a, b, li=None, ri=None):
    a2 = a[None] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    af = a2.reshape(int(np.prod(a2.shape[:-2])), *a2.shape[-2:])
    bf = b2.reshape(int(np.prod(b2.shape[:-2])), *b2.shape[-2:])
    ag = af[np.asarray(li)] if li is not None else a2
    bg = bf[np.asarray(ri)] if ri is not None else b2
    out = ag @ bg
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


GATHER_CASES = [
    ((3, 2, 4), (5, 4, 6), [0, 2], [1, 4]),
    ((3, 2, 4), (5, 4, 6), [[0], [2]], [1, 4, 3]),
    ((2, 3, 2, 4), (5, 4, 6), [0, 5], [1, 4]),
    ((3, 2, 4), (5, 4, 6), [0, 2], [[1, 4], [2, 3], [0, 0]]),
    ((3, 2, 4), (5, 4, 6), 1, 2),
    ((2, 4), (5, 4, 6), None, [1, 4, 4]),
    ((4,), (5, 4, 6), None, [1, 4]),
    ((3, 2, 4), (4,), [1], None),
    ((3, 1, 4), (4, 6), [2, 0, 2], None),
    ((3, 2, 4), (5, 4, 6), [], []),
    ((3, 0, 4), (5, 4, 6), [0, 2], [1, 4]),
    ((3, 2, 0), (5, 0, 6), [0, 2], [1, 4]),
    ((8, 1, 16), (4, 16, 32), None, [[0], [3], [1], [1], [2], [0], [3], [2]]),
]


@pytest.mark.parametrize("ash,bsh,li,ri", GATHER_CASES)
def test_gather_mm_matches_mlx_and_numpy(ash, bsh, li, ri):
    a, b = A(rand(ash, seed=1)), A(rand(bsh, seed=2))
    li_ = None if li is None else idx(li)
    ri_ = None if ri is None else idx(ri)
    check(lambda m, a, b, li, ri: m.gather_mm(a, b, li, ri), a, b, li_, ri_,
          rtol=1e-5, atol=1e-5,
          np_fn=lambda a, b, li, ri: np_gather_mm(a, b, li, ri))


def test_gather_mm_without_indices_is_matmul():
    check(lambda m, a, b: m.gather_mm(a, b), A(rand((3, 2, 4))), A(rand((1, 4, 6), seed=2)),
          rtol=1e-5, atol=1e-5)
    check_raises(lambda m, a, b: m.gather_mm(a, b), A(rand((2, 4), "int32")),
                 A(rand((4, 2), "int32")), err=ValueError)


@pytest.mark.parametrize("idt", ["uint32", "int32", "int64", "uint8", "int16"])
def test_gather_mm_index_dtypes(idt):
    check(lambda m, a, b, li, ri: m.gather_mm(a, b, li, ri),
          A(rand((3, 2, 4), seed=1)), A(rand((5, 4, 6), seed=2)),
          idx([0, 2, 1], idt), idx([4, 1, 1], idt), rtol=1e-5, atol=1e-5, np_fn=np_gather_mm)


@rmx_only
@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
def test_gather_mm_other_float_types(dt):
    # MLX's CPU kernel raises RuntimeError("[GatherMM::eval] Currently only supports
    # float32") when evaluated (its GPU takes half types); rmx computes every real float
    mx = get_rmx()
    tol = {"float16": 2e-2, "bfloat16": 6e-2}.get(dt, 1e-12)
    a, b = rand((3, 2, 4), dt, seed=1), rand((5, 4, 6), dt, seed=2)
    li, ri = np.array([0, 2, 1]), np.array([4, 1, 1])
    got = mx.gather_mm(mx.array(a, dtype=getattr(mx, dt)), mx.array(b, dtype=getattr(mx, dt)),
                       mx.array(li), mx.array(ri))
    assert got.dtype == getattr(mx, dt)
    exp = np_gather_mm(a.astype(np.float64), b.astype(np.float64), li, ri)
    np.testing.assert_allclose(to_numpy(got).astype(np.float64), exp, rtol=tol, atol=tol)
    # mixed: int32 x float16 promotes to float16, as MLX's op does
    got = mx.gather_mm(mx.ones((2, 4), mx.int32), mx.ones((5, 4, 6), mx.float16), None,
                       mx.array([0, 1, 1, 4]), sorted_indices=True)
    assert got.dtype == mx.float16 and got.shape == (4, 2, 6)
    assert np.all(to_numpy(got) == 4)
    assert MX.gather_mm(MX.ones((2, 4), MX.int32), MX.ones((5, 4, 6), MX.float16), None,
                        MX.array([0, 1, 1, 4])).dtype == MX.float16


def test_gather_mm_sorted_flag():
    check(lambda m, a, b, ri: m.gather_mm(a, b, None, ri, sorted_indices=True),
          A(rand((2, 4), "int32")), A(rand((5, 4, 6), seed=2)), idx([0, 1, 1, 4]),
          rtol=1e-5, atol=1e-5)


def test_gather_mm_views():
    a = A(rand((4, 3, 2), seed=1), view=lambda x: x.transpose(0, 2, 1))
    b = A(rand((6, 5, 4), seed=2), view=lambda x: x[::2, ::-1, :].transpose(0, 2, 1))
    check(lambda m, a, b, li, ri: m.gather_mm(a, b, li, ri), a, b, idx([3, 0]), idx([2, 1]),
          rtol=1e-5, atol=1e-5, np_fn=np_gather_mm)


@pytest.mark.parametrize("case", [
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), None, m.array([1, 4])),
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), m.array([0, 2]), None),
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), m.array([0.0, 2]),
                          m.array([1, 4])),
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), m.array([True]),
                          m.array([1])),
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 5, 6)), m.array([0, 2]),
                          m.array([1, 4])),
    lambda m: m.gather_mm(m.ones((3, 2, 4), m.int32), m.ones((5, 4, 6), m.int32),
                          m.array([0, 2]), m.array([1, 4])),
    lambda m: m.gather_mm(m.ones((3, 2, 4), m.complex64), m.ones((5, 4, 6)),
                          m.array([0, 2]), m.array([1, 4])),
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), m.array([0, 1, 2]),
                          m.array([1, 4])),
    lambda m: m.gather_mm(1.0, m.ones((5, 4, 6))),
    lambda m: m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), [0], [1]),
])
def test_gather_mm_errors_match_mlx(case):
    check_raises(lambda m: case(m))


def test_gather_mm_error_messages():
    mx = get_rmx()
    for m in (mx, MX):
        with pytest.raises(ValueError, match=r"\[gather_mm\] Got indices with invalid dtype"):
            m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 4, 6)), m.array([0.0]), m.array([1]))
        with pytest.raises(ValueError, match=r"\[gather_mm\] Last dimension of first input"):
            m.gather_mm(m.ones((3, 2, 4)), m.ones((5, 5, 6)), m.array([0]), m.array([1]))
        with pytest.raises(ValueError, match=r"\[gather_mm\] Only real floating point"):
            m.gather_mm(m.ones((3, 2, 4), m.int32), m.ones((5, 4, 6), m.int32), m.array([0]),
                        m.array([1]))


@rmx_only
def test_gather_mm_out_of_range_index_raises():
    # MLX reads past the operand; rmx refuses (the take under the hood checks indices)
    mx = get_rmx()
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        mx.eval(mx.gather_mm(mx.ones((3, 2, 4)), mx.ones((5, 4, 6)), mx.array([0, 7]),
                             mx.array([1, 4])))


def test_gather_mm_moe_path_vjp_and_errors_match_mlx():
    # tokens [T, 1, 1, D] times top-2 of E experts [E, D, H]: rmx multiplies by every expert
    # and picks (`every_matrix_then_pick`); values and gradients as MLX's
    x, w = A(rand((6, 1, 1, 8), seed=11)), A(rand((3, 8, 5), seed=12))
    ri = idx([[0, 2], [1, 1], [2, 0], [0, 1], [2, 2], [1, 0]])
    ct = A(rand((6, 2, 1, 5), seed=13))
    check(lambda m, x, w, ri: m.gather_mm(x, w, None, ri), x, w, ri, rtol=1e-5, atol=1e-5,
          np_fn=lambda x, w, ri: np_gather_mm(x, w, None, ri))
    check(lambda m, x, w, ri, ct: m.vjp(lambda x, w: m.gather_mm(x, w, None, ri), [x, w],
                                        [ct])[1], x, w, ri, ct, rtol=1e-5, atol=1e-5)
    mx = get_rmx()
    with pytest.raises(IndexError):
        mx.eval(mx.gather_mm(mx.ones((6, 1, 1, 8)), mx.ones((3, 8, 5)), None,
                             mx.array([[0, 3]] * 6)))


def _gm_inputs(seed=3):
    return (A(rand((3, 2, 4), seed=seed)), A(rand((5, 4, 6), seed=seed + 1)),
            idx([0, 2, 2]), idx([[1, 4, 4], [0, 0, 3]]))


def test_gather_mm_vjp_matches_mlx():
    a, b, li, ri = _gm_inputs()
    ct = A(rand((2, 3, 2, 6), seed=9))
    check(lambda m, a, b, li, ri, ct: m.vjp(lambda a, b: m.gather_mm(a, b, li, ri), [a, b],
                                            [ct])[1], a, b, li, ri, ct, rtol=1e-5, atol=1e-5)


@pytest.mark.mlx_quirk
def test_gather_mm_vjp_vector_lhs():
    # MLX 0.32.4's GatherMM vjp fails for a 1-d `a` with no lhs_indices ("[flatten]
    # start_axis must be less than or equal to end_axis"); rmx returns the gradient
    mx = get_rmx()
    a, b = rand((4,), seed=1), rand((5, 4, 6), seed=2)
    ri, ct = np.array([1, 4, 1]), rand((3, 6), seed=3)
    with pytest.raises(ValueError):
        MX.vjp(lambda a, b: MX.gather_mm(a, b, None, MX.array(ri)), [MX.array(a), MX.array(b)],
               [MX.array(ct)])
    _, (ga, gb) = mx.vjp(lambda a, b: mx.gather_mm(a, b, None, mx.array(ri)),
                         [mx.array(a), mx.array(b)], [mx.array(ct)])
    exp_a = sum(b[r] @ c for r, c in zip(ri, ct))
    exp_b = np.zeros_like(b)
    for r, c in zip(ri, ct):
        exp_b[r] += np.outer(a, c)
    np.testing.assert_allclose(to_numpy(ga), exp_a, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(gb), exp_b, rtol=1e-5, atol=1e-5)


@rmx_only
def test_gather_mm_grad_matches_finite_differences():
    # float64 (MLX's CPU GatherMM is float32 only; its vjp is compared above)
    mx = get_rmx()
    a, b = rand((3, 2, 4), "float64", seed=1), rand((5, 4, 6), "float64", seed=2)
    li, ri = np.array([0, 2, 2]), np.array([[1, 4, 4], [0, 0, 3]])
    w = rand((2, 3, 2, 6), "float64", seed=5)
    f = lambda a, b: (np_gather_mm(a, b, li, ri) * w).sum()  # noqa: E731
    f64 = lambda x: mx.array(x, dtype=mx.float64)  # noqa: E731
    ga, gb = mx.grad(lambda a, b: (mx.gather_mm(a, b, mx.array(li), mx.array(ri))
                                   * f64(w)).sum(), argnums=(0, 1))(f64(a), f64(b))
    for i, (x, g) in enumerate(((a, ga), (b, gb))):
        fd = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            hi, lo = x.copy(), x.copy()
            hi[j] += 1e-6
            lo[j] -= 1e-6
            args_hi = (hi, b) if i == 0 else (a, hi)
            args_lo = (lo, b) if i == 0 else (a, lo)
            fd[j] = (f(*args_hi) - f(*args_lo)) / 2e-6
        np.testing.assert_allclose(to_numpy(g), fd, rtol=1e-6, atol=1e-6)


@rmx_only
def test_gather_mm_jvp_and_vmap():
    # MLX 0.32.4 has neither rule for GatherMM; rmx's composite gives both
    mx = get_rmx()
    a, b = rand((3, 2, 4), seed=1), rand((5, 4, 6), seed=2)
    ta, tb = rand((3, 2, 4), seed=3), rand((5, 4, 6), seed=4)
    li, ri = mx.array([0, 2]), mx.array([1, 4])
    _, (t,) = mx.jvp(lambda a, b: mx.gather_mm(a, b, li, ri), [mx.array(a), mx.array(b)],
                     [mx.array(ta), mx.array(tb)])
    exp = np_gather_mm(ta, b, li, ri) + np_gather_mm(a, tb, li, ri)
    np.testing.assert_allclose(to_numpy(t), exp, rtol=1e-5, atol=1e-5)
    xs = rand((4, 3, 2, 4), seed=5)
    got = mx.vmap(lambda a: mx.gather_mm(a, mx.array(b), li, ri))(mx.array(xs))
    loop = np.stack([np_gather_mm(x, b, [0, 2], [1, 4]) for x in xs])
    np.testing.assert_allclose(to_numpy(got), loop, rtol=1e-5, atol=1e-5)
    ris = mx.array([[1, 4], [0, 0], [3, 2]])
    got = mx.vmap(lambda r: mx.gather_mm(mx.array(a), mx.array(b), li, r))(ris)
    loop = np.stack([np_gather_mm(a, b, [0, 2], r) for r in np.array(ris)])
    np.testing.assert_allclose(to_numpy(got), loop, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- gather_qmm

def _quantized(shape, seed, gs=64, bits=4):
    w = rand(shape, seed=seed)
    wq, s, b = MX.quantize(MX.array(w), group_size=gs, bits=bits)
    return A(np.array(wq), "uint32"), A(np.array(s)), A(np.array(b))


@pytest.mark.parametrize("xsh,wsh,li,ri,transpose", [
    ((3, 2, 64), (4, 16, 64), [0, 2], [1, 3], True),
    ((3, 2, 64), (4, 16, 64), None, [[1], [3], [0]], True),
    ((3, 2, 64), (16, 64), [2, 2, 0], None, True),
    ((1, 64), (4, 32, 64), None, [3, 1, 1, 0], True),
    ((3, 2, 16), (4, 16, 64), [0, 2], [1, 3], False),
    ((2, 3, 1, 128), (6, 8, 128), None, [[[5, 0]], [[1, 1]]], True),
    ((3, 2, 64), (4, 16, 64), [], [], True),
])
def test_gather_qmm_matches_mlx(xsh, wsh, li, ri, transpose):
    wq, s, b = _quantized(wsh, 11)
    x = A(rand(xsh, seed=12))
    li_ = None if li is None else idx(li)
    ri_ = None if ri is None else idx(ri)
    check(lambda m, x, w, s, b, li, ri: m.gather_qmm(x, w, s, b, li, ri, transpose=transpose),
          x, wq, s, b, li_, ri_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("gs,bits", [(32, 2), (64, 8), (128, 3), (32, 6)])
def test_gather_qmm_group_sizes_and_bits(gs, bits):
    wq, s, b = _quantized((3, 8, 128), 13, gs, bits)
    check(lambda m, x, w, s, b, ri: m.gather_qmm(x, w, s, b, rhs_indices=ri, group_size=gs,
                                                 bits=bits, sorted_indices=True),
          A(rand((5, 1, 128), seed=14)), wq, s, b, idx([[0], [0], [1], [2], [2]]),
          rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "int32"])
def test_gather_qmm_input_dtypes(dt):
    wq, s, b = _quantized((4, 16, 64), 15)
    tol = 3e-2 if dt != "int32" else 1e-4
    check(lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, m.array([0, 1]), m.array([3, 0])),
          A(rand((2, 2, 64), dt, seed=16)), wq, s, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", [
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, None, m.array([1, 3])),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, m.array([0.0, 2]), m.array([1, 3])),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, None, m.array([0, 2]), m.array([1, 3])),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, m.array([0, 2]), m.array([1, 3]),
                                       mode="mxfp4"),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, m.array([0, 2]), m.array([1, 3]),
                                       mode="foo"),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, m.array([0, 2]), m.array([1, 3]),
                                       group_size=32),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s, b, m.array([0, 2]), m.array([1, 3]), bits=8),
    lambda m, x, w, s, b: m.gather_qmm(x[..., :63], w, s, b, m.array([0, 2]), m.array([1, 3])),
    lambda m, x, w, s, b: m.gather_qmm(x[0, 0], w, s, b, None, m.array([1, 3])),
    lambda m, x, w, s, b: m.gather_qmm(x, w, s[:3], b[:3], m.array([0, 2]), m.array([1, 3])),
])
def test_gather_qmm_errors_match_mlx(case):
    wq, s, b = _quantized((4, 16, 64), 17)
    check_raises(case, A(rand((3, 2, 64), seed=18)), wq, s, b, err=ValueError)


def test_gather_qmm_error_messages_name_the_op():
    mx = get_rmx()
    wq, s, b = (mx.array(v.data) for v in _quantized((4, 16, 64), 17))
    x = mx.ones((3, 2, 64))
    with pytest.raises(ValueError, match=r"^\[gather_qmm\] The shapes of the weight"):
        mx.gather_qmm(x, wq, s, b, mx.array([0]), mx.array([1]), bits=8)
    with pytest.raises(ValueError, match=r"^\[gather_qmm\] Input must have at least two"):
        mx.gather_qmm(mx.ones((64,)), wq, s, b, None, mx.array([1]))


def test_gather_qmm_vjp_matches_mlx():
    wq, s, b = _quantized((4, 16, 64), 19)
    x = A(rand((3, 2, 64), seed=20))
    ct = A(rand((2, 3, 2, 16), seed=21))
    li, ri = idx([0, 2, 1]), idx([[1, 3, 3], [0, 0, 2]])
    check(lambda m, x, w, s, b, li, ri, ct: m.vjp(
        lambda x, s, b: m.gather_qmm(x, w, s, b, li, ri), [x, s, b], [ct])[1],
        x, wq, s, b, li, ri, ct, rtol=1e-4, atol=1e-4)
    check_raises(lambda m, x, w, s, b, li, ri: m.grad(
        lambda w: m.gather_qmm(x, w, s, b, li, ri).sum())(w), x, wq, s, b, li, ri,
        err=RuntimeError)


@rmx_only
def test_gather_qmm_vmap_matches_loop():
    # MLX 0.32.4: "GatherQMM::vmap NYI"; rmx's composite maps
    mx = get_rmx()
    wq, s, b = (mx.array(v.data) for v in _quantized((4, 16, 64), 22))
    xs = mx.array(rand((3, 2, 2, 64), seed=23))
    li, ri = mx.array([1, 0]), mx.array([3, 2])
    got = mx.vmap(lambda x: mx.gather_qmm(x, wq, s, b, li, ri))(xs)
    loop = mx.stack([mx.gather_qmm(xs[i], wq, s, b, li, ri) for i in range(3)])
    np.testing.assert_allclose(to_numpy(got), to_numpy(loop), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- block_masked_mm

def np_expand(mask, bs, rows, cols):
    m = np.repeat(np.repeat(np.asarray(mask), bs, -2), bs, -1)
    return m[..., :rows, :cols]


def np_block_masked_mm(a, b, bs, mo=None, ml=None, mr=None):
    a2 = a[None] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if ml is not None or mr is not None:
        t = [-(-d // bs) for d in (a2.shape[-2], a2.shape[-1], b2.shape[-1])]
        ml = np.ones((t[0], t[1]), bool) if ml is None else ml
        mr = np.ones((t[1], t[2]), bool) if mr is None else mr
        if a.ndim == 1 and ml.ndim >= 2:
            ml = ml[..., 0, :]
        if b.ndim == 1 and mr.ndim >= 2:
            mr = mr[..., 0]
        if a.ndim == 1:
            ml = ml[..., None, :]
        if b.ndim == 1:
            mr = mr[..., :, None]
        a2 = a2 * np_expand(ml, bs, *a2.shape[-2:])
        b2 = b2 * np_expand(mr, bs, *b2.shape[-2:])
    out = a2 @ b2
    if mo is not None:
        mo = np.asarray(mo)
        if a.ndim == 1:
            mo = mo[..., None, :]
        if b.ndim == 1:
            mo = mo[..., None]
        out = out * np_expand(mo, bs, *out.shape[-2:])
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def bmask(shape, seed, kind="bool"):
    g = np.random.default_rng(seed)
    if kind == "bool":
        return A(g.random(shape) < 0.6, "bool_")
    return A(g.uniform(-1, 2, shape).astype(np.float32), "float32")


BM_CASES = [
    ((70, 40), (40, 100), 32, (3, 4), None, None),
    ((70, 40), (40, 100), 32, None, (3, 2), (2, 4)),
    ((70, 40), (40, 100), 32, (3, 4), (3, 2), (2, 4)),
    ((70, 40), (40, 100), 32, None, (3, 2), None),
    ((70, 40), (40, 100), 32, None, None, (2, 4)),
    ((130, 70), (70, 65), 64, (3, 2), (3, 2), (2, 2)),
    ((2, 70, 40), (40, 100), 32, (3, 4), (3, 2), (2, 4)),
    ((2, 1, 33, 40), (3, 40, 31), 32, (2, 2), (1, 2), (3, 2, 1)),
    ((40,), (40, 100), 32, (4,), None, None),
    ((40,), (40, 100), 32, None, (2,), (2, 4)),
    ((33, 40), (40,), 32, (2, 1), (2, 2), (2,)),
    ((40,), (40,), 32, None, (2,), (2,)),
    ((0, 40), (40, 100), 32, (0, 4), None, None),
    ((5, 0), (0, 100), 32, (1, 4), (1, 0), (0, 4)),
]


@pytest.mark.parametrize("kind", ["bool", "float", "mixed"])
@pytest.mark.parametrize("ash,bsh,bs,mo,ml,mr", BM_CASES)
def test_block_masked_mm_matches_mlx_and_numpy(ash, bsh, bs, mo, ml, mr, kind):
    a, b = A(rand(ash, seed=1)), A(rand(bsh, seed=2))
    k_out = "float" if kind == "float" else "bool"
    k_lhs = "bool" if kind == "bool" else "float"
    mo_ = None if mo is None else bmask(mo, 3, k_out)
    ml_ = None if ml is None else bmask(ml, 4, k_lhs)
    mr_ = None if mr is None else bmask(mr, 5, "bool")
    check(lambda m, a, b, mo, ml, mr: m.block_masked_mm(a, b, bs, mo, ml, mr),
          a, b, mo_, ml_, mr_, rtol=1e-4, atol=1e-4,
          np_fn=lambda a, b, mo, ml, mr: np_block_masked_mm(a, b, bs, mo, ml, mr))


def test_block_masked_mm_masked_nan_blocks_are_zero():
    # a bool-masked block is skipped, NaN inside it or not (MLX's CPU kernel does the same)
    a = rand((70, 40), seed=1)
    a[0, 0] = np.nan
    ml = np.array([[False, True], [True, True], [True, True]])
    check(lambda m, a, b, ml: m.block_masked_mm(a, b, 32, None, ml), A(a),
          A(rand((40, 100), seed=2)), A(ml, "bool_"), rtol=1e-4, atol=1e-4)
    mo = np.array([[False] * 4, [True] * 4, [True] * 4])
    check(lambda m, a, b, mo: m.block_masked_mm(a, b, 32, mo), A(a),
          A(rand((40, 100), seed=2)), A(mo, "bool_"), rtol=1e-4, atol=1e-4)


def test_block_masked_mm_defaults_and_no_masks():
    check(lambda m, a, b, mo: m.block_masked_mm(a, b, mask_out=mo), A(rand((70, 80))),
          A(rand((80, 130), seed=2)), bmask((2, 3), 3), rtol=1e-4, atol=1e-4)
    check(lambda m, a, b: m.block_masked_mm(a, b), A(rand((7, 8))), A(rand((8, 3), seed=2)),
          rtol=1e-5, atol=1e-5)


@rmx_only
@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float64"])
def test_block_masked_mm_other_float_types(dt):
    # MLX's CPU kernel raises RuntimeError("Currently only supports float32") at eval (its
    # GPU takes half types); rmx's composite computes every real floating type
    tol = {"float16": 3e-2, "bfloat16": 8e-2}.get(dt, 1e-10)
    mx = get_rmx()
    a, b = rand((70, 40), dt, seed=1), rand((40, 100), dt, seed=2)
    mo, ml = rand((3, 4), seed=3) > 0, rand((3, 2), seed=4)
    got = mx.block_masked_mm(mx.array(a, dtype=getattr(mx, dt)),
                             mx.array(b, dtype=getattr(mx, dt)), 32, mx.array(mo),
                             mx.array(ml))
    assert got.dtype == getattr(mx, dt)
    exp = np_block_masked_mm(a.astype(np.float64), b.astype(np.float64), 32, mo,
                             ml.astype(np.float64))
    np.testing.assert_allclose(to_numpy(got).astype(np.float64), exp, rtol=tol,
                               atol=tol * 10)


@pytest.mark.parametrize("case", [
    lambda m: m.block_masked_mm(m.ones((70, 40)), m.ones((40, 100)), 16,
                                m.ones((3, 4), m.bool_)),
    lambda m: m.block_masked_mm(m.ones((70, 40)), m.ones((40, 100)), 32,
                                m.ones((3, 3), m.bool_)),
    lambda m: m.block_masked_mm(m.ones((70, 40), m.int32), m.ones((40, 100), m.int32), 32,
                                m.ones((3, 4), m.bool_)),
    lambda m: m.block_masked_mm(m.ones((70, 40)), m.ones((41, 100)), 32,
                                m.ones((3, 4), m.bool_)),
    lambda m: m.block_masked_mm(m.array(1.0), m.ones((40, 100)), 32,
                                m.ones((3, 4), m.bool_)),
    lambda m: m.block_masked_mm(m.ones((40,)), m.ones((40, 100)), 32,
                                m.ones((1, 4), m.bool_)),
    lambda m: m.block_masked_mm(m.ones((70, 40)), m.ones((40, 100)), 32, None,
                                m.ones((3, 3), m.bool_)),
])
def test_block_masked_mm_errors_match_mlx(case):
    check_raises(lambda m: case(m), err=ValueError)


def test_block_masked_mm_error_messages():
    mx = get_rmx()
    for m in (mx, MX):
        with pytest.raises(ValueError, match=r"Only block_sizes 32, 64 are supported\.Got"):
            m.block_masked_mm(m.ones((4, 4)), m.ones((4, 4)), 16, m.ones((1, 1), m.bool_))
        with pytest.raises(ValueError, match=r"\[block_masked_mm\] Got 0 dimension input"):
            m.block_masked_mm(m.array(1.0), m.ones((4, 4)), 32, m.ones((1, 1), m.bool_))


def test_block_masked_mm_vjp_matches_mlx():
    a, b = A(rand((70, 40), seed=1)), A(rand((40, 100), seed=2))
    ct = A(rand((70, 100), seed=3))
    mo, ml, mr = bmask((3, 4), 4, "float"), bmask((3, 2), 5, "float"), bmask((2, 4), 6, "float")
    # operands and operand masks (MLX's gradient for a numeric out mask is wrong: below)
    check(lambda m, a, b, mo, ml, mr, ct: m.vjp(
        lambda a, b, ml, mr: m.block_masked_mm(a, b, 32, mo, ml, mr), [a, b, ml, mr],
        [ct])[1], a, b, mo, ml, mr, ct, rtol=1e-3, atol=1e-3)
    mob = bmask((3, 4), 7)
    check(lambda m, a, b, mo, ct: m.vjp(lambda a, b: m.block_masked_mm(a, b, 32, mo),
                                        [a, b], [ct])[1], a, b, mob, ct, rtol=1e-4, atol=1e-4)


@rmx_only
def test_block_masked_mm_mask_grads_match_finite_differences():
    # MLX 0.32.4's vjp for a float mask_out disagrees with finite differences of its own
    # forward; rmx's (the composite's) agrees, for all three masks
    mx = get_rmx()
    g = np.random.default_rng(4)
    a, b, ct = rand((70, 40), seed=1), rand((40, 100), seed=2), rand((70, 100), seed=3)
    masks = [g.uniform(-1, 2, s) for s in ((3, 4), (3, 2), (2, 4))]
    f = lambda mo, ml, mr: (np_block_masked_mm(a, b, 32, mo, ml, mr) * ct).sum()  # noqa
    f64 = lambda x: mx.array(x, dtype=mx.float64)  # noqa: E731
    _, grads = mx.vjp(lambda mo, ml, mr: mx.block_masked_mm(f64(a), f64(b), 32, mo, ml, mr),
                      [f64(m) for m in masks], [f64(ct)])
    for k, got in enumerate(grads):
        fd = np.zeros(masks[k].shape)
        for j in np.ndindex(fd.shape):
            hi, lo = [m.copy() for m in masks], [m.copy() for m in masks]
            hi[k][j] += 1e-4
            lo[k][j] -= 1e-4
            fd[j] = (f(*hi) - f(*lo)) / 2e-4
        np.testing.assert_allclose(to_numpy(got), fd, rtol=1e-6, atol=1e-6)


@rmx_only
def test_block_masked_mm_jvp_and_vmap():
    # MLX has neither rule for BlockMaskedMM
    mx = get_rmx()
    a, b = rand((3, 70, 40), seed=1), rand((40, 100), seed=2)
    mo = rand((3, 4), seed=3) > 0
    ml = rand((3, 2), seed=4)
    f = lambda a: mx.block_masked_mm(a, mx.array(b), 32, mx.array(mo), mx.array(ml))  # noqa
    got = mx.vmap(f)(mx.array(a))
    loop = np.stack([np_block_masked_mm(x, b, 32, mo, ml) for x in a])
    np.testing.assert_allclose(to_numpy(got), loop, rtol=1e-4, atol=1e-4)
    _, (t,) = mx.jvp(f, [mx.array(a[0])], [mx.array(a[1])])
    np.testing.assert_allclose(to_numpy(t), np_block_masked_mm(a[1], b, 32, mo, ml),
                               rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- segmented_mm

def np_segmented_mm(a, b, seg):
    seg = np.asarray(seg)
    k = a.shape[1]
    out = np.zeros(seg.shape[:-1] + (a.shape[0], b.shape[1]))
    for i in np.ndindex(seg.shape[:-1]):
        s, e = np.clip(seg[i], 0, k)
        if e > s:
            out[i] = a[:, s:e] @ b[s:e]
    return out


SEG_CASES = [
    [[0, 4], [4, 10], [2, 2], [0, 10]],
    [0, 4],
    [[[0, 4], [4, 10]], [[1, 9], [3, 3]]],
    [[4, 2], [0, 1]],
]


@pytest.mark.parametrize("seg", SEG_CASES)
@pytest.mark.parametrize("sdt", ["uint32", "int32", "int64"])
def test_segmented_mm_matches_mlx_and_numpy(seg, sdt):
    check(lambda m, a, b, s: m.segmented_mm(a, b, s), A(rand((3, 10), seed=1)),
          A(rand((10, 4), seed=2)), idx(seg, sdt), rtol=1e-5, atol=1e-5,
          np_fn=np_segmented_mm)


@pytest.mark.parametrize("dt", ["bfloat16", "float64"])
def test_segmented_mm_dtypes(dt):
    tol = {"bfloat16": 8e-2}.get(dt, 1e-10)
    check(lambda m, a, b, s: m.segmented_mm(a, b, s, stream=m.cpu),
          A(rand((3, 10), dt, seed=1)), A(rand((10, 4), dt, seed=2)),
          idx([[0, 4], [4, 10]]), rtol=tol, atol=tol, np_fn=np_segmented_mm)
    check(lambda m, a, b, s: m.segmented_mm(a, b, s), A(rand((3, 10), "float16", seed=1)),
          A(rand((10, 4), seed=2)), idx([[0, 4], [4, 10]]), rtol=1e-3, atol=1e-3)


@rmx_only
def test_segmented_mm_float16():
    # MLX 0.32.4's CPU float16 segmented_mm returns wrong values in every row after the
    # first (compare NumPy); rmx is compared with NumPy
    mx = get_rmx()
    a, b = rand((3, 10), "float16", seed=1), rand((10, 4), "float16", seed=2)
    seg = np.array([[0, 4], [4, 10]])
    got = mx.segmented_mm(mx.array(a), mx.array(b), mx.array(seg))
    assert got.dtype == mx.float16
    np.testing.assert_allclose(to_numpy(got).astype(np.float64),
                               np_segmented_mm(a.astype(np.float64), b.astype(np.float64), seg),
                               rtol=3e-2, atol=3e-2)


def test_segmented_mm_views_and_no_segments():
    a = A(rand((10, 3), seed=1), view=lambda x: x.T)
    b = A(rand((4, 10), seed=2), view=lambda x: x.T)
    check(lambda m, a, b, s: m.segmented_mm(a, b, s), a, b, idx([[1, 7], [7, 10]]),
          rtol=1e-5, atol=1e-5, np_fn=np_segmented_mm)
    check(lambda m, a, b, s: m.segmented_mm(a, b, s), A(rand((3, 10))),
          A(rand((10, 4), seed=2)), A(np.zeros((0, 2), np.int32)), np_fn=np_segmented_mm)


@rmx_only
def test_segmented_mm_empty_and_out_of_range_segments():
    # MLX 0.32.4 crashes (SIGFPE) on an empty M and aborts in SGEMM for negative bounds;
    # rmx gives zeros for empty products and clips bounds to [0, K]
    mx = get_rmx()
    b = rand((10, 4), seed=2)
    got = mx.segmented_mm(mx.zeros((0, 10)), mx.array(b), mx.array([[0, 4]]))
    assert got.shape == (1, 0, 4)
    a = rand((3, 10), seed=1)
    seg = np.array([[-3, 2], [8, 15], [-1, 20]])
    got = mx.segmented_mm(mx.array(a), mx.array(b), mx.array(seg))
    np.testing.assert_allclose(to_numpy(got), np_segmented_mm(a, b, seg), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [
    lambda m: m.segmented_mm(m.ones((3, 10)), m.ones((10, 4)), m.array([[0.0, 4]])),
    lambda m: m.segmented_mm(m.ones((3, 10)), m.ones((10, 4)), m.array([[0, 4, 5]])),
    lambda m: m.segmented_mm(m.ones((2, 3, 10)), m.ones((2, 10, 4)), m.array([[0, 4]])),
    lambda m: m.segmented_mm(m.ones((10,)), m.ones((10, 4)), m.array([[0, 4]])),
    lambda m: m.segmented_mm(m.ones((3, 10)), m.ones((10,)), m.array([[0, 4]])),
    lambda m: m.segmented_mm(m.ones((3, 10), m.int32), m.ones((10, 4), m.int32),
                             m.array([[0, 4]])),
    lambda m: m.segmented_mm(m.ones((3, 10)), m.ones((10, 4)), [[0, 4]]),
])
def test_segmented_mm_errors_match_mlx(case):
    check_raises(lambda m: case(m))


def test_segmented_mm_error_messages():
    mx = get_rmx()
    for m in (mx, MX):
        with pytest.raises(ValueError, match=r"\[segmented_mm\] Got segments with invalid dtype"):
            m.segmented_mm(m.ones((3, 10)), m.ones((10, 4)), m.array([[0.0, 4]]))
        with pytest.raises(ValueError, match=r"should have shape \(\.\.\., 2\) but \(1,3\)"):
            m.segmented_mm(m.ones((3, 10)), m.ones((10, 4)), m.array([[0, 4, 5]]))
        with pytest.raises(ValueError, match=r"^\[segmented_mm\] Batched matmul not supported$"):
            m.segmented_mm(m.ones((2, 3, 10)), m.ones((10, 4)), m.array([[0, 4]]))


@rmx_only
def test_segmented_mm_grad_jvp_vmap():
    # MLX has no vjp/jvp/vmap for SegmentedMM; rmx's composite has all three
    mx = get_rmx()
    a, b = rand((3, 10), "float64", seed=1), rand((10, 4), "float64", seed=2)
    seg = np.array([[0, 4], [2, 10], [5, 5]])
    w = rand((3, 3, 4), "float64", seed=3)
    f = lambda a, b: (np_segmented_mm(a, b, seg) * w).sum()  # noqa: E731
    f64 = lambda x: mx.array(x, dtype=mx.float64)  # noqa: E731
    ga, gb = mx.grad(lambda a, b: (mx.segmented_mm(a, b, mx.array(seg)) * f64(w)).sum(),
                     argnums=(0, 1))(f64(a), f64(b))
    for i, (x, g) in enumerate(((a, ga), (b, gb))):
        fd = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            hi, lo = x.copy(), x.copy()
            hi[j] += 1e-6
            lo[j] -= 1e-6
            fd[j] = ((f(hi, b) - f(lo, b)) if i == 0 else (f(a, hi) - f(a, lo))) / 2e-6
        np.testing.assert_allclose(to_numpy(g), fd, rtol=1e-6, atol=1e-6)
    _, (t,) = mx.jvp(lambda a: mx.segmented_mm(a, f64(b), mx.array(seg)), [f64(a)],
                     [f64(w[0, :, :1] * np.ones((3, 10)))])
    np.testing.assert_allclose(to_numpy(t), np_segmented_mm(w[0, :, :1] * np.ones((3, 10)), b,
                                                            seg), rtol=1e-6, atol=1e-6)
    xs = rand((2, 3, 10), seed=4)
    got = mx.vmap(lambda a: mx.segmented_mm(a, mx.array(b, dtype=mx.float32),
                                            mx.array(seg)))(mx.array(xs))
    loop = np.stack([np_segmented_mm(x, b, seg) for x in xs])
    np.testing.assert_allclose(to_numpy(got), loop, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- hadamard_transform

def np_hadamard(n):
    """H_m ⊗ H_2^k with MLX's m x m tables (as MLX builds its matrix; checked to be
    Hadamard, so an error in the tables cannot hide)."""
    m = next(q for q in (1, 28, 20, 12) if n % q == 0 and ((n // q) & (n // q - 1)) == 0)
    p = n // m
    h = np.array([[1.0]])
    while h.shape[0] < p:
        h = np.block([[h, h], [h, -h]])
    if m > 1:
        t = np.array(MX.hadamard_transform(MX.eye(m), scale=1.0)).T.astype(np.float64)
        assert np.array_equal(t @ t.T, m * np.eye(m))
        h = np.kron(t, h)
    return h


HAD_SIZES = [1, 2, 4, 8, 64, 256, 1024, 12, 20, 28, 24, 40, 56, 96, 160, 224, 12 * 64]


@pytest.mark.parametrize("n", HAD_SIZES)
def test_hadamard_matches_mlx_and_numpy(n):
    x = A(rand((3, n), seed=n))
    check(lambda m, x: m.hadamard_transform(x), x, rtol=1e-5, atol=1e-5,
          np_fn=lambda x: x @ np_hadamard(n).T / np.sqrt(n))
    check(lambda m, x: m.hadamard_transform(x, scale=0.25), x, rtol=1e-5, atol=1e-5,
          np_fn=lambda x: x @ np_hadamard(n).T * 0.25)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 16), (), (1,), (4, 1)])
def test_hadamard_shapes(shape):
    check(lambda m, x: m.hadamard_transform(x), A(rand(shape, seed=3)), rtol=1e-5, atol=1e-5)


def test_hadamard_large_sizes():
    # MLX documents 2^k <= 8192/16384 but accepts more on the CPU; so does rmx
    for n in (8192, 16384, 12 * 4096):
        check(lambda m, x: m.hadamard_transform(x), A(rand((2, n), seed=n)), rtol=1e-4,
              atol=1e-4)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "int32", "uint8", "bool_",
                                "int64", "complex64"])
def test_hadamard_dtypes(dt):
    tol = {"float16": 2e-2, "bfloat16": 5e-2}.get(dt, 1e-5)
    check(lambda m, x: m.hadamard_transform(x, stream=m.cpu), A(rand((4, 24), dt, seed=1)),
          rtol=tol, atol=tol)


def test_hadamard_special_values_and_views():
    check(lambda m, x: m.hadamard_transform(x), A(rand((4, 16), special=True, seed=2)))
    check(lambda m, x: m.hadamard_transform(x), A(rand((16, 6), seed=3), view=lambda x: x.T),
          rtol=1e-5, atol=1e-5)
    check(lambda m, x: m.hadamard_transform(x), A(rand((3, 40), seed=4),
                                                 view=lambda x: x[::-1, ::2]),
          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(6,), (3, 5), (44,), (0,), (3, 0)])
def test_hadamard_errors_match_mlx(shape):
    # MLX raises the size error when evaluating, the empty-array one when called
    msgs = []
    for m in (get_rmx(), MX):
        with pytest.raises(ValueError) as e:
            m.eval(m.hadamard_transform(m.ones(shape)))
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


@pytest.mark.mlx_quirk
def test_hadamard_float64_refused():
    # MLX builds the node and raises ValueError("[hadamard] Unsupported type.") at eval;
    # rmx raises the same error when the op is called
    mx = get_rmx()
    with pytest.raises(ValueError, match=r"\[hadamard\] Unsupported type\."):
        mx.eval(mx.hadamard_transform(mx.ones((2, 4), mx.float64)))
    with pytest.raises(ValueError, match=r"\[hadamard\] Unsupported type\."):
        MX.eval(MX.hadamard_transform(MX.ones((2, 4), MX.float64), stream=MX.cpu))


@rmx_only
@pytest.mark.parametrize("n", [36, 60, 120, 240])
def test_hadamard_sizes_mlx_reads_out_of_bounds_for_are_refused(n):
    # MLX 0.32.4 accepts any n divisible by 12/20/28 and then computes garbage (or corrupts
    # memory); rmx raises MLX's own size error for those
    mx = get_rmx()
    with pytest.raises(ValueError, match=r"Only supports n = m\*2\^k"):
        mx.hadamard_transform(mx.ones((n,)))


@pytest.mark.parametrize("n", [16, 12, 20, 28, 48])
def test_hadamard_vjp_jvp_vmap_match_mlx(n):
    x, ct = A(rand((3, n), seed=1)), A(rand((3, n), seed=2))
    check(lambda m, x, ct: m.vjp(lambda x: m.hadamard_transform(x, 0.7), [x], [ct])[1], x, ct,
          rtol=1e-5, atol=1e-5)
    check(lambda m, x, t: m.jvp(lambda x: m.hadamard_transform(x), [x], [t])[1], x, ct,
          rtol=1e-5, atol=1e-5)
    check(lambda m, x: m.vmap(lambda x: m.hadamard_transform(x), in_axes=1)(x),
          A(rand((n, 3), seed=3)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [16, 12, 24, 96])
def test_hadamard_grad_matches_finite_differences(n):
    # float32 only (float64 is refused): the transform is linear, so central differences
    # with a large step are exact up to rounding. n = 20*2^k / 28*2^k: see the quirk below
    mx = get_rmx()
    x = rand((2, n), seed=5).astype(np.float64)
    w = rand((2, n), seed=6).astype(np.float64)
    f = lambda x: (x @ np_hadamard(n).T / np.sqrt(n) * w).sum()  # noqa: E731
    g = mx.grad(lambda x: (mx.hadamard_transform(x) * mx.array(w, dtype=mx.float32)).sum())(
        mx.array(x, dtype=mx.float32))
    fd = np.zeros_like(x)
    for j in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[j] += 0.5
        lo[j] -= 0.5
        fd[j] = f(hi) - f(lo)
    np.testing.assert_allclose(to_numpy(g), fd, rtol=1e-5, atol=1e-5)


@pytest.mark.mlx_quirk
@pytest.mark.parametrize("n", [20, 28, 40, 112])
def test_hadamard_vjp_is_mlx_same_transform_not_transpose(n):
    # MLX's vjp applies the transform itself to the cotangent; for the non-symmetric 20/28
    # tables that is not the gradient (it would be the transposed matrix). rmx matches MLX.
    mx = get_rmx()
    w = rand((2, n), seed=7)
    g = mx.grad(lambda x: (mx.hadamard_transform(x, 0.3) * mx.array(w)).sum())(
        mx.array(rand((2, n), seed=8)))
    same = to_numpy(mx.hadamard_transform(mx.array(w), 0.3))
    np.testing.assert_allclose(to_numpy(g), same, rtol=1e-5, atol=1e-5)
    true_grad = w @ (np_hadamard(n) * 0.3)
    assert not np.allclose(same, true_grad, atol=1e-3)
