"""The array object: repr, attributes, conversions, iteration, pickling, hashing, methods."""

import copy
import operator
import pickle

import numpy as np
import pytest

from diff import A, DTYPES, REF, check, check_raises, dname, get_rmx, mlx_quirk, rand, to_numpy

# ----------------------------------------------------------------------- repr

REPR_CASES = {
    "int_1d": lambda m: m.array([1, 2, 3]),
    "int_neg": lambda m: m.array([-128, 0, 127], m.int8),
    "uint8": lambda m: m.array([255, 0], m.uint8),
    "uint64": lambda m: m.array([1, 2], m.uint64),
    "int64_big": lambda m: m.array(2**40),
    "int64_min": lambda m: m.array([-2**63, 2**63 - 1]),
    "float_ints": lambda m: m.array([3.0, -2.0]),
    "float_mixed": lambda m: m.array([1.5, 2.25, 1e-8]),
    "float_big": lambda m: m.array([1e10, 1.0]),
    "float_1e5": lambda m: m.array([1e-5, 1.0]),
    "float_1e4": lambda m: m.array([1e-4, 1.0]),
    "float_prec": lambda m: m.array([1.123456789, 2.0]),
    "float_123456": lambda m: m.array([123456.7, 1.0]),
    "float_1234567": lambda m: m.array([1234567.0, 1.0]),
    "float_99999": lambda m: m.array([99999.0, 999999.0]),
    "float_small": lambda m: m.array([0.0001234, 0.00001234]),
    "float_1e20": lambda m: m.array(1e20),
    "float_1e-20": lambda m: m.array(1e-20),
    "float_neg0": lambda m: m.array(-0.0),
    "float_specials": lambda m: m.array([float("inf"), -float("inf"), float("nan")]),
    "float_nan_0d": lambda m: m.array(float("nan")),
    "neg_nan": lambda m: m.array([0.0]) / 0,
    "f64": lambda m: m.array([0.1, 0.2, 1 / 3], m.float64),
    "f64_huge": lambda m: m.array([1e300, 1.0, -1.5e-7], m.float64),
    "f16": lambda m: m.array([1, 2, 3], m.float16) / 3,
    "f16_neg0": lambda m: m.array(-0.0, m.float16),
    "bf16": lambda m: m.array([1 / 3, 1.0, 1e-3], m.bfloat16),
    "bf16_inf": lambda m: m.array(float("inf"), m.bfloat16),
    "bool": lambda m: m.array([True, False]),
    "bool_0d": lambda m: m.array(True),
    "complex": lambda m: m.array([1 + 2j, -1.5 - 0.5j]),
    "complex_0d": lambda m: m.array(3 + 0j),
    "complex_neg": lambda m: m.array(-3 - 4.5j),
    "complex_mixed": lambda m: m.array([0.1 + 0.2j, 1.0]),
    "complex_big": lambda m: m.array([1e10 + 1e-10j]),
    "complex_nan": lambda m: m.array([complex(float("nan"), 1.0)]),
    "int_0d": lambda m: m.array(7),
    "float_0d": lambda m: m.array(3.5),
    "empty": lambda m: m.array([]),
    "empty_2d_0_3": lambda m: m.zeros((0, 3)),
    "empty_2d_3_0": lambda m: m.zeros((3, 0)),
    "empty_3d": lambda m: m.zeros((2, 0, 2)),
    "empty_nested": lambda m: m.array([[[]]]),
    "ones_4d": lambda m: m.zeros((1, 1, 1, 1)),
    "2d": lambda m: m.arange(6).reshape(2, 3),
    "3d": lambda m: m.arange(24).reshape(2, 3, 4),
    "3d_float": lambda m: m.arange(24.0).reshape(2, 3, 4) / 7,
    "4d": lambda m: m.arange(16).reshape(2, 2, 2, 2),
    "six": lambda m: m.arange(6),
    "seven": lambda m: m.arange(7),
    "summ_1001": lambda m: m.arange(1001),
    "summ_2x1000": lambda m: m.arange(2000.0).reshape(2, 1000),
    "summ_6x10": lambda m: m.arange(60).reshape(6, 10),
    "summ_7x7": lambda m: m.arange(49).reshape(7, 7),
    "summ_7x1x1": lambda m: m.arange(7).reshape(7, 1, 1),
    "summ_col": lambda m: m.arange(1001).reshape(1001, 1),
    "summ_3d": lambda m: m.arange(8 * 8 * 8).reshape(8, 8, 8),
    "summ_bool": lambda m: m.array([True] * 7),
    "summ_float": lambda m: m.arange(1.0, 11.0) / 7,
    "transposed": lambda m: m.arange(6).reshape(2, 3).T,
    "reversed": lambda m: m.array([1, 2])[::-1],
    "broadcast": lambda m: m.broadcast_to(m.array([1.5, 2.5]), (3, 2)),
}


