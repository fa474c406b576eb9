"""Lazy evaluation (eval / async_eval over trees) and the memory API.

Memory numbers are implementation specific, so these tests assert semantics
(monotonicity, bounds, return types) on the library under test, and check
the same assertions hold for MLX itself.
"""

import gc

import numpy as np
import pytest

from diff import REF, check, check_raises, get_rmx, to_numpy

MB = 1 << 20


def libs():
    return [("rmx", get_rmx()), ("mlx", REF)]


# ------------------------------------------------------------------- eval

def test_eval_trees_return_none():
    check(lambda m: m.eval())
    check(lambda m: m.eval(m.array(1)))
    check(lambda m: m.eval([m.array(1), {"a": m.array(2), "b": (m.array(3.0), [m.ones((2,))])}]))
    check(lambda m: m.eval((m.array(1),), [m.array(2)]))
    check(lambda m: m.eval(1))
    check(lambda m: m.eval([1, "x", None]))
    check(lambda m: m.eval(None))


def test_async_eval_trees():
    def f(m):
        x = m.arange(10.0)
        tree = {"a": x * 2, "b": [x + 1, (m.exp(x[:3]),)]}
        r = m.async_eval(tree)
        return r, tree
    check(f)
    check(lambda m: m.async_eval())
    check(lambda m: m.async_eval(m.array(1)))
    check(lambda m: m.async_eval(1))


def test_eval_values_after_chains():
    def f(m):
        x = m.arange(5.0)
        ys = []
        for i in range(20):
            x = m.sin(x) * 0.5 + x
            if i % 5 == 0:
                ys.append(x)
        m.eval(ys)
        return ys, x
    check(f, rtol=1e-5, atol=1e-6)


def test_eval_shared_subgraphs():
    def f(m):
        a = m.arange(6.0).reshape(2, 3)
        b = a.T @ a
        c = b + b.T
        d = [c, b, c.sum()]
        m.eval(d[0])
        return d
    check(f)


def test_lazy_shapes_known_before_eval():
    for _, m in libs():
        x = m.zeros((1000, 300)) + 1
        y = (x @ x.T)[::2]
        assert y.shape == (500, 1000)
        assert y.dtype == m.float32


def test_graph_built_without_allocating():
    """Building an unevaluated graph must not allocate the big buffers."""
    for name, m in libs():
        m.eval(m.array(0))
        gc.collect()
        before = m.get_active_memory()
        y = m.zeros((1000, 1000)) + 1           # 4 MB once evaluated
        mid = m.get_active_memory()
        assert mid - before < 1 * MB, (name, before, mid)
        m.eval(y)
        after = m.get_active_memory()
        assert after - before >= 4_000_000, (name, before, after)
        del y
        gc.collect()
        assert m.get_active_memory() - before < 1 * MB, name


def test_repeated_eval_and_reuse():
    def f(m):
        x = m.arange(4.0)
        m.eval(x)
        m.eval(x)
        y = x + 1
        m.eval(y, x)
        return x, y
    check(f)


# ------------------------------------------------------------- memory API

MEM_FUNCS = ["get_active_memory", "get_peak_memory", "reset_peak_memory", "get_cache_memory",
             "set_cache_limit", "set_memory_limit", "clear_cache", "get_memory_limit"]


@pytest.mark.parametrize("name", MEM_FUNCS)
def test_memory_functions_exist(name):
    assert callable(getattr(get_rmx(), name))


def test_memory_getters_types():
    for _, m in libs():
        for f in ["get_active_memory", "get_peak_memory", "get_cache_memory", "get_memory_limit"]:
            v = getattr(m, f)()
            assert type(v) is int and v >= 0, (f, v)
        assert m.reset_peak_memory() is None
        assert m.clear_cache() is None


def test_active_memory_tracks_allocations():
    for name, m in libs():
        gc.collect()
        m.eval(m.array(0))
        base = m.get_active_memory()
        a = m.zeros((1000, 1000))
        m.eval(a)
        assert m.get_active_memory() >= base + 4_000_000, name
        assert m.get_peak_memory() >= m.get_active_memory(), name
        del a
        gc.collect()
        assert m.get_active_memory() <= base + 64 * 1024, name


def test_peak_memory_and_reset():
    for name, m in libs():
        m.reset_peak_memory()
        a = m.ones((2000, 1000))
        m.eval(a)
        peak1 = m.get_peak_memory()
        assert peak1 >= 8_000_000, (name, peak1)
        del a
        gc.collect()
        assert m.get_peak_memory() >= peak1, name         # peak survives frees
        m.reset_peak_memory()
        assert m.get_peak_memory() < peak1, name          # ... until reset


def test_cache_limit_and_clear_cache():
    for name, m in libs():
        old = m.set_cache_limit(1 << 30)
        try:
            assert type(old) is int and old >= 0
            assert m.set_cache_limit(1 << 30) == 1 << 30, name     # returns the previous limit
            a = m.zeros((1000, 1000))
            m.eval(a)
            del a
            gc.collect()
            m.clear_cache()
            assert m.get_cache_memory() == 0, name
            m.set_cache_limit(0)
            b = m.zeros((1000, 1000))
            m.eval(b)
            del b
            gc.collect()
            assert m.get_cache_memory() == 0, name                # limit 0 disables the cache
        finally:
            m.set_cache_limit(old)


def test_memory_limit_roundtrip():
    for name, m in libs():
        old = m.set_memory_limit(1 << 40)
        try:
            assert type(old) is int and old > 0
            assert m.get_memory_limit() == 1 << 40, name
            assert m.set_memory_limit(old) == 1 << 40, name
            assert m.get_memory_limit() == old, name
        finally:
            m.set_memory_limit(old)


def test_memory_setters_reject_negative():
    check_raises(lambda m: m.set_cache_limit(-1), err=TypeError)
    check_raises(lambda m: m.set_memory_limit(-1), err=TypeError)


def test_long_loop_keeps_active_memory_bounded():
    """x = x * 0.99 + 1; eval(x) for 10,000 steps must not accumulate graph/buffers."""
    for name, m in libs():
        gc.collect()
        x = m.zeros((1000,))
        m.eval(x)
        before = m.get_active_memory()
        for _ in range(10_000):
            x = x * 0.99 + 1
            m.eval(x)
        gc.collect()
        after = m.get_active_memory()
        assert after <= before + 64 * 1024, (name, before, after)
        expected = 100.0 * (1 - 0.99 ** 10_000)
        np.testing.assert_allclose(to_numpy(x, m), np.full(1000, expected, np.float32), rtol=1e-4)


def test_unevaluated_long_chain_then_eval():
    """A 2,000-node lazy chain evaluates correctly (no recursion-depth failure)."""
    def f(m):
        x = m.ones((4,))
        for _ in range(2000):
            x = x * 1.0001 + 0.0
        return x
    check(f, rtol=1e-4)
