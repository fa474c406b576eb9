"""compile: results equal the uncompiled function and MLX's compiled one; tracing happens
once per signature (side effects run at trace time only); CSE and fusion shrink the graph;
state capture; transforms of compiled functions; compile modes."""

import os
import subprocess
import sys

import numpy as np
import pytest

from diff import REF, A, check, get_rmx, rand

FUNS = {
    "chain": lambda m, x, y: m.exp(m.sin(x) * 2 + 1) * x,
    "broadcast": lambda m, x, y: m.tanh(x * y[:1] + 0.5) - y[:1],
    "mixed": lambda m, x, y: (m.softmax(x * 2, axis=-1) + m.sum(m.abs(y) ** 1.5, axis=0)),
    "where_cast": lambda m, x, y: m.where(x > y, x.astype(m.float16), (y * 3).astype(m.float16)) + 1,
    "int": lambda m, x, y: (x * 10).astype(m.int32) // 3 + (y * 5).astype(m.int32) % 4,
    "repeated": lambda m, x, y: m.sin(x) * m.sin(x) + m.sin(x) * 2 + (x + 1.0) * (x + 1.0),
    "matmul": lambda m, x, y: m.maximum(x @ y.T + 1, 0.0).sum(axis=0),
    "multi_out": lambda m, x, y: (m.exp(x), m.log(m.abs(y) + 1), x - y),
}


@pytest.mark.parametrize("name", sorted(FUNS))
def test_compiled_matches_mlx(name):
    x = A(rand((4, 6), "float32", seed=1))
    y = A(rand((4, 6), "float32", seed=2))
    f = FUNS[name]
    check(lambda m, a, b: m.compile(lambda p, q: f(m, p, q))(a, b), x, y, rtol=1e-5, atol=1e-6)
    mx = get_rmx()
    xa, ya = mx.array(x.data), mx.array(y.data)
    got, want = mx.compile(lambda p, q: f(mx, p, q))(xa, ya), f(mx, xa, ya)
    for g, w in zip(got if isinstance(got, tuple) else [got], want if isinstance(want, tuple) else [want]):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(np.array(g), np.array(w), rtol=1e-6, atol=1e-7)


def test_traces_once_per_signature():
    mx = get_rmx()
    traces = []

    def f(x, y, scale):
        traces.append(1)  # a Python side effect: runs at trace time only
        return x * scale + y

    cf = mx.compile(f)
    a, b = mx.ones((3,)), mx.zeros((3,))
    for _ in range(3):
        cf(a, b, 2.0)
    assert len(traces) == 1
    cf(mx.ones((4,)), mx.zeros((4,)), 2.0)  # new shape
    assert len(traces) == 2
    cf(a.astype(mx.float16), b, 2.0)  # new dtype
    assert len(traces) == 3
    assert cf(a, b, 3.0).tolist() == [3.0, 3.0, 3.0]  # new constant
    assert len(traces) == 4
    cf(a, b, 2.0)
    assert len(traces) == 4


def test_cse_and_fusion_shrink_the_graph():
    mx = get_rmx()
    from rmx import _rmx

    def chain(xs):
        x = xs[0]
        return [mx.exp(mx.sin(x) * 2 + 1) * x]
    g = _rmx._compile_trace(chain, [[8]], [mx.float32])
    assert (g.num_steps, g.num_fused) == (1, 1)

    def repeated(xs):
        x = xs[0]
        return [mx.reshape(x, (2, 4)).sum(axis=0), mx.reshape(x, (2, 4)).sum(axis=0)]
    try:
        # each copy is reshape -> sum with kept dims -> reshape dropping the reduced axis
        mx.set_compile_mode("no_fuse")
        assert _rmx._compile_trace(repeated, [[8]], [mx.float32]).num_steps == 3
        mx.set_compile_mode("no_simplify")
        assert _rmx._compile_trace(repeated, [[8]], [mx.float32]).num_steps == 6
    finally:
        mx.enable_compile()


def test_fused_kernel_handles_strided_and_broadcast_inputs():
    mx = get_rmx()
    x = mx.array(rand((64, 130), "float32", seed=3))
    f = lambda a, b: mx.exp(a.T * 0.5 - b) / (1 + b)  # noqa: E731
    b = mx.array(rand((64,), "float32", seed=4))
    got = mx.compile(f)(x, b)
    np.testing.assert_allclose(np.array(got), np.array(f(x, b)), rtol=1e-6)


def test_state_capture_matches_mlx():
    def run(m):
        state = [m.array([1.0, 2.0])]

        def step(v):
            state[0] = state[0] * 0.5 + v
            return state[0].sum()
        cs = m.compile(step, inputs=state, outputs=state)
        outs = [cs(m.array(1.0)) for _ in range(4)]
        return outs, state[0]
    check(run)


