"""``array.__dlpack__`` / ``__dlpack_device__`` against MLX 0.32.4: NumPy (and any DLPack
consumer) reads rmx arrays on the CPU device, every dtype NumPy has, views included;
bfloat16 raises as MLX does."""

import numpy as np
import pytest

import mlx.core as MX
from diff import get_rmx

DTYPES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "float32", "complex64"]


def test_dlpack_device_is_cpu():
    rx = get_rmx()
    assert rx.array([1.0]).__dlpack_device__() == MX.array([1.0]).__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("dt", DTYPES)
def test_numpy_from_dlpack_every_dtype(dt):
    rx = get_rmx()
    x = (np.random.default_rng(0).normal(size=(3, 4)) * 10).astype(getattr(np, dt))
    a, b = np.from_dlpack(MX.array(x)), np.from_dlpack(rx.array(x))
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("index", [(slice(None), 1), (slice(None, None, -1),), (0,), ()])
def test_numpy_from_dlpack_views_and_lazy(index):
    rx = get_rmx()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    a = np.from_dlpack(MX.array(x)[index] * 2)
    b = np.from_dlpack(rx.array(x)[index] * 2)
    np.testing.assert_array_equal(a, b)


def test_round_trip_and_bfloat16():
    rx = get_rmx()
    a = rx.array([1.5, 2.5])
    assert rx.from_dlpack(a).tolist() == [1.5, 2.5]
    with pytest.raises(RuntimeError) as er:
        np.from_dlpack(a.astype(rx.bfloat16))
    with pytest.raises(RuntimeError) as em:
        np.from_dlpack(MX.array([1.5]).astype(MX.bfloat16))
    assert str(er.value) == str(em.value)
