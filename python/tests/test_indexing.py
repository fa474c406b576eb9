"""Indexing: __getitem__/__setitem__, take/take_along_axis/put_along_axis, slice/slice_update, .at[].

Boolean-mask reads (unsupported by MLX) and out-of-range checks (MLX does not
check) are compared with NumPy and only run against rmx (``rmx_only``).
"""

import numpy as np
import pytest

from diff import A, DTYPES, REF, check, check_np, check_raises, get_rmx, mlx_quirk, rand, rmx_only, to_numpy

X = A(rand((4, 5, 6), "int32", seed=1, low=-100, high=100))
XF = A(rand((4, 5, 6), "float32", seed=2))

# Index expressions as functions of the library (np works too: np.array).
GETITEM = {
    "int": lambda m: 1,
    "neg_int": lambda m: -1,
    "int_tuple": lambda m: (1, 2),
    "int_3": lambda m: (-1, -2, -3),
    "slice": lambda m: slice(1, 3),
    "slice_step": lambda m: slice(None, None, 2),
    "slice_neg_step": lambda m: slice(None, None, -1),
    "slice_neg_step2": lambda m: (slice(3, 0, -2), slice(None, None, -3)),
    "slice_mix": lambda m: (slice(1, -1, 2), slice(None, None, -3), slice(5, 0, -2)),
    "slice_oob": lambda m: (slice(10, None), slice(-100, 100)),
    "slice_empty": lambda m: (slice(None), slice(None), slice(7, None)),
    "slice_rev_empty": lambda m: slice(0, 3, -1),
    "none": lambda m: None,
    "none_mid": lambda m: (slice(None), None, 1),
    "ellipsis": lambda m: Ellipsis,
    "ellipsis_int": lambda m: (Ellipsis, 2),
    "int_ellipsis": lambda m: (2, Ellipsis, None, 1),
    "empty_tuple": lambda m: (),
    "arr1d": lambda m: m.array([0, 2, 3]),
    "arr1d_neg": lambda m: m.array([-1, 0, -4]),
    "arr1d_dup": lambda m: m.array([1, 1, 0]),
    "arr2d": lambda m: m.array([[0, 1], [2, 3]]),
    "arr_0d": lambda m: m.array(1),
    "arr_uint8": lambda m: m.array([0, 2], m.uint8),
    "arr_int64": lambda m: m.array([3, 1], m.int64),
    "list": lambda m: [0, 2],
    "list_nested": lambda m: [[0, 1]],
    "two_arrays": lambda m: (m.array([0, 2]), m.array([1, 3])),
    "arrays_bcast": lambda m: (m.array([[0], [2]]), m.array([1, 3])),
    "arr_slice_arr": lambda m: (m.array([0, 2]), slice(None), m.array([1, 3])),
    "slice_arr_arr": lambda m: (slice(None), m.array([[0], [2]]), m.array([1, 3])),
    "arr_none_arr": lambda m: (m.array([0, 1]), None, m.array([1, 2])),
    "ellipsis_arr": lambda m: (Ellipsis, m.array([0, 1])),
    "arr_ellipsis": lambda m: (m.array([0, 1]), Ellipsis),
    "none_arr_int": lambda m: (None, m.array([[0, 1]]), 1),
    "int_slice_arr": lambda m: (1, slice(None), m.array([0, 5])),
    "arr_slice_int": lambda m: (m.array([0, 1]), slice(1, 3), 2),
    "slice_int_arr": lambda m: (slice(None), 1, m.array([0, 1])),
    "rev_arr": lambda m: (slice(None, None, -1), m.array([4, 0])),
    "arr_arr2d_step": lambda m: (m.array([0, 1]), m.array([[1], [2]]), slice(None, None, 2)),
    "arr0d_arr": lambda m: (m.array(1), m.array([1, 2])),
    "np_int": lambda m: np.int64(2),
}


@pytest.mark.parametrize("name", sorted(GETITEM))
def test_getitem(name):
    idx = GETITEM[name]
    check(lambda m, a: a[idx(m)], X, np_fn=lambda a: a[idx(np)])


@pytest.mark.parametrize("name", ["slice_step", "slice_neg_step2", "arr1d", "arrays_bcast",
                                  "arr_slice_arr", "int_ellipsis", "none_mid"])
@pytest.mark.parametrize("view", ["T", "step", "perm"])
def test_getitem_on_views(name, view):
    views = {"T": lambda x: x.T, "step": lambda x: x[::-1, :, 1::2], "perm": lambda x: x.transpose(1, 2, 0)}
    shape = (4, 5, 12) if view == "step" else (4, 5, 6)
    x = A(rand(shape, "float32", seed=3), view=views[view])
    idx = GETITEM[name]
    check(lambda m, a: a[idx(m)], x, np_fn=lambda a: a[idx(np)])


