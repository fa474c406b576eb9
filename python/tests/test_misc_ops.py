"""cumulative_sum/prod, minmax, unique, depends, get_array_buffer_size, set_wired_limit,
to_fp8/from_fp8, from_dlpack and export_to_dot against MLX 0.32.4 (and NumPy)."""

import io
import re

import numpy as np
import pytest

from diff import (A, DTYPES, FLOATS, INTS, REF, check, check_raises, dname, get_rmx, rand,
                  to_numpy)

# --------------------------------------------------------------------------
# cumulative_sum / cumulative_prod


def test_cumulative_aliases_are_cumsum_cumprod():
    rx = get_rmx()
    assert rx.cumulative_sum is rx.cumsum and rx.cumulative_prod is rx.cumprod
    assert REF.cumulative_sum is REF.cumsum


@pytest.mark.parametrize("dt", ["int8", "int32", "uint16", "float16", "float32", "bool_"])
@pytest.mark.parametrize("kw", [{}, {"axis": 1}, {"axis": -2, "reverse": True},
                                {"axis": 0, "inclusive": False},
                                {"axis": 1, "dtype": "float32"}, {"dtype": "int64"}],
                         ids=repr)
def test_cumulative_sum_prod(dt, kw):
    x = A(rand((3, 4), dt, seed=1, low=-3, high=3), dt)

    def call(m, a, f):
        k = dict(kw)
        if "dtype" in k:
            k["dtype"] = getattr(m, k["dtype"])
        return getattr(m, f)(a, **k)

    check(lambda m, a: call(m, a, "cumulative_sum"), x)
    check(lambda m, a: call(m, a, "cumulative_prod"), x)


# --------------------------------------------------------------------------
# minmax


@pytest.mark.parametrize("dt", DTYPES)
def test_minmax_dtypes(dt):
    x = A(rand((3, 5), dt, seed=2), dt)
    check(lambda m, a: m.minmax(a), x, np_fn=None if dt == "complex64" else
          (lambda a: (a.min(), a.max())))
    check(lambda m, a: m.minmax(a, axis=1, keepdims=True), x)
    check(lambda m, a: m.minmax(a, [0, 1]), x)


def test_minmax_edges():
    check(lambda m, a: m.minmax(a), A(np.float32(3.0)))
    check(lambda m, a: m.minmax(a, axis=0), A(rand((4, 3), "float32", special=True)))
    check(lambda m, a: m.minmax(a.T, axis=-1), A(rand((4, 3), "float32", seed=5)))
    check_raises(lambda m, a: m.minmax(a), A(np.zeros((0,), np.float32)), err=ValueError)
    check_raises(lambda m, a: m.minmax(a, axis=2), A(np.zeros((2, 2), np.float32)))


def test_minmax_grad_vmap():
    x = A(np.array([1.0, 3.0, 2.0, 3.0], np.float32))
    check(lambda m, a: m.grad(lambda y: m.minmax(y)[0] + 2 * m.minmax(y)[1])(a), x)
    check(lambda m, a: m.vmap(lambda y: m.minmax(y))(a),
          A(rand((3, 4), "float32", seed=3)))


# --------------------------------------------------------------------------
# unique


def _uq(m, a, size, *flags, **kw):
    if "fill_value" in kw and isinstance(kw["fill_value"], np.ndarray):
        kw["fill_value"] = m.array(kw["fill_value"])
    return m.unique(a, size, *flags, **kw)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 9])
def test_unique_sizes_and_outputs(size):
    x = A(np.array([2, 1, 2, 3, 1], np.int32))
    check(lambda m, a: _uq(m, a, size), x)
    check(lambda m, a: _uq(m, a, size, True, True, True), x)
    check(lambda m, a: _uq(m, a, size, True, True, True, fill_value=0), x)
    check(lambda m, a: _uq(m, a, size, return_counts=True), x)
    check(lambda m, a: _uq(m, a, size, return_inverse=True), x)
    check(lambda m, a: _uq(m, a, size, return_index=True), x)


@pytest.mark.parametrize("dt", DTYPES)
def test_unique_dtypes(dt):
    x = A(rand((4, 6), dt, seed=3, low=-3, high=3), dt)
    check(lambda m, a: _uq(m, a, 30, True, True, True), x)
    check(lambda m, a: _uq(m, a, 3, True, True, True), x)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64", "complex64"])