@pytest.mark.parametrize("case", sorted(REPR_CASES))
def test_repr(case):
    check(lambda m: repr(REPR_CASES[case](m)))
    check(lambda m: str(REPR_CASES[case](m)))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (8,), (2, 2, 2)], ids=repr)
def test_repr_random(dt, shape):
    """Random values of every dtype: the %g-style, 6 significant digit formatting must match."""
    x = A(rand(shape, dt, seed=1, low=-1000, high=1000) * (1 if dt in ("bool_",) else 1), dt)
    check(lambda m, a: repr(a), x)
    y = A(rand(shape, dt, seed=2, special=True), dt) if dt in ("float16", "float32", "float64", "bfloat16",
                                                              "complex64") else x
    check(lambda m, a: repr(a), y)


def test_repr_printoptions_precision():
    def f(m):
        try:
            m.set_printoptions(precision=3)
            r = repr(m.array([1.123456789, 2.0])), m.get_printoptions().precision
        finally:
            m.set_printoptions()
        return r + (repr(m.array([1.123456789, 2.0])), m.get_printoptions().precision)
    check(f)


def test_format():
    check(lambda m: format(m.array(1.5)))
    check(lambda m: f"{m.array(1.5):.2f}")
    check(lambda m: f"{m.array(3)}")
    check(lambda m: f"{m.array(3):05d}")


# ------------------------------------------------------------------ attributes

@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 2, 3, 4)], ids=repr)
def test_attributes(shape, dt):
    x = A(rand(shape, dt, seed=3), dt)
    check(lambda m, a: (a.shape, a.ndim, a.size, a.nbytes, a.itemsize, a.dtype), x)
    check(lambda m, a: (a.T.shape, type(a.shape).__name__), x)
    check(lambda m, a: (a.T.shape, a.T.size, a[None].ndim), x)


def test_shape_is_tuple_of_ints():
    rx = get_rmx()
    s = rx.zeros((2, 3)).shape
    assert type(s) is tuple and all(type(v) is int for v in s)


# --------------------------------------------------------- item / tolist / len

@pytest.mark.parametrize("dt", DTYPES)
def test_item(dt):
    x = A(rand((1,), dt, seed=4, low=-50, high=50) * 1, dt)
    check(lambda m, a: a.item(), x)
    check(lambda m, a: a.reshape(()).item(), x)
    check(lambda m, a: a.reshape(1, 1).item(), x)
    check(lambda m, a: type(a.item()).__name__, x)


def test_item_specials():
    check(lambda m: m.array(1.1).item())                       # exact float32 value as Python float
    check(lambda m: m.array([1.1], m.float16).item())
    check(lambda m: m.array(float("nan")).item())
    check(lambda m: m.array(2**40).item())
    check(lambda m: m.array(2**63 - 1, m.uint64).item())
    check(lambda m: m.array([1, 2]).item())                      # ValueError
    check(lambda m: m.zeros((0,)).item())                        # ValueError


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 0), (0, 2), (2, 1, 2)], ids=repr)
def test_tolist(shape, dt):
    x = A(rand(shape, dt, seed=5, low=-50, high=50), dt)
    check(lambda m, a: a.tolist(), x)
    check(lambda m, a: a.T.tolist(), x)