def test_state_that_grows_during_the_first_trace_matches_mlx():
    """The function adds entries to the captured state while tracing (as an optimizer
    that initialises itself on its first update does); MLX keeps them and retraces
    with the larger state on the next call."""
    def run(m):
        state = {"w": m.array([1.0, 2.0]), "log": []}
        traces = []

        def step(v):
            traces.append(1)
            if "m" not in state:
                state["m"] = m.zeros_like(state["w"])
                state["log"].append(m.array(0.0))
            state["m"] = state["m"] * 0.5 + v
            state["w"] = state["w"] - 0.1 * state["m"]
            state["log"][0] = state["log"][0] + 1
            return state["w"].sum()
        cs = m.compile(step, inputs=state, outputs=state)
        outs = [cs(m.array([1.0, -1.0]) * k) for k in range(4)]
        return outs, state, len(traces)
    check(run)


def test_compiled_training_step_with_uninitialised_optimizer_matches_mlx():
    """MLX's training pattern: ``state = [model.state, optimizer.state]`` captured before
    the optimizer has created its per-parameter state."""
    from nnutil import copy_params, rnn, ropt, same
    import mlx.nn as mnn
    import mlx.optimizers as mopt
    from diff import REF

    x = np.random.default_rng(2).normal(size=(16, 4)).astype(np.float32)
    y = np.arange(16) % 3

    def train(m, nn, optim, model):
        opt = optim.Adam(learning_rate=0.01)
        state = [model.state, opt.state]

        def loss_fn(mdl, a, b):
            return nn.losses.cross_entropy(mdl(a), b, reduction="mean")

        def step(a, b):
            loss, grads = nn.value_and_grad(model, loss_fn)(model, a, b)
            opt.update(model, grads)
            return loss
        cs = m.compile(step, inputs=state, outputs=state)
        losses = []
        for _ in range(5):
            losses.append(cs(m.array(x), m.array(y)))
            m.eval(state)
        return losses, model.parameters(), opt.state

    ml = mnn.Sequential(mnn.Linear(4, 8), mnn.ReLU(), mnn.Linear(8, 3))
    rl = copy_params(ml, rnn().Sequential(rnn().Linear(4, 8), rnn().ReLU(), rnn().Linear(8, 3)))
    got = train(get_rmx(), rnn(), ropt(), rl)
    exp = train(REF, mnn, mopt, ml)
    same(got, exp, 1e-5, 1e-6)
    assert float(exp[0][-1]) < float(exp[0][0])


def test_transforms_of_compiled_functions():
    x = A(rand((3, 4), "float32", seed=5))
    f = lambda m, t: m.sum(m.exp(m.sin(t) * 2 + 1) * t)  # noqa: E731
    check(lambda m, a: m.grad(m.compile(lambda t: f(m, t)))(a), x, rtol=1e-5)
    check(lambda m, a: m.compile(m.grad(lambda t: f(m, t)))(a), x, rtol=1e-5)
    check(lambda m, a: m.vmap(m.compile(lambda t: m.exp(t) * t + 1))(a), x, rtol=1e-6)
    check(lambda m, a: m.jvp(m.compile(lambda t: m.exp(t) * t + 1), [a], [m.ones_like(a)]), x, rtol=1e-6)


def test_eval_inside_compile_raises_like_mlx():
    x = A(rand((3,), "float32", seed=6))
    check(lambda m, a: m.compile(lambda t: t * t.sum().item())(a), x)


def test_disable_compile_runs_the_function_each_time():
    mx = get_rmx()
    calls = []
    cf = mx.compile(lambda t: (calls.append(1), t + 1)[1])
    try:
        mx.disable_compile()
        cf(mx.ones(2))
        cf(mx.ones(2))
        assert len(calls) == 2
    finally:
        mx.enable_compile()
    cf(mx.ones(2))
    cf(mx.ones(2))
    assert len(calls) == 3


@pytest.mark.parametrize("var", ["RMX_DISABLE_COMPILE", "MLX_DISABLE_COMPILE"])
def test_environment_variable_disables_compile(var):
    code = ("import rmx.core as mx; calls = []\n"
            "cf = mx.compile(lambda t: (calls.append(1), t + 1)[1])\n"
            "cf(mx.ones(2)); cf(mx.ones(2)); print(len(calls))")
    env = dict(os.environ, **{var: "1"})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"


UNARY = ["abs", "sqrt", "square", "exp", "expm1", "log1p", "sin", "cos", "tanh", "sigmoid", "erf",
         "negative", "floor", "ceil", "sign", "reciprocal", "rsqrt", "arctan", "sinh", "logical_not"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "arctan2",
          "logaddexp", "remainder", "floor_divide", "equal", "less", "greater_equal"]


@pytest.mark.parametrize("name", UNARY)
def test_every_unary_op_fuses_exactly(name):
    """A fused chain runs the same kernels in the same order: bit-exact to uncompiled."""
    mx = get_rmx()
    x = mx.array(np.abs(rand((3, 1000), "float32", seed=7)) + 0.1)
    f = lambda t: getattr(mx, name)(t * 0.5 + 0.25) * 2  # noqa: E731
    assert np.array_equal(np.array(mx.compile(f)(x)), np.array(f(x)), equal_nan=True)


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dtypes", [("float32", "float32"), ("int32", "float16"), ("int16", "int32")])
def test_every_binary_op_with_mixed_dtypes(name, dtypes):
    mx = get_rmx()
    a = mx.array(rand((5, 300), dtypes[0], seed=8, low=1, high=9))
    b = mx.array(rand((300,), dtypes[1], seed=9, low=1, high=9))
    f = lambda p, q: getattr(mx, name)(p + 1, q * 2) + 1  # noqa: E731
    got, want = mx.compile(f)(a, b), f(a, b)
    assert got.dtype == want.dtype
    assert np.array_equal(np.array(got), np.array(want), equal_nan=True)


