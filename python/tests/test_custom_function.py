"""custom_function (user vjp/jvp/vmap rules, defaults) and checkpoint, against MLX."""

import numpy as np
import pytest

from diff import A, check, get_rmx, rand


def _custom(m):
    @m.custom_function
    def f(x, y):
        return m.sin(x) * y

    @f.vjp
    def f_vjp(primals, cotangent, output):
        x, y = primals
        return cotangent * m.cos(x) * y * 10, cotangent * output

    @f.jvp
    def f_jvp(primals, tangents):
        x, y = primals
        dx, dy = tangents
        return dx * m.cos(x) * y + dy * 3

    @f.vmap
    def f_vmap(inputs, axes):
        x, y = inputs
        ax, ay = axes
        if ay != ax and ax is not None:
            y = y.swapaxes(ay, ax)
        return m.sin(x) * y * 2, (ax or ay)

    return f


X = A(rand((2, 3), "float32", seed=1))
Y = A(rand((2, 3), "float32", seed=2))


def test_forward_is_the_function():
    check(lambda m, x, y: _custom(m)(x, y), X, Y)


def test_custom_vjp_replaces_the_gradient():
    check(lambda m, x, y: m.grad(lambda a, b: _custom(m)(a, b).sum(), argnums=(0, 1))(x, y), X, Y)
    check(lambda m, x, y: m.vjp(lambda a, b: _custom(m)(a, b), [x, y], [m.ones_like(x)]), X, Y)


def test_custom_jvp_and_vmap():
    check(lambda m, x, y: m.jvp(lambda a, b: _custom(m)(a, b), [x, y], [m.ones_like(x), m.ones_like(y)]),
          X, Y)
    check(lambda m, x, y: m.vmap(_custom(m), in_axes=(0, 1))(x, y.T), X, Y)


def test_defaults_fall_back_to_the_function():
    def plain(m):
        @m.custom_function
        def g(x):
            return m.exp(x) * x
        return g
    check(lambda m, x: m.grad(lambda a: plain(m)(a).sum())(x), X, rtol=1e-5)
    check(lambda m, x: m.jvp(plain(m), [x], [m.ones_like(x)]), X, rtol=1e-5)
    check(lambda m, x: m.vmap(plain(m), in_axes=1)(x), X)


def test_trees_single_argument_and_zero_cotangents():
    def tree_fn(m):
        @m.custom_function
        def g(d):
            return {"o": d["a"] * 2, "p": d["a"]}

        @g.vjp
        def g_vjp(primals, cot, out):
            # a lone argument arrives as itself; unused outputs get zero cotangents
            return ({"a": cot["o"] * 100 + cot["p"] + primals["a"] * 0},)
        return g
    check(lambda m, x: m.grad(lambda a: tree_fn(m)({"a": a})["o"].sum())(x), X)


def test_captured_arrays_are_constants():
    def g(m, x, y):
        @m.custom_function
        def f(t):
            return t * y

        @f.vjp
        def f_vjp(p, c, o):
            raise ValueError("Abort!")
        return f(x)
    check(lambda m, x, y: g(m, x, y), X, Y)
    check(lambda m, x, y: m.grad(lambda a, b: g(m, a, b).sum())(x, y), X, Y)  # raises ValueError
    check(lambda m, x, y: m.grad(lambda a, b: g(m, a, b).sum(), argnums=1)(x, y), X, Y)


def test_higher_order_through_custom_vjp():
    def sq(m):
        @m.custom_function
        def f(x):
            return x * x

        @f.vjp
        def f_vjp(p, c, o):
            return 2 * p * c
        return f
    check(lambda m, x: m.grad(lambda a: m.grad(lambda b: sq(m)(b).sum())(a).sum())(x), X)


