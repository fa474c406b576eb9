"""Buffer donation: an in-place update (`slice_update`, `x[i:j] = v`) reuses its input's
buffer only when nothing else can still read it. Values are compared with MLX (which
donates the same way); the memory assertions run on both libraries."""

import numpy as np
import pytest

from diff import REF, get_rmx, to_numpy

MB = 1 << 20


def libs():
    return [("rmx", get_rmx()), ("mlx", REF)]


@pytest.mark.parametrize("name,m", libs())
def test_views_keep_their_values(name, m):
    a = m.arange(12.0)
    m.eval(a)
    # (`same = a` would alias the Python object, which setitem updates in place, as MLX)
    view = a[2:6]  # a view of its buffer
    m.eval(view)
    kept = np.array(a)  # a host copy, for comparison
    a[1:4] = -1.0
    m.eval(a)
    np.testing.assert_array_equal(np.array(view), kept[2:6])
    expect = kept.copy()
    expect[1:4] = -1.0
    np.testing.assert_array_equal(np.array(a), expect)


@pytest.mark.parametrize("name,m", libs())
def test_lazy_consumer_of_old_value_sees_old_value(name, m):
    a = m.arange(8.0)
    m.eval(a)
    doubled = a * 2  # reads the old array, not yet computed
    a[0:2] = 100.0
    m.eval(a, doubled)
    np.testing.assert_array_equal(np.array(doubled), np.arange(8.0) * 2)
    assert np.array(a)[:3].tolist() == [100.0, 100.0, 2.0]


def test_chain_of_updates_matches_mlx():
    mx = get_rmx()
    outs = []
    for m in (mx, REF):
        cache = m.zeros((2, 3, 16, 4))
        m.eval(cache)
        for t in range(16):
            cache[:, :, t : t + 1, :] = m.full((2, 3, 1, 4), float(t))
            if t % 5 == 0:
                m.eval(cache)
        outs.append(to_numpy(cache))
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("name,m", libs())
def test_kv_cache_style_updates_run_in_place(name, m):
    """A 16 MB buffer updated 200 times, evaluated each step: with donation the peak
    stays near one buffer (without it, each step holds the old and the new copy)."""
    n = 4 * MB  # float32 elements
    buf = m.zeros((n,))
    m.eval(buf)
    m.reset_peak_memory()
    base = m.get_active_memory()
    for i in range(200):
        buf[i : i + 1] = 1.0
        m.eval(buf)
    growth = m.get_peak_memory() - base
    assert growth < 8 * MB, f"peak grew by {growth / MB:.1f} MB"
    assert float(buf[:200].sum().item()) == 200.0