def test_compile_of_vmap():
    x = A(rand((3, 4), "float32", seed=10))
    check(lambda m, a: m.compile(m.vmap(lambda t: m.exp(t) * t.sum()))(a), x, rtol=1e-6)


def test_non_array_output_is_an_error():
    x = A(rand((3,), "float32", seed=11))
    check(lambda m, a: m.compile(lambda t: "not an array")(a), x)


@pytest.mark.parametrize("shapes", [
    [(7, 5000), (5000,), (7, 1)],          # several rows per tile; a per-row column
    [(2, 40000), (40000,), (2, 1)],        # rows longer than a tile: column chunks
    [(3, 4, 9), (4, 9), ()],              # 3-d with a 2-d broadcast row and a scalar
    [(600, 10), (10,), (600, 10)],        # short rows: many rows per tile
    [(5, 6, 7), (6, 1), (7,)],            # two different broadcast patterns
    [(0, 5), (5,), ()],                   # empty
    [(6, 7), (6, 1), (7,)],               # a per-row column and a row: same period
    [(3, 4, 5), (3, 1, 1), (5,)],         # per-row over 20, row of 5: periods differ
    [(2, 3, 4), (2, 3, 1), (1, 3, 4)],    # per-row (last axis) and a per-matrix block
    # float32 one-pass kernel with broadcast rows expanded per 2,048-element chunk: rows of
    # 4,000 straddle chunks, and the 17.6 MB output is streamed out
    [(1100, 4000), (4000,), (1100, 1)],
    [(3, 700, 9), (700, 1), (9,)],        # a per-row column under a leading axis
])
def test_fused_tiles_over_broadcast_layouts(shapes):
    mx = get_rmx()
    xs = [mx.array(rand(s, "float32", seed=20 + i)) for i, s in enumerate(shapes)]
    f = lambda a, b, c: mx.tanh(a * b + c) * b - c  # noqa: E731
    got, want = mx.compile(f)(*xs), f(*xs)
    assert got.shape == want.shape
    assert np.array_equal(np.array(got), np.array(want))


def _fused_dag(mx, t, c):
    """Values read again several ops later, and an op reading one value twice: the pass
    reuses a scratch register only once no later op reads it."""
    a = t * c
    b = mx.exp(mx.sin(a))
    d = b * b
    e = mx.sqrt(mx.abs(a) + d)
    return e - a * b


@pytest.mark.parametrize("n", [1, 2047, 2049, 200_003, 4_200_001])
@pytest.mark.parametrize("program", ["chain", "dag"])
def test_float32_fused_pass_is_bit_exact_across_chunks_and_threads(n, program):
    # float32 programs of supported ops run as one chunked pass (backend/cpu/fused_f32.rs);
    # sizes straddle its 2,048-element chunks, the 65,536-element threading threshold and
    # the 16 MiB from which the output is streamed out; some arguments are beyond the
    # range reductions of sin/cos (1e5) and tan (2e8), which take the exact fallback
    mx = get_rmx()
    v = rand((n,), "float32", seed=30) * 10
    v[::97] = 3e8
    v[2::101] = 2.5e5
    v[1::89] = np.nan
    x, s = mx.array(v), mx.array(np.float32(0.75))
    if program == "chain":
        f = lambda t, c: mx.exp(mx.sin(t) * 2 + c) * t - mx.cos(t) / (mx.abs(t) + 1)  # noqa: E731
    else:
        f = lambda t, c: _fused_dag(mx, t, c)  # noqa: E731
    got, want = mx.compile(f)(x, s), f(x, s)
    assert got.dtype == want.dtype == mx.float32
    assert np.array_equal(np.array(got), np.array(want), equal_nan=True)


@pytest.mark.parametrize("lib", ["rmx", "mlx"])
def test_compiled_call_does_not_keep_its_inputs_alive(lib):
    """With the garbage collector off (as in a timed loop), the input of a compiled call
    is freed as soon as the caller drops it: the Python wrapper must not put the
    arguments in a reference cycle (it once did, through a recursive tree-walking
    closure, so each call's inputs lived until the next collection)."""
    import gc

    m = get_rmx() if lib == "rmx" else REF
    f = m.compile(lambda t: t * 2 + 1)
    g = m.compile(m.grad(lambda t: (m.sin(t) * t).sum()))
    gc.collect()
    gc.disable()
    try:
        base = m.get_active_memory()
        for _ in range(3):
            x = m.random.uniform(shape=(1 << 20,))
            m.eval(x)
            r, dr = f(x), g(x)
            m.eval(r, dr)
            del r, dr, x
        left = m.get_active_memory() - base
    finally:
        gc.enable()
    assert left < (1 << 20), f"{left / 2**20:.1f} MB still held"