def test_checkpoint_matches_mlx():
    check(lambda m, x: m.grad(lambda a: m.checkpoint(lambda q: m.sin(q) * q)(a).sum())(x), X, rtol=1e-5)
    check(lambda m, x: m.checkpoint(lambda q: {"a": q, "b": [q * 2]})(x), X)
    check(lambda m, x, y: m.value_and_grad(
        lambda a, b: m.checkpoint(lambda p, q: (p @ q.T).sum())(a, b), argnums=(0, 1))(x, y), X, Y, rtol=1e-5)


def test_checkpoint_accepts_non_array_arguments_as_mlx():
    """MLX passes non-array leaves (None, numbers, strings) through as constants; array
    leaves of positional and keyword arguments (nested too) are inputs with gradients."""
    def f(m, a, b, *rest, **kw):
        out = m.sin(a) * 2
        if isinstance(b, (int, float)) and b is not None:
            out = out * b
        for r in rest:
            out = out + r[0] if isinstance(r, list) else out
        if kw.get("k") is not None:
            out = out * (kw["k"] if not isinstance(kw["k"], tuple) else kw["k"][1]["q"])
        return out

    def ck(m, *args, **kw):
        return m.checkpoint(lambda *a, **k: f(m, *a, **k))(*args, **kw)
    check(lambda m, x: ck(m, x, None), X)
    check(lambda m, x: ck(m, x, 3), X)
    check(lambda m, x: ck(m, x, "name"), X)
    check(lambda m, x: ck(m, x, 2.5, [x * 3, None], k=None), X)
    check(lambda m, x: m.grad(lambda t: ck(m, t, None).sum())(x), X, rtol=1e-5)
    check(lambda m, x: m.grad(lambda t: ck(m, t, 1.5, [t, "s"]).sum())(x), X, rtol=1e-5)
    check(lambda m, x, y: m.grad(lambda t: ck(m, y, None, k=(None, {"q": t})).sum())(x), X, Y, rtol=1e-5)


def test_wrong_number_of_cotangents_is_a_clear_error():
    """MLX silently reuses the single returned cotangent; rmx raises ValueError."""
    mx = get_rmx()

    @mx.custom_function
    def k(x, y):
        return x * y

    @k.vjp
    def k_vjp(p, c, o):
        return c
    x = mx.array([1.0, 2.0])
    with pytest.raises(ValueError, match="cotangents"):
        mx.grad(lambda a: k(a, a).sum())(x)


def test_checkpoint_cuts_backward_memory():
    """A 1,000-step chain (sin then scale) over 1M float32 elements. Without checkpointing,
    reverse mode keeps every activation; nested checkpoints (10 x 10 x 10) keep about 30."""
    mx = get_rmx()
    x = mx.ones((1_000_000,))
    mx.eval(x)

    def seg(t, n):
        for _ in range(n):
            t = mx.sin(t) * 1.0001
        return t

    inner = mx.checkpoint(lambda t: seg(t, 10))
    outer = mx.checkpoint(lambda t: [t := inner(t) for _ in range(10)][-1])

    def nested(t):
        for _ in range(10):
            t = outer(t)
        return t.sum()

    def measure(fn):
        mx.reset_peak_memory()
        base = mx.get_active_memory()
        out = fn(x)
        mx.eval(out)
        return mx.get_peak_memory() - base, out

    forward, _ = measure(lambda t: seg(t, 1000).sum())
    backward, g = measure(mx.grad(nested))
    activation = 4 * x.size  # bytes of one float32 activation
    # every element is the same: the derivative of the chain at 1.0, in float64
    v, want = 1.0, 1.0
    for _ in range(1000):
        want *= np.cos(v) * 1.0001
        v = np.sin(v) * 1.0001
    np.testing.assert_allclose(np.array(g), np.full(x.shape, want), rtol=1e-3)
    # forward writes each step over its temporary (donation): about one activation
    assert forward <= 3 * activation, (forward, activation)
    # ~30 kept activations plus the cotangent chain; without checkpoints it is ~1,000
    assert backward <= 40 * activation, (forward, backward)
