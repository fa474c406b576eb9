"""mlx.core.random: the same key must give the same numbers as MLX, bit for bit where
rmx computes the same float32 operations (key, split, bits, uniform, normal, randint,
bernoulli, permutation, categorical); gumbel, laplace and truncated_normal go through
log/log1p/erf, which rmx vectorises, so float32 results may differ in the last ulp."""

import numpy as np
import pytest

from diff import A, REF, check, check_raises, get_rmx, rand, rmx_only

SEEDS = [0, 1, 7, 123456789, 2**32 + 5, 2**64 - 1]
SHAPES = [(), (0,), (1,), (2,), (3,), (5,), (2, 3), (7, 9), (4, 0, 3), (1001,)]
REAL = ["float32", "float16", "bfloat16"]
EXACT = dict(exact=True)


def dt(m, name):
    return getattr(m, name)


@pytest.mark.parametrize("seed", SEEDS)
def test_key_and_split(seed):
    check(lambda m: m.random.key(seed), **EXACT)
    for num in [0, 1, 2, 3, 8]:
        check(lambda m: m.random.split(m.random.key(seed), num), **EXACT)
    check(lambda m: m.random.split(m.random.key(seed)), **EXACT)


@pytest.mark.parametrize("shape", SHAPES, ids=repr)
@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_uniform_bits_exact(seed, dtype, shape):
    check(lambda m: m.random.uniform(shape=shape, dtype=dt(m, dtype), key=m.random.key(seed)),
          **EXACT)


@pytest.mark.parametrize("shape", SHAPES, ids=repr)
@pytest.mark.parametrize("dtype", REAL + ["float64", "complex64"])
@pytest.mark.parametrize("seed", [0, 7])
def test_normal_bits_exact(seed, dtype, shape):
    check(lambda m: m.random.normal(shape, dtype=dt(m, dtype), key=m.random.key(seed)), **EXACT)


@pytest.mark.parametrize("dtype", REAL + ["float64"])
def test_normal_loc_scale(dtype):
    k = 11
    check(lambda m: m.random.normal((4, 5), dt(m, dtype), loc=0.5, scale=2.0,
                                    key=m.random.key(k)), **EXACT)
    check(lambda m: m.random.normal((4, 5), dt(m, dtype), scale=3.0, key=m.random.key(k)),
          **EXACT)
    loc = A(rand((5,), "float32", seed=1))
    scale = A(np.abs(rand((4, 1), "float32", seed=2)) + 0.1)
    check(lambda m, l, s: m.random.normal((4, 5), dt(m, dtype), loc=l, scale=s,
                                          key=m.random.key(k)), loc, scale, **EXACT)


def test_normal_complex_loc_scale():
    check(lambda m: m.random.normal((6,), m.complex64, loc=1 + 2j, scale=2.0,
                                    key=m.random.key(3)), **EXACT)
    check(lambda m: m.random.normal((6,), m.complex64, loc=1 + 2j, scale=m.array(2 + 1j),
                                    key=m.random.key(3)))


@pytest.mark.parametrize("low,high", [(0, 1), (-2.5, 4.0), (3, 3), (5, 2)])
@pytest.mark.parametrize("dtype", REAL)
def test_uniform_bounds(low, high, dtype):
    check(lambda m: m.random.uniform(low, high, (50,), dt(m, dtype), key=m.random.key(4)),
          **EXACT)


def test_uniform_array_bounds_broadcast():
    lo = A(rand((3, 1), "float32", seed=3))
    hi = A(rand((4,), "float32", seed=4) + 5)
    check(lambda m, a, b: m.random.uniform(a, b, (2, 3, 4), key=m.random.key(9)), lo, hi,
          **EXACT)
    check(lambda m, a, b: m.random.uniform(a, b, (3, 4), m.float16, key=m.random.key(9)),
          lo, hi, **EXACT)


def test_uniform_noncontiguous_key_and_bounds():
    keys = A(np.arange(8, dtype=np.uint32).reshape(4, 2) * 977, view=lambda k: k[::2][1])
    check(lambda m, k: m.random.uniform(shape=(9,), key=k), keys, **EXACT)
    lo = A(rand((4, 6), "float32", seed=5), view=lambda x: x.T[::2])
    check(lambda m, a: m.random.uniform(a, 10.0, (3, 4), key=m.random.key(1)), lo, **EXACT)


