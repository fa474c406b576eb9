"""Array creation: constructor & dtype inference, zeros/ones/full, ranges, eye/tri, meshgrid."""

import numpy as np
import pytest

from diff import A, DTYPES, check, check_raises, rand


# ---------------------------------------------------------------- array(...)

LITERALS = [
    1, -7, 0, 1.0, -2.5, True, False, 2**31, -2**31 - 1, 2**40, -2**63, 2**63 - 1,
    1j, 1.5 - 2j, 1e39, -1e-50,
    [1, 2, 3], [1.0, 2.0], [True, False], [1, 2.0], [True, 2], [1.5, True],
    [1, 2**40], [1, 2 + 1j], [2**62, 1.5], [[1, 2], [3, 4]], [[1], [2.5]],
    (1, 2, 3), ((1, 2), (3, 4)), [], [[]], [[], []], [[[]]],
    [[[1, 2]], [[3, 4]]], [1e39, 1],
]


@pytest.mark.parametrize("val", LITERALS, ids=repr)
def test_array_from_python(val):
    check(lambda m: m.array(val))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("val", [[1, 2, 3], [1.5, -2.0], [True, False], 3, 2.75, [[0, 1], [2, 3]]],
                         ids=repr)
def test_array_from_python_with_dtype(val, dt):
    check(lambda m: m.array(val, dtype=getattr(m, dt)))


@pytest.mark.parametrize("val", [-1, 300, 65537])
def test_array_int_wraps_to_unsigned(val):
    check(lambda m: m.array(val, dtype=m.uint8))
    check(lambda m: m.array([val, 1], dtype=m.uint16))


@pytest.mark.parametrize("val", [[[1, 2], [3]], [[1], []], [1, [2]], [[1, 2], 3]], ids=repr)
def test_array_ragged_raises(val):
    check_raises(lambda m: m.array(val), err=ValueError)


@pytest.mark.parametrize("val", ["a", range(3), [1, "x"], {1: 2}], ids=repr)
def test_array_bad_type_raises(val):
    check_raises(lambda m: m.array(val))


def test_array_none_raises_typeerror():
    check_raises(lambda m: m.array(None), err=TypeError)


@pytest.mark.parametrize("npdt", [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64,
                                  np.int8, np.int16, np.int32, np.int64, np.float16,
                                  np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 3), (1, 2, 3, 2)])
def test_array_from_numpy(npdt, shape):
    # dtype inference from NumPy: float64 -> float32 and complex128 -> complex64 in MLX
    data = (np.arange(int(np.prod(shape))).reshape(shape) % 5).astype(npdt)
    check(lambda m: m.array(data))
    check(lambda m: m.asarray(data))


@pytest.mark.parametrize("view", [lambda x: x.T, lambda x: x[::2, ::-1], lambda x: x[:, 1]],
                         ids=["T", "step", "col"])
def test_array_from_noncontiguous_numpy(view):
    data = view(np.arange(24, dtype=np.float32).reshape(4, 6))
    check(lambda m: m.array(data))


@pytest.mark.parametrize("scal", [np.float16(1.5), np.float32(2.5), np.float64(-3.25), np.int8(3),
                                  np.int64(-4), np.uint32(7), np.bool_(True)], ids=repr)
def test_array_from_numpy_scalar(scal):
    check(lambda m: m.array(scal))


def test_array_from_list_of_arrays():
    check(lambda m: m.array([m.array(1), m.array(2)]))
    check(lambda m: m.array([m.array([1.0, 2.0]), m.array([3.0, 4.0])]))
    check(lambda m: m.array([1, m.array(2.0)]))


@pytest.mark.parametrize("dt", DTYPES)
def test_array_from_array_with_dtype(dt):
    src = A(rand((3, 2), "float32", seed=1) * 4)
    check(lambda m, x: m.array(x, dtype=getattr(m, dt)), src)
    check(lambda m, x: m.array(x), src)


def test_array_copy_is_independent():
    def f(m):
        a = m.arange(4)
        b = m.array(a)
        b[0] = 100
        return a, b
    check(f)


# ------------------------------------------------------------ zeros / ones / full