def test_tolist_types():
    rx = get_rmx()
    assert type(rx.array([1]).tolist()[0]) is int
    assert type(rx.array([1.5]).tolist()[0]) is float
    assert type(rx.array([True]).tolist()[0]) is bool
    assert type(rx.array([1j]).tolist()[0]) is complex
    assert type(rx.array([1], rx.bfloat16).tolist()[0]) is float
    assert type(rx.array(3).tolist()) is int


def test_len():
    check(lambda m: len(m.array([[1, 2]])))
    check(lambda m: len(m.zeros((0, 3))))
    check(lambda m: len(m.arange(6).reshape(2, 3).T))
    check(lambda m: len(m.array(3)))                              # TypeError


# ----------------------------------------------------------------- iteration

@pytest.mark.parametrize("shape", [(3,), (2, 3), (0, 2), (3, 2, 2)], ids=repr)
def test_iteration(shape):
    x = A(rand(shape, "float32", seed=6))
    check(lambda m, a: list(a), x)
    check(lambda m, a: [v for v in a.T], x)
    check(lambda m, a: tuple(v.shape for v in a), x)


def test_iteration_misc():
    check(lambda m: list(m.array(3)))                             # TypeError
    check(lambda m: type(iter(m.arange(3))).__name__)
    check(lambda m: 2 in m.array([1, 2, 3]))
    check(lambda m: 5 in m.array([1, 2, 3]))
    check(lambda m: m.array(1) in m.array([1, 2, 3]))
    check(lambda m: m.array([1, 2]) in [1])                       # ValueError
    check(lambda m: [a.item() for a in m.arange(4)])
    check(lambda m: list(zip(m.arange(2), m.arange(2.0))))


# ---------------------------------------------------------- numpy round trip

@pytest.mark.parametrize("dt", [d for d in DTYPES if d != "bfloat16"])
@pytest.mark.parametrize("view", [None, "T", "step"])
def test_numpy_roundtrip(dt, view):
    views = {None: None, "T": lambda x: x.T, "step": lambda x: x[::-1, ::2]}
    data = rand((3, 4), dt, seed=7)
    x = A(data, dt, view=views[view])
    check(lambda m, a: np.array(a).dtype.str, x)
    check(lambda m, a: np.array(a).tolist(), x)
    check(lambda m, a: np.asarray(a).shape, x)
    check(lambda m, a: m.array(np.array(a)), x)
    check(lambda m, a: np.asarray(a, dtype=np.complex128 if dt == "complex64" else np.float64).tolist(), x)
    rx = get_rmx()
    got = np.array(x.make(rx))
    expect = views[view](data) if view else data
    np.testing.assert_array_equal(got, expect.astype(got.dtype))


def test_numpy_interop_misc():
    check(lambda m: np.array(m.array([1, 2], m.bfloat16)))        # ValueError (no PEP 3118 bf16)
    check(lambda m: (np.array(m.array([1, 2], m.int8)) + 1).tolist())
    check(lambda m: np.asarray(m.zeros((2, 0))).shape)
    check(lambda m: np.array(m.array(1.5)).shape)
    check(lambda m: np.array(m.arange(6).reshape(2, 3)).flags.writeable)
    check(lambda m: m.array([1, 2]).__array__().dtype.str)
    check(lambda m: bytes(m.array([1, 2], m.uint8)))
    check(lambda m: bytes(m.array([1.0])))
    check(lambda m: bytes(m.arange(6, dtype=m.int16).reshape(2, 3).T))


@pytest.mark.parametrize("dt", [d for d in DTYPES if d != "bfloat16"])
def test_buffer_protocol(dt):
    check(lambda m: memoryview(m.zeros((2, 3), getattr(m, dt))).format)
    check(lambda m: memoryview(m.zeros((2, 3), getattr(m, dt))).shape)
    check(lambda m: memoryview(m.zeros((2, 3), getattr(m, dt))).itemsize)
    check(lambda m: memoryview(m.zeros((), getattr(m, dt))).shape)


# ------------------------------------------------------------------- pickle