@pytest.mark.parametrize("dtype", ["int32", "int8", "int16", "int64", "uint8", "uint32", "bool_"])
@pytest.mark.parametrize("low,high", [(0, 10), (-5, 5), (3, 1000000), (-100, -50), (5, 5),
                                      (0.5, 3.7)])
def test_randint(dtype, low, high):
    check(lambda m: m.random.randint(low, high, (300,), dt(m, dtype), key=m.random.key(2)),
          **EXACT)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint64", "bool_"])
def test_randint_bounds_wrap_in_output_type(dtype):
    """MLX clamps in the output type: a negative low wraps for unsigned types first."""
    check(lambda m: m.random.randint(-3, 9, (40,), dt(m, dtype), key=m.random.key(5)),
          **EXACT)
    check(lambda m: m.random.randint(0, 300, (40,), dt(m, dtype), key=m.random.key(5)),
          **EXACT)


def test_randint_array_bounds():
    lo = A(np.array([0, 10, -4], np.int32))
    hi = A(np.array([5, 20, 4], np.int32))
    check(lambda m, a, b: m.random.randint(a, b, (6, 3), key=m.random.key(8)), lo, hi, **EXACT)


@pytest.mark.parametrize("dtype", REAL + ["float64"])
@pytest.mark.parametrize("shape", [None, (), (7,), (3, 4)], ids=repr)
def test_bernoulli(dtype, shape):
    check(lambda m: m.random.bernoulli(m.array(0.3, dt(m, dtype)), shape, key=m.random.key(6)),
          **EXACT)


def test_bernoulli_array_p_and_default():
    p = A(rand((3, 4), "float32", seed=6, low=0, high=1))
    check(lambda m, q: m.random.bernoulli(q, key=m.random.key(1)), p, **EXACT)
    check(lambda m, q: m.random.bernoulli(q, (2, 3, 4), key=m.random.key(1)), p, **EXACT)
    check(lambda m: m.random.bernoulli(key=m.random.key(1)), **EXACT)
    check(lambda m: m.random.bernoulli(0.7, (10,), key=m.random.key(1)), **EXACT)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("shape", [(), (5,), (40, 3)], ids=repr)
def test_gumbel(dtype, shape):
    exact = dtype != "float32"
    check(lambda m: m.random.gumbel(shape, dt(m, dtype), key=m.random.key(3)), exact=exact)