@pytest.mark.parametrize("dt", DTYPES)
def test_getitem_dtypes(dt):
    x = A(rand((4, 5), dt, seed=4), dt)
    check(lambda m, a: a[1], x)
    check(lambda m, a: a[::-2, m.array([0, 4])], x)
    check(lambda m, a: a[m.array([[1, 2]]), 1:], x)


def test_getitem_0d():
    check(lambda m: m.array(5)[None])
    check(lambda m: m.array(5)[...])
    check(lambda m: m.array(5)[()])
    check_raises(lambda m: m.array(5)[0], err=ValueError)


@pytest.mark.parametrize("idx", ["1.0", "'x'", "(0, 0, 0, 0)", "(Ellipsis, Ellipsis)", "m.array([0.0])",
                                 "[]", "True", pytest.param("m.array(True)", marks=mlx_quirk),
                                 pytest.param("np.array([0, 1])", marks=mlx_quirk)])
def test_getitem_errors(idx):
    """Invalid index types/counts raise the same exception type as MLX (mostly ValueError)."""
    check_raises(lambda m, a: a[eval(idx, {"m": m, "np": np})], X)


# -------------------------------------------------------------------- setitem

SETITEM = [
    ("int", lambda m: 0, lambda m: 5),
    ("int_arr_row", lambda m: 1, lambda m: m.arange(6)),
    ("col", lambda m: (slice(None), 1), lambda m: m.arange(4).reshape(4, 1) * 10),
    ("step", lambda m: (slice(None, None, 2), slice(None, None, -1)), lambda m: -7),
    ("step_arr", lambda m: (slice(1, 3), slice(None, None, 2)), lambda m: m.arange(18).reshape(2, 3, 3)),
    ("ellipsis_last", lambda m: (Ellipsis, -1), lambda m: m.array([9, 8, 7, 6, 5])),
    ("none", lambda m: None, lambda m: 3),
    ("all", lambda m: slice(None), lambda m: m.array(5.5)),
    ("rev", lambda m: slice(None, None, -1), lambda m: m.arange(6)),
    ("arr", lambda m: m.array([0, 2]), lambda m: 1),
    ("arr_vals", lambda m: m.array([3, 1]), lambda m: m.arange(60).reshape(2, 5, 6)),
    ("arr_bcast_vals", lambda m: m.array([0, 2]), lambda m: m.arange(6)),
    ("two_arrs", lambda m: (m.array([[0], [2]]), m.array([1, 3])), lambda m: 0),
    ("arr_slice_arr", lambda m: (m.array([0, 2]), slice(None), m.array([1, 3])), lambda m: m.arange(5)),
    ("float_into_int", lambda m: 0, lambda m: 2.75),
    ("f16_into_int", lambda m: 0, lambda m: m.full((5, 6), 1.5, m.float16)),
    ("oob_slice", lambda m: slice(5, None), lambda m: 1),
    ("neg", lambda m: (-1, -1), lambda m: m.array([1, 2, 3, 4, 5, 6])),
    ("list", lambda m: [0, 3], lambda m: 4),
    ("np_int", lambda m: np.int64(1), lambda m: 2),
]


@pytest.mark.parametrize("case", SETITEM, ids=[c[0] for c in SETITEM])
def test_setitem(case):
    _, idx, val = case

    def f(m, a):
        b = m.array(a)
        b[idx(m)] = val(m)
        return b

    def npf(a):
        b = a.copy()
        v = val(np)
        b[idx(np)] = v
        return b
    check(f, X, np_fn=npf)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("val", [1, -1, 2.5, True, 300], ids=repr)
def test_setitem_scalar_dtypes(dt, val):
    """Scalars are cast to the array dtype (with MLX's overflow check for ints)."""
    x = A(rand((3, 4), dt, seed=5), dt)

    def f(m, a):
        b = m.array(a)
        b[1:, ::2] = val
        return b
    check(f, x)


def test_setitem_errors():
    def setter(idx, val):
        def f(m, a):
            b = m.array(a)
            b[eval(idx, {"m": m})] = eval(val, {"m": m})
            return b
        return f
    check_raises(setter("0", "m.array([1, 2])"), X, err=ValueError)      # broadcast failure
    check_raises(setter("(slice(None), 1)", "m.ones((1, 4, 6))"), X, err=ValueError)
    check_raises(setter("1.0", "1"), X, err=ValueError)
    check_raises(setter("(0, 0, 0, 0)", "1"), X, err=ValueError)
    check_raises(setter("0", "2**40"), X, err=ValueError)                  # overflow


