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


# -- elementwise ops write over temporaries ---------------------------------------------
# A unary or binary op whose input is a temporary (computed in the same graph, held by
# nothing else) writes its result over that input's buffer, as MLX does.


@pytest.mark.parametrize("name,m", libs())
def test_elementwise_chain_writes_over_its_temporaries(name, m):
    """exp(sin(x)*2+1)*x on 16 MB: every op after `sin` reuses sin's buffer, so the
    peak grows by about one buffer (without donation two temporaries coexist)."""
    n = 4 * MB
    x = m.random.uniform(shape=(n,))
    m.eval(x)
    m.reset_peak_memory()
    base = m.get_active_memory()
    y = m.exp(m.sin(x) * 2 + 1) * x
    m.eval(y)
    growth = m.get_peak_memory() - base
    assert growth < 24 * MB, f"peak grew by {growth / MB:.1f} MB"


def _chains(m, x, other):
    """Ops whose temporaries are donated on either side, next to ones that must not be."""
    t = m.sin(x) if x.dtype in (m.float32, m.float16, m.complex64) else x * 3
    kept = m.abs(x)  # held by the caller: never overwritten
    return [
        m.exp(m.sin(x) * 2 + 1) * x,  # donated left operands, then a contiguous right
        2 - m.square(x + 1),  # scalar on the left, donated right operand
        x * m.negative(x),  # the donated temporary on the right
        (x + 1) * other,  # the other operand a transposed (non-contiguous) view
        (x - 1) + (x + 2),  # both operands temporaries
        t + t,  # one temporary read twice: not donated
        kept * 2,
        kept,
    ]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "complex64"])
def test_donated_elementwise_results_match_mlx(dtype):
    mx = get_rmx()
    rng = np.random.default_rng(3)
    base = rng.uniform(-3, 3, size=(300, 300)).astype(np.float32)
    if dtype == "int32":
        base = np.round(base * 10)
    outs = []
    for m in (mx, REF):
        dt = getattr(m, dtype)
        x = m.array(base).astype(dt)
        other = m.array(base).astype(dt).T
        m.eval(x, other)
        res = _chains(m, x, other)
        m.eval(*res)
        outs.append([to_numpy(r) for r in res] + [to_numpy(x)])
    tol = {"float16": 2e-3, "bfloat16": 2e-2}.get(dtype, 1e-5)
    for k, (a, b) in enumerate(zip(*outs)):
        assert a.dtype == b.dtype, k
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"result {k}")
    # the inputs kept their values
    np.testing.assert_array_equal(outs[0][-1], outs[1][-1])


def test_in_place_sin_of_huge_arguments_matches_numpy():
    """Donated sin still recomputes the arguments beyond its f32 range reduction (|x| >=
    1e5) from the original values."""
    mx = get_rmx()
    v = np.array([3e8, -1e9, 0.5, 2.5e10, -0.0, 7.0, 1.5e5, -99999.0, 2.5e6] * 1000, np.float32)
    x = mx.array(v)
    got = np.array(mx.sin(x * 1))  # x * 1 is a temporary: sin writes over it
    np.testing.assert_allclose(got, np.sin(v.astype(np.float64)), atol=2e-6)
    np.testing.assert_array_equal(np.array(x), v)