@pytest.mark.parametrize("dt", [pytest.param(d, marks=mlx_quirk) if d == "float64" else d for d in DTYPES])
@pytest.mark.parametrize("shape", [(), (0, 3), (3,), (2, 3)], ids=repr)
def test_pickle_roundtrip(dt, shape):
    """(MLX quirk: a pickled float64 array comes back as float32.)"""
    x = A(rand(shape, dt, seed=8), dt)
    check(lambda m, a: pickle.loads(pickle.dumps(a)), x)
    check(lambda m, a: pickle.loads(pickle.dumps(a.T)), x)
    check(lambda m, a: pickle.loads(pickle.dumps([a, {"k": a}], protocol=2)), x)


def test_pickle_dtype_fails_like_mlx():
    check(lambda m: pickle.dumps(m.float16))                       # TypeError in MLX


def test_copy_module():
    check(lambda m: copy.copy(m.arange(3)))
    check(lambda m: copy.deepcopy([m.arange(3), m.ones((2,))]))


# -------------------------------------------------------------------- hash

def test_hash_identity_semantics():
    """Arrays hash by identity (usable as dict keys; equal values != same key)."""
    rx = get_rmx()
    a, b = rx.array(3), rx.array(3)
    assert hash(a) == hash(a)
    assert isinstance(hash(a), int)
    assert {a: 1}[a] == 1
    assert b not in {a: 1}
    assert len({a, b}) == 2
    ra, rb = REF.array(3), REF.array(3)
    assert (hash(ra) == hash(rb)) == (hash(a) == hash(b)) == False  # noqa: E712


def test_eq_returns_array():
    check(lambda m: m.array(3) == m.array(3))
    check(lambda m: type(m.array(3) == m.array(3)).__name__)


# ----------------------------------------------------- scalar conversions

@pytest.mark.parametrize("expr", ["bool(m.array([1]))", "bool(m.array(0.5))", "bool(m.array(0.0))",
                                  "bool(m.zeros((1, 1)))", "bool(m.array(float('nan')))",
                                  "bool(m.array([1, 2]))", "bool(m.array([]))", "int(m.array(2.7))",
                                  "int(m.array(-2.7))", "int(m.array([2.7]))", "int(m.array([2.7, 1]))",
                                  "int(m.array(2**40))", "int(m.array(float('nan')))", "float(m.array(2))",
                                  "float(m.array([[2.5]]))", "float(m.array(1.5, m.float16))",
                                  "complex(m.array(2))", "complex(m.array(1.5))", "int(m.array(1+2j))",
                                  "float(m.array(1+2j))", "int(m.array(True))", "float(m.array(3, m.uint8))",
                                  "operator.index(m.array(3, m.uint8))", "operator.index(m.array(True))",
                                  "operator.index(m.array(2.5))", "operator.index(m.array([2]))",
                                  "[10, 20, 30][m.array(1)]", "list(range(m.array(3)))"])
def test_scalar_conversions(expr):
    check(lambda m: eval(expr, {"m": m, "operator": operator}))


def test_control_flow_on_0d():
    def f(m):
        y = m.array(2.0) * 3
        out = []
        if y > 0:
            out.append("pos")
        while y > 1:
            y = y / 2
            out.append(round(y.item(), 5))
        return out, bool(m.array(True) & m.array(False)), (1 if m.array([0]) else 2)
    check(f)


# ------------------------------------------------------------------- methods

def test_array_has_all_mlx_methods():
    rx = get_rmx()
    public = sorted(n for n in dir(REF.array) if not n.startswith("_"))
    missing = [n for n in public if not hasattr(rx.array, n)]
    assert not missing, f"rmx.core.array lacks: {missing}"