@mlx_quirk
def test_setitem_list_value_raises():
    def f(m, a):
        b = m.array(a)
        b[0] = [1, 2, 3, 4, 5, 6]            # MLX: ValueError (lists are not converted)
        return b
    check_raises(f, X, err=ValueError)


def test_setitem_functional_semantics():
    """Views taken before an assignment don't change; aliases do."""
    def f(m):
        b = m.arange(12).reshape(3, 4)
        row = b[0]
        alias = b
        b[0] = 100
        return b, row, alias, alias is b
    check(f)


def test_setitem_repeated_updates():
    def f(m):
        b = m.zeros((4, 4))
        for i in range(4):
            b[i, i] = i + 1
            b[i, ::2] += 1
        return b
    check(f)


# ------------------------------------------------------------- boolean masks

MASKS = {
    "full": lambda a, m: a > 0,
    "rows": lambda a, m: m.array([True, False, True, True]),
    "rows_cols": lambda a, m: m.array(rand((4, 5), "bool_", seed=6)),
    "none_true": lambda a, m: a > 1000,
    "all_true": lambda a, m: a > -1000,
}


@pytest.mark.parametrize("name", sorted(MASKS))
def test_mask_setitem_scalar(name):
    """MLX supports boolean-mask *assignment* of scalars."""
    def f(m, a):
        b = m.array(a)
        b[MASKS[name](a, m)] = -5
        return b

    def npf(a):
        b = a.copy()
        b[MASKS[name](a, np)] = -5
        return b
    check(f, X, np_fn=npf)


MASK_SET = {
    "exact_count": ("m.array([True, False, True, False])", "m.arange(60).reshape(2, 5, 6)"),
    "bcast_rows": ("m.array([True, False, True, False])", "m.arange(6)"),
    "full_mask_exact": ("a > 0", "m.arange(int((a > 0).sum().item()))"),
    "list_of_bools": ("[True, False, False, True]", "7"),
    "np_bools": ("np.array([True, False, False, True])", "7"),
    "bool_0d": ("m.array(True)", "1"),
    "mask_2d": ("m.array(rand((4, 5), 'bool_', seed=31))", "-1"),
}


@pytest.mark.parametrize("case", sorted(MASK_SET))
def test_mask_setitem_values(case):
    mask, val = MASK_SET[case]

    def f(m, a):
        env = {"m": m, "a": a, "np": np, "rand": rand}
        b = m.array(a)
        b[eval(mask, env)] = eval(val, env)
        return b
    check(f, X)


def test_mask_setitem_wrong_shape_raises():
    def f(m, a):
        b = m.array(a)
        b[m.array([True, False])] = 1
        return b
    check_raises(f, X, err=ValueError)


@pytest.mark.parametrize("name", sorted(MASKS))
def test_mask_getitem_unsupported_in_mlx(name):
    """Parity check of the *reference* behaviour; rmx may implement it (see below)."""
    with pytest.raises(ValueError):
        a = REF.array(X.data)
        REF.eval(a[MASKS[name](a, REF)])


@rmx_only
@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("dt", ["int32", "float32", "bool_", "float16", "uint8"])
def test_mask_getitem_vs_numpy(name, dt):
    x = A(rand((4, 5, 6), dt, seed=7), dt)
    np_mask = MASKS[name](x.data.astype(np.float32) - 0.5 if dt in ("bool_", "uint8") else x.data, np)

    def f(m, a):
        return a[m.array(np_mask)]
    check_np(f, lambda a: a[np_mask], x)


@rmx_only
@pytest.mark.parametrize("mask", ["[True, False]", "[True, False, True, True, False]", "[[True, False, True]]"])
def test_mask_getitem_wrong_shape_raises_indexerror(mask):
    """NumPy: IndexError('boolean index did not match ...'); rmx must match NumPy."""
    with pytest.raises(IndexError):
        X.data[np.array(eval(mask))]
    rx = get_rmx()
    with pytest.raises(IndexError):
        rx.eval(rx.array(X.data)[rx.array(eval(mask))])


@rmx_only
def test_mask_getitem_combined_vs_numpy():
    mask5 = rand((5,), "bool_", seed=8)
    check_np(lambda m, a: a[:, m.array(mask5)], lambda a: a[:, mask5], X)
    check_np(lambda m, a: a[1, m.array(mask5)], lambda a: a[1, mask5], X)
    check_np(lambda m, a: a[m.array(mask5)[:4]], lambda a: a[mask5[:4]], X)
    check_np(lambda m, a: a.T[a.T > 50], lambda a: a.T[a.T > 50], X)