SHAPES = [(), 0, 3, (3,), [2, 3], (2, 0), (1, 1, 1), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=repr)
@pytest.mark.parametrize("fname", ["zeros", "ones", "empty"])
def test_zeros_ones_default(fname, shape):
    check(lambda m: getattr(m, fname)(shape))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("fname", ["zeros", "ones"])
def test_zeros_ones_dtype(fname, dt):
    check(lambda m: getattr(m, fname)((2, 3), dtype=getattr(m, dt)))
    check(lambda m: getattr(m, fname)((2, 3), getattr(m, dt)))


@pytest.mark.parametrize("shape", [-1, (2, -1), [-3]], ids=repr)
@pytest.mark.parametrize("fname", ["zeros", "ones"])
def test_zeros_negative_dims(fname, shape):
    check_raises(lambda m: getattr(m, fname)(shape), err=ValueError)
    check_raises(lambda m: m.full(shape, 1.0), err=ValueError)


FULL_VALS = [3, 3.0, 3.7, True, -1, 2**31, 2**40, 1j, -0.0, float("inf"), float("nan")]


@pytest.mark.parametrize("val", FULL_VALS, ids=repr)
def test_full_value_inference(val):
    check(lambda m: m.full((2, 2), val))
    check(lambda m: m.full((), val))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("val", [3, 3.7, True, -1, 300], ids=repr)
def test_full_value_with_dtype(val, dt):
    # MLX applies weak scalar typing: full((2,), 3.7, int32) is float32!
    check(lambda m: m.full((2,), val, dtype=getattr(m, dt)))
    check(lambda m: m.full((2,), val, getattr(m, dt)))


def test_full_with_array_values():
    check(lambda m: m.full((2, 2), m.array([1, 2])))
    check(lambda m: m.full((3, 2), m.array([[1.5], [2.5], [3.5]])))
    check(lambda m: m.full((2,), m.array(3.7), m.int32))
    check(lambda m: m.full((2, 2), m.array([1, 2], m.int8), dtype=m.float16))
    check_raises(lambda m: m.full((2, 2), m.array([1, 2, 3])), err=ValueError)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("fname", ["zeros_like", "ones_like"])
def test_like_functions(fname, dt):
    x = A(rand((2, 3), dt, seed=2), dt)
    check(lambda m, a: getattr(m, fname)(a), x)
    check(lambda m, a: getattr(m, fname)(a, dtype=m.float16), x)
    check(lambda m, a: getattr(m, fname)(a.T), x)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("val", [3, 3.7, True, -2], ids=repr)
def test_full_like(dt, val):
    x = A(rand((2, 3), dt, seed=3), dt)
    check(lambda m, a: m.full_like(a, val), x)
    check(lambda m, a: m.full_like(a, val, dtype=m.float32), x)


def test_like_0d_and_empty():
    check(lambda m: m.zeros_like(m.array(3.5)))
    check(lambda m: m.ones_like(m.zeros((0, 4), m.int8)))
    check(lambda m: m.full_like(m.zeros((2, 0)), 7))


# ------------------------------------------------------------------- arange

ARANGE_ARGS = [
    (5,), (5.0,), (0,), (-3,), (1, 5), (1, 5, 2), (5, 1, -1), (1, 0), (0, 1, 0.1), (0, 1, 0.3),
    (10, 20, 3.5), (-2.5, 2.5, 0.5), (2**40, 2**40 + 3), (0.5, 3), (3, -3, -1.5), (1e-3, 1e-2, 1e-3),
]


@pytest.mark.parametrize("args", ARANGE_ARGS, ids=repr)
def test_arange(args):
    check(lambda m: m.arange(*args),
          np_fn=lambda: np.arange(*args), np_rtol=1e-6, np_atol=1e-6)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("args", [(5,), (0.5, 3), (1, 10, 3), (2.0, -2.0, -0.75)], ids=repr)
def test_arange_dtype(args, dt):
    check(lambda m: m.arange(*args, dtype=getattr(m, dt)))


def test_arange_keywords_and_errors():
    check(lambda m: m.arange(start=1, stop=4))
    check(lambda m: m.arange(stop=3))
    check(lambda m: m.arange(1, 4, step=None))
    check(lambda m: m.arange(0, 10, 3, m.float32))
    check_raises(lambda m: m.arange(0, 5, 0), err=ValueError)
    check_raises(lambda m: m.arange(5, dtype=m.bool_), err=ValueError)
    check_raises(lambda m: m.arange(m.array(3)), err=TypeError)