def test_unique_nan_inf_signed_zero(dt):
    x = A(rand((3, 5), dt, seed=4, special=True), dt)
    check(lambda m, a: _uq(m, a, 16, True, True, True), x)
    z = A(np.array([[1.0, np.nan], [np.nan, -0.0], [0.0, 1.0]], np.float32))
    check(lambda m, a: _uq(m, a, 5, True, True, True), z)


def test_unique_views_and_shapes():
    data = rand((4, 6), "int32", seed=5, low=0, high=4)
    check(lambda m, a: _uq(m, a, 6, True, True, True), A(data, view=lambda x: x.T))
    check(lambda m, a: _uq(m, a, 6, True, True, True), A(data, view=lambda x: x[::2, ::-3]))
    check(lambda m, a: _uq(m, a, 2, True, True, True), A(np.int32(5)))
    check(lambda m, a: _uq(m, a, 2, True, True, True), A(np.float32(5.0)))


def test_unique_fill_values():
    x = A(np.array([2, 1, 2, 3, 1], np.int32))
    check(lambda m, a: _uq(m, a, 6, fill_value=2.5), x)
    check(lambda m, a: _uq(m, a, 6, fill_value=np.array(9, np.int64)), x)
    check(lambda m, a: _uq(m, a, 6, fill_value=np.array([[7]], np.int32)), x)
    u = A(np.array([3, 1, 3], np.uint64))
    check(lambda m, a: _uq(m, a, 3, fill_value=-1), u)


def test_unique_empty_and_errors():
    e = A(np.zeros((0,), np.float32))
    check(lambda m, a: _uq(m, a, 0, True, True, True), e)
    check(lambda m, a: _uq(m, a, 2, True, True, True, fill_value=7), e)
    check(lambda m, a: _uq(m, a, 0, True, True, True), A(np.zeros((2, 0), np.int32)))
    check_raises(lambda m, a: _uq(m, a, 2), e, err=ValueError)
    x = A(np.array([1, 2], np.int32))
    check_raises(lambda m, a: _uq(m, a, -1), x, err=ValueError)
    check_raises(lambda m, a: _uq(m, a, 3, fill_value=np.array([1, 2])), x, err=ValueError)
    check_raises(lambda m, a: m.unique(a, 3.0), x, err=TypeError)
    check_raises(lambda m, a: m.unique(a), x, err=TypeError)


def test_unique_matches_numpy():
    rx = get_rmx()
    data = rand((50,), "int32", seed=6, low=-10, high=10)
    n = len(np.unique(data))
    v, i, inv, c = rx.unique(rx.array(data), n, True, True, True)
    ev, ei, einv, ec = np.unique(data, return_index=True, return_inverse=True,
                                 return_counts=True)
    np.testing.assert_array_equal(np.array(v), ev)
    np.testing.assert_array_equal(np.array(i), ei)
    np.testing.assert_array_equal(np.array(inv), einv.reshape(-1))
    np.testing.assert_array_equal(np.array(c), ec)


def test_unique_grad():
    x = A(np.array([2.0, 1, 2, 3, 1], np.float32))
    w3 = np.array([1.0, 2, 3], np.float32)
    w5 = np.array([1.0, 2, 3, 4, 5], np.float32)
    check(lambda m, a: m.grad(lambda y: (m.unique(y, 3) * m.array(w3)).sum())(a), x)
    # padding with the first unique value sends its gradient there too
    check(lambda m, a: m.grad(lambda y: (m.unique(y, 5) * m.array(w5)).sum())(a), x)
    check(lambda m, a, f: m.grad(
        lambda y, g: (m.unique(y, 5, fill_value=g) * m.array(w5)).sum(), argnums=(0, 1))(a, f),
        x, A(np.float32(0.0)))


def test_unique_vmap_and_jvp():
    x = A(rand((3, 6), "float32", seed=7, low=0, high=2).round())
    check(lambda m, a: m.vmap(lambda y: m.unique(y, 4, True, True, True))(a), x)
    rx = get_rmx()
    # jvp: MLX raises (its scatter has no jvp); rmx gives the tangent of the first
    # occurrences, which is the linearisation of the gather
    y = rx.array([2.0, 1, 2, 3, 1])
    t = rx.array([1.0, 2, 3, 4, 5])
    _, (tv,) = rx.jvp(lambda a: rx.unique(a, 4), [y], [t])
    np.testing.assert_array_equal(np.array(tv), [2.0, 1.0, 4.0, 2.0])
    with pytest.raises(RuntimeError):
        REF.jvp(lambda a: REF.unique(a, 4), [REF.array([2.0, 1])], [REF.array([1.0, 2])])