@pytest.mark.parametrize("dtype", REAL + ["float64"])
@pytest.mark.parametrize("loc,scale", [(0.0, 1.0), (0.3, 1.7), (-2.0, 0.5)])
def test_laplace(dtype, loc, scale):
    exact = dtype in ("float16", "bfloat16")
    check(lambda m: m.random.laplace((50,), dt(m, dtype), loc, scale, key=m.random.key(4)),
          exact=exact, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", REAL)
@pytest.mark.parametrize("lower,upper", [(-1.5, 0.7), (-2.0, 2.0), (0.0, 3.0)])
def test_truncated_normal(dtype, lower, upper):
    exact = dtype != "float32"
    check(lambda m: m.random.truncated_normal(lower, upper, (60,), dt(m, dtype),
                                              key=m.random.key(5)),
          exact=exact, rtol=2e-5, atol=2e-6)


def test_truncated_normal_array_bounds():
    lo = A(np.array([-1.0, 0.0, -3.0], np.float32))
    hi = A(np.array([[1.0], [2.0]], np.float32))
    check(lambda m, a, b: m.random.truncated_normal(a, b, key=m.random.key(5)), lo, hi,
          rtol=2e-5, atol=2e-6)


LOGITS = rand((4, 6), "float32", seed=9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_categorical(seed):
    L = A(LOGITS)
    k = lambda m: m.random.key(seed)  # noqa: E731
    check(lambda m, l: m.random.categorical(l, key=k(m)), L, **EXACT)
    check(lambda m, l: m.random.categorical(l, axis=0, key=k(m)), L, **EXACT)
    check(lambda m, l: m.random.categorical(l, num_samples=20, key=k(m)), L, **EXACT)
    check(lambda m, l: m.random.categorical(l, axis=0, num_samples=5, key=k(m)), L, **EXACT)
    check(lambda m, l: m.random.categorical(l, shape=(7, 4), key=k(m)), L, **EXACT)
    check(lambda m, l: m.random.categorical(l, axis=-2, shape=(3, 6), key=k(m)), L, **EXACT)
    check(lambda m, l: m.random.categorical(l.astype(m.float16), key=k(m)), L, **EXACT)


@pytest.mark.parametrize("seed", [0, 3])
def test_permutation(seed):
    for n in [0, 1, 2, 10, 257]:
        check(lambda m: m.random.permutation(n, key=m.random.key(seed)), **EXACT)
    x = A(rand((5, 6), "float32", seed=seed))
    check(lambda m, a: m.random.permutation(a, key=m.random.key(seed)), x, **EXACT)
    check(lambda m, a: m.random.permutation(a, axis=1, key=m.random.key(seed)), x, **EXACT)
    check(lambda m, a: m.random.permutation(a, axis=-1, key=m.random.key(seed)), x, **EXACT)


def test_global_seed_sequence():
    """seed() then key-less calls: each call takes the next key of the same sequence."""
    def run(m):
        m.random.seed(42)
        out = [m.random.uniform(shape=(3,)), m.random.normal((2, 2)),
               m.random.randint(0, 100, (4,)), m.random.bernoulli(0.5, (5,)),
               m.random.permutation(6), m.random.categorical(m.zeros((2, 3)))]
        m.random.seed(42)
        out.append(m.random.uniform(shape=(3,)))
        return out
    check(run, **EXACT)


def test_unseeded_calls_differ():
    rx = get_rmx()
    a, b = rx.random.uniform(shape=(4,)), rx.random.uniform(shape=(4,))
    assert not np.array_equal(np.array(a), np.array(b))


def test_sample_statistics():
    """Sanity on many samples (on top of the bitwise checks)."""
    rx = get_rmx()
    k = rx.random.key(0)
    n = np.array(rx.random.normal((200000,), key=k))
    assert abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01
    u = np.array(rx.random.uniform(shape=(200000,), key=k))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01


def test_bits_rmx_extra():
    """bits is MLX's C++ random::bits (not exposed in MLX's Python); check its layout
    against split, which MLX builds from it."""
    rx = get_rmx()
    k = rx.random.key(5)
    b = np.array(rx.random.bits((3, 2), key=k))
    assert np.array_equal(b, np.array(rx.random.split(k, 3)))
    assert rx.random.bits((5,), 1, key=k).dtype == rx.uint8
    assert rx.random.bits((5,), 2, key=k).dtype == rx.uint16
    w4 = np.array(rx.random.bits((2,), key=k)).view(np.uint8)
    assert np.array_equal(np.array(rx.random.bits((8,), 1, key=k)), w4)


ERRORS = {
    "uniform_int_dtype": lambda m: m.random.uniform(shape=(2,), dtype=m.int32),
    "uniform_float64": lambda m: m.random.uniform(shape=(2,), dtype=m.float64),
    "uniform_bad_broadcast": lambda m: m.random.uniform(0, m.zeros((3,)), (2,)),
    "uniform_shape_too_small": lambda m: m.random.uniform(0, m.zeros((3,)), (2, 1)),
    "negative_shape": lambda m: m.random.uniform(shape=(-1,)),
    "normal_int": lambda m: m.random.normal((2,), m.int32),
    "key_dtype": lambda m: m.random.uniform(shape=(2,), key=m.array([0, 1])),
    "key_float": lambda m: m.random.uniform(shape=(2,), key=m.zeros((2,))),
    "key_shape": lambda m: m.random.uniform(shape=(2,), key=m.zeros((3, 2), m.uint32)),
    "split_negative": lambda m: m.random.split(m.random.key(0), -1),
    "randint_float": lambda m: m.random.randint(0, 3, (2,), m.float32),
    "bernoulli_int_p": lambda m: m.random.bernoulli(1),
    "bernoulli_shape": lambda m: m.random.bernoulli(m.zeros((3,)), (2,)),
    "trunc_int": lambda m: m.random.truncated_normal(0, 1, dtype=m.int32),
    "laplace_int": lambda m: m.random.laplace(dtype=m.int32),
    "gumbel_int": lambda m: m.random.gumbel(dtype=m.int32),
    "cat_axis": lambda m: m.random.categorical(m.zeros((3,)), axis=2),
    "cat_both": lambda m: m.random.categorical(m.zeros((3, 4)), shape=(2,), num_samples=3),
    "cat_shape": lambda m: m.random.categorical(m.zeros((3, 4)), shape=(2,)),
    "perm_0d": lambda m: m.random.permutation(m.array(3)),
    "perm_negative": lambda m: m.random.permutation(-2),
    "key_negative": lambda m: m.random.key(-1),
    "key_too_big": lambda m: m.random.key(2**64),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors(name):
    check_raises(ERRORS[name])



def test_random_state_holds_the_global_key():
    """``random.state`` is MLX's ``_RandomState``: one element, the current key, which
    ``seed`` resets and every key-less sampler advances (errors are MLX's types too)."""
    def run(m):
        s = m.random.state
        m.random.seed(3)
        out = [s[0], s[-1], len(s), list(s), m.random.state is s]
        m.random.uniform(shape=(2,))
        out += [s[0], m.random.split(m.random.key(3))[0]]
        m.random.normal((2,), key=m.random.key(9))  # an explicit key leaves it alone
        out.append(s[0])
        return out
    check(run, **EXACT)
    check(lambda m: m.random.state[1])
    check(lambda m: m.random.state["0"])

    def assign(m):
        m.random.state[0] = m.random.key(1)
    check(assign)


def _compiled_draws(m, **capture):
    def f(x):
        return x + m.random.uniform(shape=(3,))
    m.random.seed(0)
    cf = m.compile(f, **capture)
    draws = [cf(m.zeros((3,))) for _ in range(3)]
    return draws, m.random.state[0]


def test_compile_capturing_random_state_advances_the_key():
    """With ``inputs``/``outputs=[mx.random.state]`` each call draws new numbers (the same
    as the uncompiled function would) and the key moves on; without the capture the key
    is baked in at trace time; every capture variant ends with MLX's key."""
    st = lambda m: [m.random.state]  # noqa: E731
    check(lambda m: _compiled_draws(m, inputs=st(m), outputs=st(m)), **EXACT)
    check(lambda m: _compiled_draws(m, inputs=m.random.state, outputs=m.random.state), **EXACT)
    check(lambda m: _compiled_draws(m), **EXACT)
    check(lambda m: _compiled_draws(m, outputs=st(m)), **EXACT)
    rx = get_rmx()
    draws, _ = _compiled_draws(rx, inputs=[rx.random.state], outputs=[rx.random.state])
    assert not np.array_equal(np.array(draws[0]), np.array(draws[1]))
    rx.random.seed(0)
    plain = [rx.zeros((3,)) + rx.random.uniform(shape=(3,)) for _ in range(3)]
    np.testing.assert_array_equal(np.array(draws[2]), np.array(plain[2]))


def test_compiled_dropout_with_captured_state_matches_mlx():
    def run(m, nn):
        m.random.seed(1)
        drop = nn.Dropout(0.5)
        state = [m.random.state]
        g = m.compile(lambda x: drop(x), inputs=state, outputs=state)
        return [g(m.ones((8,))) for _ in range(3)]
    import mlx.nn as mnn
    from diff import REF, assert_same
    from nnutil import rnn
    assert_same(run(get_rmx(), rnn()), run(REF, mnn), exact=True)


def test_random_state_is_per_thread():
    """As MLX 0.32.4: seeding in one thread leaves another thread's key alone."""
    import threading

    def run(m):
        m.random.seed(0)
        seen = {}

        def worker():
            m.random.seed(5)
            seen["k"] = m.random.state[0]
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        return seen["k"], m.random.state[0]
    check(run, **EXACT)


@rmx_only
def test_compile_with_random_state_as_input_only_keeps_the_key():
    """Captured as an input but not an output, MLX 0.32.4 leaves the trace's placeholder
    key behind (the next eval of the key fails: "eval an array without a primitive");
    rmx puts the key back, so the draws repeat, as an uncaptured key's do."""
    rx = get_rmx()
    draws, key = _compiled_draws(rx, inputs=[rx.random.state])
    np.testing.assert_array_equal(np.array(key), np.array(REF.random.key(0)))
    REF.random.seed(0)
    first = REF.random.uniform(shape=(3,))
    for d in draws:
        np.testing.assert_array_equal(np.array(d), np.array(first))