# ------------------------------------------------------ out of range (rmx only)

OOR = ["4", "-5", "(0, 5)", "(0, 0, 6)", "(slice(None), -6)", "(Ellipsis, 6)"]


@rmx_only
@pytest.mark.parametrize("idx", OOR)
def test_getitem_out_of_range_int_raises(idx):
    """NumPy raises IndexError for out-of-range integers; rmx must too (MLX reads garbage)."""
    with pytest.raises(IndexError):
        X.data[eval(idx)]
    rx = get_rmx()
    a = rx.array(X.data)
    with pytest.raises(IndexError):
        rx.eval(a[eval(idx)])


@rmx_only
@pytest.mark.parametrize("idx", OOR)
def test_setitem_out_of_range_int_raises(idx):
    rx = get_rmx()
    a = rx.array(X.data)
    with pytest.raises(IndexError):
        a[eval(idx)] = 1
        rx.eval(a)


@rmx_only
@pytest.mark.parametrize("idx", ["[4]", "[-5]", "[0, 10]", "[[0], [4]]"])
def test_getitem_out_of_range_array_raises(idx):
    """Integer-array indices out of range: IndexError (at indexing or at evaluation)."""
    with pytest.raises(IndexError):
        X.data[np.array(eval(idx))]
    rx = get_rmx()
    a = rx.array(X.data)
    with pytest.raises(IndexError):
        rx.eval(a[rx.array(eval(idx))])


@rmx_only
def test_zero_slice_step_raises_valueerror():
    """NumPy: ValueError('slice step cannot be zero'); MLX 0.32.4 crashes with SIGFPE."""
    rx = get_rmx()
    with pytest.raises(ValueError):
        rx.eval(rx.arange(5)[::0])


@rmx_only
@pytest.mark.parametrize("idx", ["2", "-1", "(1, 3)"])
def test_in_range_ints_still_fine(idx):
    check_np(lambda m, a: a[eval(idx)], lambda a: a[eval(idx)], X)


# ----------------------------------------------------------------------- take

@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3], ids=repr)
@pytest.mark.parametrize("ind", ["[0, 3, 2]", "[[0, 1], [-1, 2]]", "2", "[]", "[-1]"])
def test_take(ind, axis):
    v = eval(ind)

    def f(m, a):
        i = v if isinstance(v, int) else m.array(v, m.int32)
        return m.take(a, i, axis=axis) if axis is not None else m.take(a, i)
    check(f, XF, np_fn=lambda a: np.take(a, np.array(v, np.int64), axis=axis))


@mlx_quirk
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=repr)
def test_take_negative_scalar_index(axis):
    """MLX: take(a, -1, axis=...) raises ValueError '[squeeze] Cannot squeeze axis ...'."""
    check(lambda m, a: m.take(a, -1, axis=axis) if axis is not None else m.take(a, -1), XF)


@pytest.mark.parametrize("dt", ["int8", "uint8", "uint32", "int64"])
def test_take_index_dtypes(dt):
    check(lambda m, a: m.take(a, m.array([1, 0, 3], getattr(m, dt)), axis=0), XF)


def test_take_errors():
    check_raises(lambda m, a: m.take(a, m.array([0]), axis=3), XF, err=IndexError)
    check_raises(lambda m, a: m.take(a, m.array([0.0])), XF, err=ValueError)
    check_raises(lambda m: m.take(m.array(5), m.array([0]), axis=0), err=IndexError)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, None], ids=repr)
def test_take_along_axis(axis):
    if axis is None:
        ind = rand((10,), "int32", seed=9, low=0, high=119)
    else:
        shape = [4, 5, 6]
        n = shape[axis]
        shape[axis] = 3
        ind = rand(tuple(shape), "int32", seed=9, low=-n, high=n - 1)
    check(lambda m, a, i: m.take_along_axis(a, i, axis=axis), XF, A(ind),
          np_fn=lambda a, i: np.take_along_axis(a, i, axis=axis))


def test_take_along_axis_broadcast_and_errors():
    ind = A(np.array([[0], [2], [1], [0]], np.int32))
    check(lambda m, a, i: m.take_along_axis(a[:, :, 0], i, axis=1), XF, ind)
    check(lambda m, a, i: m.take_along_axis(a, i[:, :, None], axis=1), XF, ind)
    check_raises(lambda m, a: m.take_along_axis(a, m.array([[0, 1]]), axis=None), XF, err=ValueError)
    check_raises(lambda m, a: m.take_along_axis(a, m.array([0]), axis=0), XF, err=ValueError)