def test_unique_is_lazy():
    rx = get_rmx()
    a = rx.array([3, 1, 3]) + 1
    v = rx.unique(a, 2)
    assert v.shape == (2,)


# --------------------------------------------------------------------------
# depends


def test_depends_values_and_structure():
    x, y = A(np.array([1.0, 2.0], np.float32)), A(np.array([3.0], np.float32))
    check(lambda m, a, b: m.depends(a, b), x, y)
    check(lambda m, a, b: m.depends([a, a * 2], [b]), x, y)
    check(lambda m, a, b: m.depends((a,), b), x, y)
    check(lambda m, a, b: m.depends([a], []), x, y)
    rx = get_rmx()
    a = rx.array([1.0])
    assert isinstance(rx.depends(a, a), rx.array)
    assert isinstance(rx.depends([a], a), list)


def test_depends_errors():
    x = A(np.array([1.0, 2.0], np.float32))
    check_raises(lambda m, a: m.depends(1.0, [a]), x, err=RuntimeError)
    check_raises(lambda m, a: m.depends(a, 2.0), x, err=RuntimeError)
    rx = get_rmx()
    # MLX 0.32.4 segfaults on an empty input list; rmx raises
    with pytest.raises(ValueError):
        rx.depends([], [rx.array(1.0)])


def test_depends_orders_evaluation():
    rx = get_rmx()
    a = rx.array([1.0, 2.0]) * 3
    b = rx.array([5.0]) + 1
    (out,) = rx.depends([a], [b])
    rx.eval(out)
    assert rx.get_array_buffer_size(b) == 4  # b was evaluated before out
    np.testing.assert_array_equal(np.array(out), [3.0, 6.0])


def test_depends_grad_and_rmx_rules():
    x, y = A(np.array([1.0, 2.0], np.float32)), A(np.array([3.0], np.float32))
    check(lambda m, a, b: m.grad(lambda u, v: m.depends(u * 2, v).sum(), argnums=(0, 1))(a, b),
          x, y)
    rx = get_rmx()
    # jvp and vmap: MLX raises ValueError; rmx passes tangents / maps (additions)
    _, (t,) = rx.jvp(lambda u, v: rx.depends(u * 2, v), [rx.array([1.0, 2.0]), rx.array([3.0])],
                    [rx.array([1.0, 1.0]), rx.array([1.0])])
    np.testing.assert_array_equal(np.array(t), [2.0, 2.0])
    v = rx.vmap(lambda u, w: rx.depends(u * 2, w))(rx.array([[1.0, 2.0]]), rx.array([[3.0]]))
    np.testing.assert_array_equal(np.array(v), [[2.0, 4.0]])
    with pytest.raises(ValueError):
        REF.vmap(lambda u, w: REF.depends(u * 2, w))(REF.array([[1.0, 2.0]]), REF.array([[3.0]]))


# --------------------------------------------------------------------------
# get_array_buffer_size / set_wired_limit


def test_get_array_buffer_size():
    for m in (get_rmx(), REF):
        # MLX may hand out a larger cached buffer (and report its size): start clean
        m.clear_cache()
        a = m.array([1.0, 2.0, 3.0])
        b = m.array([1, 2, 3, 4, 5], m.int64)
        assert m.get_array_buffer_size(a) == 12
        assert m.get_array_buffer_size(a, [b, {"x": a}], 3, None) == 12 + 40
        assert m.get_array_buffer_size() == 0
        assert m.get_array_buffer_size(m.array(1, dtype=m.uint8)) == 1
        s = a[1:]
        m.eval(s)
        assert m.get_array_buffer_size(s) == 12  # a view counts its whole buffer
        assert m.get_array_buffer_size(a, s) == 12  # ... once
        lazy = a + 1
        with pytest.raises(ValueError, match="must be evaluated"):
            m.get_array_buffer_size(lazy)
        z = m.zeros((0,))
        m.eval(z)
        assert m.get_array_buffer_size(z) == 0


def test_set_wired_limit():
    rx = get_rmx()
    for m in (rx, REF):
        assert m.set_wired_limit(100) == 0
        assert m.set_wired_limit(0) == 0
        assert m.set_wired_limit(5) == 0  # no wired memory: nothing is kept
        with pytest.raises(TypeError):
            m.set_wired_limit(-1)
        with pytest.raises(TypeError):
            m.set_wired_limit(2 ** 70)
        with pytest.raises(TypeError):
            m.set_wired_limit(1.5)


# --------------------------------------------------------------------------
# to_fp8 / from_fp8


