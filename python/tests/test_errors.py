"""Exception-type parity across the API (ValueError / IndexError / TypeError / RuntimeError).

Each case must raise in MLX (the expected builtin type is asserted, so the
table documents MLX's behaviour) and rmx must raise the same builtin type.
"""

import pytest

from diff import check_raises, mlx_quirk

M23 = "m.ones((2, 3))"
M234 = "m.ones((2, 3, 4))"

CASES = [
    # --- broadcasting
    (ValueError, "m.ones((3,)) + m.ones((2,))"),
    (ValueError, "m.add(m.ones((2, 3)), m.ones((3, 2)))"),
    (ValueError, "m.where(m.ones((2,), m.bool_), m.ones((3,)), 0)"),
    (ValueError, "m.broadcast_to(m.ones((2,)), (3, 3))"),
    (ValueError, "m.broadcast_arrays(m.ones((2,)), m.ones((3,)))"),
    (ValueError, "m.broadcast_shapes((2,), (3,))"),
    (ValueError, "m.maximum(m.ones((0,)), m.ones((2,)))"),
    # --- bad axes: IndexError
    (IndexError, f"m.sum({M234}, axis=3)"),
    (IndexError, f"m.mean({M234}, axis=-4)"),
    (IndexError, f"m.max({M234}, axis=(0, 5))"),
    (IndexError, f"m.argmax({M234}, axis=3)"),
    (IndexError, f"m.softmax({M234}, axis=3)"),
    (IndexError, f"m.logsumexp({M234}, axis=-5)"),
    (IndexError, f"m.cumsum({M234}, axis=3)"),
    (IndexError, f"m.concatenate([{M23}, {M23}], axis=2)"),
    (IndexError, f"m.stack([{M23}, {M23}], axis=3)"),
    (IndexError, f"m.split({M23}, 2, axis=2)"),
    (IndexError, f"m.swapaxes({M234}, 0, 3)"),
    (IndexError, f"m.moveaxis({M234}, 0, 3)"),
    (IndexError, f"m.transpose({M234}, (0, 1, 3))"),
    (IndexError, f"m.expand_dims({M234}, 4)"),
    (IndexError, f"m.squeeze(m.ones((1, 2, 1)), 3)"),
    (IndexError, f"m.flip({M23}, 2)"),
    (IndexError, f"m.roll({M23}, 1, axis=2)"),
    (IndexError, f"m.repeat({M23}, 2, axis=3)"),
    (IndexError, f"m.take({M23}, m.array([0]), axis=2)"),
    (IndexError, f"m.unflatten({M234}, 3, (4,))"),
    (IndexError, "m.sum(m.array(5), axis=0)"),
    # --- duplicate axes: ValueError
    (ValueError, f"m.sum({M234}, axis=(0, 0))"),
    (ValueError, f"m.var({M234}, axis=[1, -2])"),
    (ValueError, f"m.transpose({M234}, (0, 0, 1))"),
    (ValueError, f"m.expand_dims({M234}, (0, 0))"),
    (ValueError, f"m.squeeze(m.ones((1, 1)), (0, 0))"),
    # --- shapes / sizes
    (ValueError, f"{M234}.reshape(5, -1)"),
    (ValueError, f"{M234}.reshape(-1, -1)"),
    (ValueError, f"{M234}.reshape(7)"),
    (ValueError, "m.zeros((0, 3)).reshape(-1, 0)"),
    (ValueError, "m.zeros((-1,))"),
    (ValueError, "m.ones((2, -3))"),
    (ValueError, "m.full((-2,), 1.0)"),
    (ValueError, "m.eye(-1)"),
    (ValueError, "m.linspace(0, 1, -1)"),
    (ValueError, "m.arange(0, 5, 0)"),
    (ValueError, "m.tile(m.ones((2,)), -1)"),
    (ValueError, "m.repeat(m.ones((2,)), -1)"),
    (ValueError, "m.pad(m.ones((2, 2)), -1)"),
    (ValueError, "m.split(m.arange(6), 4)"),
    (ValueError, "m.split(m.arange(6), 0)"),
    (ValueError, f"m.squeeze({M23}, 1)"),
    (ValueError, f"m.flatten({M234}, 2, 1)"),
    (ValueError, f"m.unflatten({M234}, 0, (3,))"),
    (ValueError, "m.concatenate([])"),
    (ValueError, "m.stack([])"),
    (ValueError, f"m.concatenate([{M23}, m.ones((3, 2))])"),
    (ValueError, f"m.stack([{M23}, m.ones((3, 2))])"),
    (ValueError, "m.tril(m.ones((3,)))"),
    (ValueError, "m.diag(m.ones((2, 2, 2)))"),
    (ValueError, "m.diagonal(m.ones((3,)))"),
    (ValueError, "m.diagonal(m.ones((3, 3)), 0, 0, 0)"),
    (ValueError, "m.view(m.ones((3,)), m.int64)"),
    (ValueError, "m.array(1.0).view(m.int8)"),
    (ValueError, "m.max(m.zeros((0, 3)))"),
    (ValueError, "m.argmin(m.zeros((0,)))"),
    (ValueError, "m.logsumexp(m.zeros((0,)))"),
    (ValueError, "m.clip(m.ones((2,)), None, None)"),
    (ValueError, "m.meshgrid(m.ones((2,)), indexing='xx')"),
    # --- array construction
    (ValueError, "m.array([[1, 2], [3]])"),
    (ValueError, "m.array([1, [2]])"),
    (ValueError, "m.array('abc')"),
    (ValueError, "m.array([1, 'a'])"),
    (TypeError, "m.array(None)"),
    (TypeError, "m.array(1, dtype='float32')"),
    pytest.param(RuntimeError, "m.array(2**64)", marks=mlx_quirk),     # MLX: std::bad_cast
    # --- matmul family
    (ValueError, "m.ones((2, 3)) @ m.ones((4, 3))"),
    (ValueError, "m.matmul(m.ones((3,)), m.ones((4,)))"),
    (ValueError, "m.matmul(m.array(1.0), m.ones((3,)))"),
    (ValueError, "m.matmul(m.ones((2, 2), m.int32), m.ones((2, 2), m.int32))"),
    (ValueError, "m.inner(m.ones((2, 3)), m.ones((4, 2)))"),
    (ValueError, "m.tensordot(m.ones((2, 3)), m.ones((3, 2)), axes=3)"),
    (ValueError, "m.vecdot(m.ones((2, 3)), m.ones((3, 2)))"),
    (ValueError, "m.addmm(m.ones((3,)), m.ones((2, 3)), m.ones((3, 2)))"),
    # --- dtype restrictions
    (RuntimeError, "m.bitwise_and(m.ones((2,)), m.ones((2,)))"),
    (RuntimeError, "m.left_shift(m.ones((2,), m.int32), m.ones((2,)))"),
    (ValueError, "m.ones((2,)) | m.ones((2,))"),
    (ValueError, "m.ones((2,)) >> 1"),
    (ValueError, "~m.ones((2,))"),
    (ValueError, "m.bitwise_invert(m.ones((2,), m.float16))"),
    (ValueError, "-m.array([True])"),
    (ValueError, "m.negative(m.array([True]))"),
    (ValueError, "m.arctan2(m.array([1j]), m.array([1j]))"),
    (ValueError, "m.remainder(m.array([1j]), 2)"),
    (ValueError, "m.floor(m.array([1j]))"),
    (ValueError, "m.erf(m.array([1j]))"),
    (ValueError, "m.nan_to_num(m.ones((2,), m.float64))"),
    (ValueError, "m.arange(3, dtype=m.bool_)"),
    (ValueError, "m.finfo(m.int32)"),
    (ValueError, "m.iinfo(m.float32)"),
    (ValueError, "m.isdtype(m.int8, 'nope')"),
    (ValueError, "m.take(m.ones((2,)), m.array([0.5]))"),
    # --- weak scalar overflow
    (ValueError, "m.ones((2,), m.int8) + 300"),
    (ValueError, "m.ones((2,), m.uint8) + (-1)"),
    (ValueError, "m.ones((2,), m.int32) * 2**31"),
    (ValueError, "m.full((2,), -1, dtype=m.uint8)"),
    # --- conversions
    (ValueError, "m.ones((2,)).item()"),
    (ValueError, "bool(m.ones((2,)))"),
    (ValueError, "float(m.ones((0,)))"),
    (TypeError, "len(m.array(1))"),
    (TypeError, "iter(m.array(1))"),
    (TypeError, "[0, 1][m.array(1.0)]"),
    (TypeError, "int(m.array(1j))"),
    # --- in-place
    (ValueError, "(lambda a: a.__itruediv__(2))(m.ones((2,), m.int32))"),
    # --- indexing
    (ValueError, f"{M23}[1.0]"),
    (ValueError, f"{M23}[0, 0, 0]"),
    (ValueError, f"{M23}[..., ...]"),
    (ValueError, "m.array(1)[0]"),
    (ValueError, f"{M23}[m.array([0.0])]"),
    # --- argument types (nanobind -> TypeError)
    (TypeError, "m.sum(m.ones((2,)), axis='0')"),
    (TypeError, "m.argmax(m.ones((2, 2)), axis=(0, 1))"),
    (TypeError, "m.reshape(m.ones((4,)), 'x')"),
    pytest.param(RuntimeError, "m.zeros('x')", marks=mlx_quirk),       # MLX: std::bad_cast
    (TypeError, "m.zeros((2,), dtype='float32')"),
    (TypeError, "m.arange(m.array(3))"),
    (TypeError, "m.ones((2,)).astype('int32')"),
    (TypeError, "m.exp(m.ones((2,)), bogus=1)"),
    (TypeError, "m.exp()"),
    pytest.param(ValueError, "m.exp([1.0, 2.0])", marks=mlx_quirk),   # lists are not converted
    (TypeError, "m.isclose(m.ones((2,)), 1)"),
    (TypeError, "m.repeat(m.ones((2,)), [1, 2])"),
    (TypeError, "m.pad(m.ones((2,)), [(1, 2, 3)])"),
    (TypeError, "m.set_cache_limit(-1)"),
    (TypeError, "m.ones((2,)) == None"),
    (TypeError, "m.finfo(m.floating)"),
    (TypeError, "divmod(m.ones((2,)), 2)"),
    (TypeError, "round(m.ones((2,)))"),
    (TypeError, "2 & m.ones((2,), m.int32)"),
]


def _id(c):
    return c.values[1] if hasattr(c, "values") else c[1]


@pytest.mark.parametrize("err,expr", CASES, ids=[_id(c) for c in CASES])
def test_error_parity(err, expr):
    check_raises(lambda m: eval(expr, {"m": m}), err=err)