def test_array_has_mlx_dunders():
    rx = get_rmx()
    wanted = ["__abs__", "__add__", "__and__", "__array__", "__bool__", "__complex__", "__copy__",
              "__deepcopy__", "__eq__", "__float__", "__floordiv__", "__ge__", "__getitem__", "__gt__",
              "__hash__", "__iadd__", "__iand__", "__ifloordiv__", "__ilshift__", "__imatmul__", "__imod__",
              "__imul__", "__index__", "__int__", "__invert__", "__ior__", "__ipow__", "__irshift__",
              "__isub__", "__iter__", "__itruediv__", "__ixor__", "__le__", "__len__", "__lshift__", "__lt__",
              "__matmul__", "__mod__", "__mul__", "__ne__", "__neg__", "__or__", "__pos__", "__pow__",
              "__radd__", "__rfloordiv__", "__rmod__", "__rmul__", "__rpow__", "__rshift__", "__rsub__",
              "__rtruediv__", "__setitem__", "__sub__", "__truediv__", "__xor__", "__repr__", "__bytes__"]
    assert all(hasattr(REF.array, n) for n in wanted)
    missing = [n for n in wanted if not hasattr(rx.array, n)]
    assert not missing, f"rmx.core.array lacks: {missing}"


def test_no_reflected_bitwise_like_mlx():
    """MLX has no __rand__/__ror__/__rxor__/__rlshift__/__rrshift__/__rmatmul__."""
    check(lambda m: 2 & m.array([3]))
    check(lambda m: 2 | m.array([3]))
    check(lambda m: 1 << m.array([3]))
    check(lambda m: [[1.0]] @ m.array([[3.0]]))


METHOD_CALLS = {
    "abs": ((), {}), "all": ((), {"axis": 0}), "any": ((1,), {"keepdims": True}), "argmax": ((-1,), {}),
    "argmin": ((), {"axis": 0, "keepdims": True}), "conj": ((), {}), "cos": ((), {}), "cummax": ((1,), {}),
    "cummin": ((), {"axis": 0, "reverse": True}), "cumprod": ((0,), {}), "cumsum": ((), {"axis": 1}),
    "diag": ((), {}), "diagonal": ((1,), {}), "exp": ((), {}), "flatten": ((), {}), "imag": ((), {}),
    "log": ((), {}), "log10": ((), {}), "log1p": ((), {}), "log2": ((), {}), "logcumsumexp": ((), {"axis": 1}),
    "logsumexp": ((0,), {}), "max": ((), {}), "mean": ((), {"axis": (0, 1)}), "min": ((1,), {}),
    "moveaxis": ((0, 1), {}), "prod": ((), {}), "real": ((), {}), "reciprocal": ((), {}),
    "reshape": ((-1,), {}), "round": ((1,), {}), "rsqrt": ((), {}), "sin": ((), {}), "split": ((2,), {}),
    "sqrt": ((), {}), "square": ((), {}), "squeeze": ((), {}), "std": ((), {"ddof": 1}), "sum": ((), {}),
    "swapaxes": ((0, 1), {}), "transpose": ((), {}), "var": ((1,), {}), "astype": (("float16",), {}),
    "view": (("int32",), {}), "tolist": ((), {}), "item": (None, {}),
}


@pytest.mark.parametrize("meth", sorted(METHOD_CALLS))
def test_methods(meth):
    args, kw = METHOD_CALLS[meth]
    x = A(rand((4, 4), "float32", seed=9, low=0.1, high=3))

    def f(m, a):
        if args is None:
            return getattr(a[0, 0], meth)()
        aa = tuple(getattr(m, v) if isinstance(v, str) else v for v in args)
        return getattr(a, meth)(*aa, **kw)
    check(f, x, rtol=1e-5, atol=1e-6)


def test_methods_cover_mlx_array_dir():
    public = {n for n in dir(REF.array) if not n.startswith("_")}
    untested_attrs = {"T", "mT", "at", "dtype", "itemsize", "nbytes", "ndim", "shape", "size"}
    assert public - untested_attrs <= set(METHOD_CALLS), sorted(public - untested_attrs - set(METHOD_CALLS))


def test_dtype_name_helper():
    rx = get_rmx()
    assert dname(rx.float32) == "float32" and dname(REF.bool_) == "bool"
    np.testing.assert_array_equal(to_numpy(rx.array([1.5], rx.bfloat16)), np.array([1.5], np.float32))


def test_array_type_name():
    check(lambda m: type(m.array(1)).__name__)
    check_raises(lambda m: m.array(1).nonexistent_attribute, err=AttributeError)