def _fp8_inputs():
    specials = np.array([0.0, -0.0, 1.0, -1.0, 448.0, 449.0, 464.0, 465.0, 480.0, 1e9, -1e9,
                         np.inf, -np.inf, np.nan, -np.nan, 2.0 ** -9, 2.0 ** -10,
                         3 * 2.0 ** -11, 2.0 ** -7, 1.5 * 2.0 ** -7, 1e-30, -1e-30,
                         1.0625, 1.1875, 0.01, 240.0, 248.0, 256.0, 3.4e38, 1e-45],
                        np.float32)
    g = np.random.default_rng(0)
    wide = (g.standard_normal(4000) * np.exp2(g.uniform(-14, 10, 4000))).astype(np.float32)
    # every float16 bit pattern: all rounding boundaries of e4m3 are float16 values
    f16 = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    return np.concatenate([specials, wide, f16])


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32"])
def test_to_fp8_bit_exact(dt):
    data = _fp8_inputs()
    if dt == "bfloat16":
        # MLX's float32 -> bfloat16 conversion drops the sign of NaN (rmx keeps it), so
        # negative NaNs would enter the two libraries as different bfloat16 values
        data = np.where(np.isnan(data), np.float32(np.nan), data)
    x = A(data, dt)
    check(lambda m, a: m.to_fp8(a), x, exact=True)


def test_to_fp8_float64_goes_through_float32():
    # MLX 0.32.4 reinterprets float64 memory as float32 here (garbage); rmx converts
    rx = get_rmx()
    vals = _fp8_inputs()
    got = np.array(rx.to_fp8(rx.array(vals.astype(np.float64), rx.float64)))
    exp = np.array(REF.to_fp8(REF.array(vals)))
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("dt", ["bfloat16", "float16", "float32"])
def test_from_fp8_every_code(dt):
    codes = A(np.arange(256, dtype=np.uint8))
    check(lambda m, a: m.from_fp8(a, getattr(m, dt)), codes, exact=True)
    check(lambda m, a: m.from_fp8(a, dtype=getattr(m, dt)), codes, exact=True)
    check(lambda m, a: m.from_fp8(a), codes, exact=True)


def test_from_fp8_float64_is_exact():
    # MLX 0.32.4 returns wrong float64 values; rmx returns the float32 values widened
    rx = get_rmx()
    codes = np.arange(256, dtype=np.uint8)
    got = np.array(rx.from_fp8(rx.array(codes), rx.float64))
    exp = np.array(REF.from_fp8(REF.array(codes), REF.float32)).astype(np.float64)
    np.testing.assert_array_equal(got, exp)


def test_fp8_round_trip_and_shapes():
    x = A(rand((3, 4, 5), "float32", seed=9, low=-500, high=500), "float32",
          view=lambda v: v.transpose(2, 0, 1)[:, ::2])
    check(lambda m, a: m.from_fp8(m.to_fp8(a), m.float32), x, exact=True)
    check(lambda m, a: m.to_fp8(a), A(np.float32(3.3)), exact=True)
    check(lambda m, a: m.to_fp8(a), A(np.zeros((0, 2), np.float32)), exact=True)


def test_fp8_errors():
    for dt in ["int32", "bool_", "complex64", "uint8"]:
        check_raises(lambda m, a: m.to_fp8(a), A(rand((2,), dt), dt), err=ValueError)
    codes = A(np.array([56, 57], np.uint8))
    check_raises(lambda m, a: m.from_fp8(a, m.int32), codes, err=ValueError)
    check_raises(lambda m, a: m.from_fp8(a, m.complex64), codes, err=ValueError)
    check_raises(lambda m, a: m.from_fp8(a, m.float32), A(np.array([1, 2], np.int8)),
                 err=ValueError)
    check_raises(lambda m, a: m.from_fp8(a, m.float32), A(np.array([1.0], np.float32)),
                 err=ValueError)
    check_raises(lambda m, a: m.grad(lambda y: m.to_fp8(y).astype(m.float32).sum())(a),
                 A(np.array([1.0, 2.0], np.float32)), err=ValueError)


def test_fp8_vmap_rmx_addition():
    rx = get_rmx()
    x = rand((3, 7), "float32", seed=10, low=-300, high=300)
    v = rx.vmap(rx.to_fp8)(rx.array(x))
    np.testing.assert_array_equal(np.array(v), np.array(REF.to_fp8(REF.array(x))))
    c = rx.vmap(lambda a: rx.from_fp8(a, rx.float32))(rx.array(np.array(v)))
    np.testing.assert_array_equal(np.array(c), np.array(REF.from_fp8(REF.array(np.array(v)),
                                                                      REF.float32)))