@pytest.mark.parametrize("axis", [0, 1, -1, None], ids=repr)
@pytest.mark.parametrize("vals", [pytest.param("scalar", marks=mlx_quirk), "array"])
def test_put_along_axis(axis, vals):
    """(MLX requires `values` to be an array: python scalars raise TypeError.)"""
    x = A(rand((4, 6), "float32", seed=10))
    if axis is None:
        ind = np.array([0, 5, 23], np.int32)
        v = np.array([1.0, 2.0, 3.0], np.float32)
    else:
        # distinct indices along the axis so the result is deterministic
        shape = [4, 6]
        n = shape[axis]
        shape[axis] = 2
        g = np.random.default_rng(11)
        ind = np.stack([g.permutation(n)[:2] for _ in range(shape[1 - (axis % 2)])], axis=1 - (axis % 2))
        ind = ind.astype(np.int32).reshape(shape)
        v = rand(tuple(shape), "float32", seed=12)
    vv = A(v) if vals == "array" else 7.5

    def npf(a, i, *rest):
        b = a.copy()
        np.put_along_axis(b, i.astype(np.int64), rest[0] if rest else 7.5, axis=axis)
        return b
    ins = [x, A(ind)] + ([vv] if vals == "array" else [])
    check(lambda m, a, i, *rest: m.put_along_axis(a, i, rest[0] if rest else vv, axis=axis), *ins, np_fn=npf)


# ------------------------------------------------------- slice / slice_update

@pytest.mark.parametrize("start,axes,size", [([1], [0], [2]), ([1, 1], [0, 1], [2, 2]), ([0, 2], [2, 1], [3, 2]),
                                             ([1], [-1], [4]), ([3], [0], [1])], ids=repr)
def test_slice(start, axes, size):
    check(lambda m, a: m.slice(a, m.array(start), axes, size), XF)


def test_slice_errors():
    check_raises(lambda m, a: m.slice(a, m.array([1]), [0], [2, 2]), XF)
    check_raises(lambda m: m.slice(m.arange(12).reshape(3, 4), m.array([1]), [0], [2]), err=ValueError)


@pytest.mark.parametrize("start,axes,ushape", [([1, 1], [0, 1], (1, 2, 6)), ([0], [2], (4, 5, 3)),
                                               ([2, 0, 1], [0, 1, 2], (2, 5, 5)), ([1], [-2], (4, 2, 6))],
                         ids=repr)
def test_slice_update(start, axes, ushape):
    upd = A(rand(ushape, "float32", seed=13))
    check(lambda m, a, u: m.slice_update(a, u, m.array(start), axes), XF, upd)


# ---------------------------------------------------------------------- .at[]

AT_OPS = ["add", "subtract", "multiply", "divide", "maximum", "minimum"]
AT_INDEX = {
    "int": lambda m: 0,
    "slice": lambda m: (slice(None), 1),
    "arr_dup": lambda m: m.array([0, 0, 1]),
    "arr2": lambda m: (m.array([0, 2, 0]), m.array([1, 1, 1])),
    "step": lambda m: (slice(None, None, 2), slice(None, None, -1)),
    "ellipsis": lambda m: (Ellipsis, 0),
}


@pytest.mark.parametrize("idx", sorted(AT_INDEX))
@pytest.mark.parametrize("op", AT_OPS)
@pytest.mark.parametrize("dt", ["int32", "float32"])
def test_at_ops(dt, op, idx):
    x = A(rand((3, 4, 5), dt, seed=14, low=1, high=9), dt)
    for val in [lambda m: 2, lambda m: m.array([1.5, 2.0, 3.0, 0.5, 4.0])]:
        check(lambda m, a: getattr(a.at[AT_INDEX[idx](m)], op)(val(m)), x)


def test_at_accumulates_duplicates_like_numpy_ufunc_at():
    def npf(a):
        b = a.copy()
        np.add.at(b, np.array([0, 0, 1, 0]), 1)
        return b
    check(lambda m, a: a.at[m.array([0, 0, 1, 0])].add(1), A(np.zeros((3, 2), np.float32)), np_fn=npf)


def test_at_is_functional():
    def f(m):
        a = m.arange(4)
        b = a.at[1].add(10)
        return a, b
    check(f)


def test_to_numpy_roundtrip_of_indexing_results():
    rx = get_rmx()
    a = rx.array(X.data)
    np.testing.assert_array_equal(to_numpy(a[1:3, ::2], rx), X.data[1:3, ::2])