# ----------------------------------------------------------------- linspace

@pytest.mark.parametrize("args", [(0, 1, 5), (0, 1), (1, 0, 4), (0, 1, 1), (0, 1, 0), (-3.5, 7.25, 11),
                                  (0, 10, 5), (1e-3, 1e3, 7)], ids=repr)
def test_linspace(args):
    check(lambda m: m.linspace(*args),
          np_fn=lambda: np.linspace(*args), np_rtol=1e-6, np_atol=1e-6)


@pytest.mark.parametrize("dt", ["int32", "int8", "uint8", "float16", "bfloat16", "float32", "float64",
                                "bool_", "complex64"])
def test_linspace_dtype(dt):
    check(lambda m: m.linspace(0, 10, 5, dtype=getattr(m, dt)))


def test_linspace_negative_num():
    check_raises(lambda m: m.linspace(0, 1, -1), err=ValueError)


# ------------------------------------------------------------ eye / identity / tri

@pytest.mark.parametrize("args,kw", [((3,), {}), ((2, 3), {}), ((3, 2), {}), ((3,), {"k": 1}),
                                     ((3,), {"k": -2}), ((3,), {"k": -5}), ((4, 3, 2), {}),
                                     ((0,), {}), ((3, None, 1), {})], ids=repr)
def test_eye(args, kw):
    check(lambda m: m.eye(*args, **kw),
          np_fn=lambda: np.eye(*args, **kw))


@pytest.mark.parametrize("dt", DTYPES)
def test_eye_identity_dtype(dt):
    check(lambda m: m.eye(3, dtype=getattr(m, dt)))
    check(lambda m: m.identity(3, dtype=getattr(m, dt)))


@pytest.mark.parametrize("n", [0, 1, 4])
def test_identity(n):
    check(lambda m: m.identity(n), np_fn=lambda: np.identity(n))


def test_eye_negative():
    check_raises(lambda m: m.eye(-1), err=ValueError)


@pytest.mark.parametrize("args", [(3,), (2, 4, 1), (3, 2), (4, 4, -1), (3, 3, 5), (1,)], ids=repr)
def test_tri(args):
    check(lambda m: m.tri(*args), np_fn=lambda: np.tri(*args))


@pytest.mark.parametrize("dt", ["int32", "bool_", "float16", "float64"])
def test_tri_dtype(dt):
    check(lambda m: m.tri(3, k=-1, dtype=getattr(m, dt)))


@pytest.mark.parametrize("k", [0, 1, -1, 3, -4])
@pytest.mark.parametrize("fname", ["tril", "triu"])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (4, 2), (2, 3, 4)], ids=repr)
def test_tril_triu(shape, fname, k):
    x = A(rand(shape, "float32", seed=4))
    check(lambda m, a: getattr(m, fname)(a, k), x, np_fn=lambda a: getattr(np, fname)(a, k))
    check(lambda m, a: getattr(m, fname)(a, k=k), x)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("fname", ["tril", "triu"])
def test_tril_triu_dtypes(fname, dt):
    x = A(rand((3, 4), dt, seed=5), dt)
    check(lambda m, a: getattr(m, fname)(a), x)
    check(lambda m, a: getattr(m, fname)(a.T, 1), x)


def test_tril_1d_raises():
    check_raises(lambda m: m.tril(m.arange(3)), err=ValueError)
    check_raises(lambda m: m.triu(m.array(1.0)), err=ValueError)


# ----------------------------------------------------------------- meshgrid

@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_meshgrid(n, sparse, indexing):
    ins = [A(rand((k + 2,), "float32", seed=k)) for k in range(n)]
    check(lambda m, *xs: m.meshgrid(*xs, sparse=sparse, indexing=indexing), *ins,
          np_fn=lambda *xs: np.meshgrid(*xs, sparse=sparse, indexing=indexing))


def test_meshgrid_misc():
    check(lambda m: m.meshgrid())
    check(lambda m: m.meshgrid(m.arange(4).reshape(2, 2), m.arange(3)))
    check(lambda m: m.meshgrid(m.arange(2, dtype=m.int8), m.arange(3.0)))
    check_raises(lambda m: m.meshgrid(m.arange(2), indexing="foo"), err=ValueError)