# --------------------------------------------------------------------------
# from_dlpack


@pytest.mark.parametrize("data", [
    np.arange(6, dtype=np.float32).reshape(2, 3),
    np.arange(6, dtype=np.float64).reshape(3, 2),
    np.array([1, 2], np.int64), np.array([True, False]), np.array([1 + 2j], np.complex64),
    np.array([1 - 2j], np.complex128), np.array(3.0), np.zeros((0, 3)),
    np.array([1.5], np.float16), np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2],
    np.arange(6, dtype=np.float32).reshape(2, 3).T,
], ids=lambda d: f"{d.dtype}{list(d.shape)}")
def test_from_dlpack_numpy(data):
    check(lambda m: m.from_dlpack(data), exact=True)
    check(lambda m: m.from_dlpack(data, copy=True), exact=True)


def test_from_dlpack_copies_and_errors():
    b = np.arange(3, dtype=np.float32)
    check_raises(lambda m: m.from_dlpack(b, copy=False), err=ValueError)
    check_raises(lambda m: m.from_dlpack([1, 2]), err=TypeError)
    rx = get_rmx()
    c = rx.from_dlpack(b)
    b[0] = 100
    assert np.array(c)[0] == 0  # a copy, as MLX's CPU import
    check(lambda m: m.from_dlpack(m.array([1, 2])), exact=True)
    # another DLPack producer than NumPy: an MLX array
    src = REF.array([[1.5, 2.5]], REF.float16)
    check(lambda m: m.from_dlpack(src), exact=True)
    check(lambda m: m.from_dlpack(REF.arange(6, dtype=REF.int16)[::2]), exact=True)


# --------------------------------------------------------------------------
# export_to_dot


def _dot(m, *args, **kw):
    f = io.StringIO()
    m.export_to_dot(f, *args, **kw)
    return f.getvalue()


def _shape_of(text):
    """The DOT text with primitive ids replaced by their order of appearance."""
    ids = {}

    def sub(mt):
        return "P%d" % ids.setdefault(mt.group(0), len(ids))

    return re.sub(r"\b\d{6,}\b", sub, text)


def _graphs(m):
    x = m.array([1.0, 2.0])
    y = m.array([3.0, 4.0])
    z = m.exp(x + y) * 2
    return x, y, z


def test_export_to_dot_matches_mlx_layout():
    rx = get_rmx()
    xr, yr, zr = _graphs(rx)
    xm, ym, zm = _graphs(REF)
    assert _shape_of(_dot(rx, zr, x=xr, y=yr)) == _shape_of(_dot(REF, zm, x=xm, y=ym))
    a_r = rx.array(1) + rx.array(2)
    a_m = REF.array(1) + REF.array(2)
    assert _shape_of(_dot(rx, a_r)) == _shape_of(_dot(REF, a_m))
    rx.eval(zr)
    REF.eval(zm)
    assert _dot(rx, zr) == _dot(REF, zm) == 'digraph {\n{ rank=source; "A"; }\n}'


def test_export_to_dot_is_valid_dot_one_node_per_primitive(tmp_path):
    rx = get_rmx()
    x = rx.array(np.arange(6, dtype=np.float32).reshape(2, 3))
    outs = rx.unique(x.reshape(-1), 4, True)
    s, c = rx.sum(x * x), rx.cos(x).T
    path = tmp_path / "g.dot"
    rx.export_to_dot(str(path), list(outs), {"s": s}, c)
    text = path.read_text()
    assert text.startswith("digraph {\n") and text.endswith("}")
    # every line is a node statement or an edge
    node = re.compile(r'^\{ (rank=(source|sink); )?"[A-Z]+"; \}$')
    prim = re.compile(r'^\{ (\d+) \[label ="([A-Za-z]+)", shape=rectangle\]; \}$')
    edge = re.compile(r'^("[A-Z]+" -> \d+|\d+ -> "[A-Z]+")$')
    prims = []
    for line in text.splitlines()[1:-1]:
        mt = prim.match(line)
        if mt:
            prims.append(mt.group(1))
            continue
        assert node.match(line) or edge.match(line), line
    assert len(prims) == len(set(prims)) > 5  # one node per primitive
    assert text.count("rank=sink") == 4


def test_export_to_dot_errors(tmp_path):
    for m in (get_rmx(), REF):
        with pytest.raises(ValueError):
            m.export_to_dot(str(tmp_path / "x.dot"), 3)
