"""export_function / import_function / exporter: the imported function equals the
original on new inputs, and MLX's own export of the same function gives the same values;
several traces, shapeless replay, keyword inputs, captured constants (also in a fresh
process that never saw the Python function), and MLX's errors for misuse. rmx's file
format is its own, so files are never exchanged between the libraries."""

import os
import subprocess
import sys

import numpy as np
import pytest

from diff import A, check, check_raises, get_rmx, rand, rmx_only

FUNS = {
    "elementwise": (lambda m, x, y: m.exp(m.sin(x) * 2 + 1) * x - y, [(4, 6), (4, 6)]),
    "broadcast": (lambda m, x, y: m.tanh(x * y + 0.5) - y, [(4, 6), (6,)]),
    "reduce_softmax": (lambda m, x, y: m.softmax(x * 2, axis=-1) + m.sum(m.abs(y) ** 1.5, axis=0), [(4, 6), (4, 6)]),
    "matmul": (lambda m, x, y: m.maximum(x @ y.T + 1, 0.0).sum(axis=0, keepdims=True), [(4, 6), (5, 6)]),
    "views": (lambda m, x, y: (x.T.reshape(3, 8)[1:, ::2], m.broadcast_to(y[:, None], (4, 5)) * 2), [(4, 6), (4,)]),
    "concat_cast": (lambda m, x, y: m.concatenate([x, y.astype(m.float16).astype(m.float32)], axis=0), [(2, 3), (4, 3)]),
    "where_int": (lambda m, x, y: m.where(x > y, (x * 10).astype(m.int32) // 3, 7), [(3, 5), (3, 5)]),
    "scan_arg": (lambda m, x, y: (m.cumsum(x, axis=1), m.argmax(y, axis=0), m.logsumexp(x, axis=-1)), [(3, 5), (3, 5)]),
    "fast": (
        lambda m, x, y: (
            m.fast.rms_norm(x, y[0], 1e-5),
            m.fast.layer_norm(x, y[1], y[2], 1e-5),
            m.fast.rope(x.reshape(1, 1, 3, 8), 8, traditional=False, base=10000.0, scale=1.0, offset=2),
        ),
        [(3, 8), (3, 8)],
    ),
    "attention": (
        lambda m, x, y: m.fast.scaled_dot_product_attention(
            x.reshape(1, 2, 3, 4), y.reshape(1, 2, 3, 4), x.reshape(1, 2, 3, 4), scale=0.5, mask="causal"
        ),
        [(6, 4), (6, 4)],
    ),
    "index_sort": (lambda m, x, y: (m.sort(x, axis=-1), m.take(x, m.array([2, 0, 1]), axis=1), m.pad(y, 1)), [(3, 4), (2, 2)]),
    "multi_out": (lambda m, x, y: (m.exp(x), m.log(m.abs(y) + 1), x - y), [(4, 6), (4, 6)]),
}


def _fn_path(tmp_path, m, name="f"):
    return str(tmp_path / f"{name}.{m.__name__.split('.')[0]}fn")


def _roundtrip(m, tmp_path, f, shapes, new_inputs):
    """Exports ``f`` on ones of ``shapes`` with library ``m`` and calls the import on ``new_inputs``."""
    path = _fn_path(tmp_path, m)
    m.export_function(path, lambda *a: f(m, *a), *[m.ones(s) for s in shapes])
    return m.import_function(path)(*new_inputs)


@pytest.mark.parametrize("name", sorted(FUNS))
def test_roundtrip_matches_original_and_mlx(name, tmp_path):
    f, shapes = FUNS[name]
    ins = [A(rand(s, "float32", seed=i + 1)) for i, s in enumerate(shapes)]
    check(lambda m, *xs: _roundtrip(m, tmp_path, f, shapes, xs), *ins, rtol=1e-5, atol=1e-6)
    mx = get_rmx()
    xs = [mx.array(a.data) for a in ins]
    got = _roundtrip(mx, tmp_path, f, shapes, xs)
    want = f(mx, *xs)
    want = want if isinstance(want, tuple) else (want,)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(np.array(g), np.array(w), rtol=1e-6, atol=1e-7)


def test_keyword_inputs_and_calling_conventions(tmp_path):
    def run(m, x, y, z):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda a, *, b, c: (a * b - c, c), x, b=y, c=z)
        g = m.import_function(path)
        return g(x, b=y, c=z), g(x, c=z, b=y), g((x,), {"b": y, "c": z})

    check(run, A(rand((2, 3), seed=1)), A(rand((2, 3), seed=2)), A(rand((3,), seed=3)))


def test_tuple_and_dict_example_inputs(tmp_path):
    def run(m, x, y):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda a, y: a + y, (x,), {"y": y})
        return m.import_function(path)(x, y=y)

    check(run, A(rand((2, 3), seed=1)), A(rand((2, 3), seed=2)))


def test_exporter_several_traces(tmp_path):
    def run(m, x, y, z):
        path = _fn_path(tmp_path, m)

        def f(*args):
            out = args[0]
            for a in args[1:]:
                out = out * 2 + a
            return out

        with m.exporter(path, f) as e:
            e(x)
            e(x, y)
            e(x, y, z)
            e(z)  # another shape, same count
        g = m.import_function(path)
        return g(y), g(y, x), g(z, y, x), g(x + 1), g(x[:2])

    check(run, A(rand((3,), seed=1)), A(rand((3,), seed=2)), A(rand((3,), seed=3)))


def test_exporter_errors(tmp_path):
    def dup(m):
        e = m.exporter(_fn_path(tmp_path, m), lambda x: x + 1)
        e(m.ones(2))
        e(m.zeros(2))

    def after_close(m):
        e = m.exporter(_fn_path(tmp_path, m), lambda x: x + 1)
        e(m.ones(2))
        e.close()
        e(m.ones(3))

    check_raises(dup, err=RuntimeError)
    check_raises(after_close, err=RuntimeError)


SHAPELESS = {
    "elementwise_scalar": (lambda m, x, b: m.exp(x) * 2 + 1, [(2, 3), (3,)]),
    "broadcast_arg": (lambda m, x, b: x * b - b, [(2, 3), (3,)]),
    "reduce_transpose": (lambda m, x, b: (x.sum(0), x.T.max(axis=1, keepdims=True), m.softmax(x, axis=-1)), [(2, 3), (3,)]),
    "matmul": (lambda m, x, b: (x @ x.T) + 1.0, [(2, 3), (3,)]),
    "concat": (lambda m, x, b: m.concatenate([x, x * 2], axis=0), [(2, 3), (3,)]),
}


@pytest.mark.parametrize("name", sorted(SHAPELESS))
def test_shapeless(name, tmp_path):
    f, shapes = SHAPELESS[name]

    def run(m, x, b):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda p, q: f(m, p, q), *[m.ones(s) for s in shapes], shapeless=True)
        g = m.import_function(path)
        # (MLX 0.32.4 aborts the process when a size-1 dim meets a shapeless reduction.)
        return g(x, b), g(x[:3], b), g(x[:, :2], b[:2])

    check(run, A(rand((5, 4), seed=1)), A(rand((4,), seed=2)), rtol=1e-5, atol=1e-6)


def test_shapeless_reshape_infers_the_minus_one_axis(tmp_path):
    def run(m, x):
        path = _fn_path(tmp_path, m)
        m.export_function(
            path, lambda p: (p.reshape(-1) * 3, p.reshape(2, -1), p.reshape(-1, 2)), m.ones((2, 3, 2)), shapeless=True
        )
        return m.import_function(path)(x)

    check(run, A(rand((4, 5, 2), seed=1)))
    check_raises(run, A(rand((1, 3, 1), seed=1)), err=ValueError)


def test_shapeless_still_checks_rank_and_dtype(tmp_path):
    def setup(m):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda p: p.sum(0), m.ones((2, 3)), shapeless=True)
        return m.import_function(path)

    check_raises(lambda m: setup(m)(m.ones((4, 5, 6))), err=ValueError)
    check_raises(lambda m: setup(m)(m.ones((4, 5), dtype=m.int32)), err=ValueError)


def test_constants_captured(tmp_path):
    w = rand((3, 4), seed=5)
    bias = rand((4,), seed=6)

    def run(m, x):
        cw, cb = m.array(w), m.array(bias)
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda a: m.maximum(a @ cw + cb, 0) * 0.5, m.ones((2, 3)))
        del cw, cb
        return m.import_function(path)(x)

    check(run, A(rand((2, 3), seed=1)), rtol=1e-5, atol=1e-6)


@rmx_only
def test_import_in_fresh_process(tmp_path):
    mx = get_rmx()
    w = mx.array(rand((3, 4), seed=5))
    path = str(tmp_path / "fresh.rmxfn")
    mx.export_function(path, lambda a, *, s: (mx.tanh(a @ w) * s,), mx.ones((2, 3)), s=mx.array(2.0))
    x = rand((2, 3), seed=7)
    want = np.array(mx.tanh(mx.array(x) @ w) * 2.0)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, rmx.core as mx\n"
        f"g = mx.import_function({path!r})\n"
        f"x = mx.array(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, np.array(g(x, s=mx.array(2.0))[0]))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.join(os.path.dirname(__file__), "..")] + sys.path if p)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), want, rtol=1e-6)


def test_metadata(tmp_path):
    def run(m):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda a: a + 1, m.ones(2), metadata='{"layers": 2}')
        g, meta = m.import_function(path, return_metadata=True)
        return meta, g(m.zeros(2))

    check(run)


def _exported(m, tmp_path):
    path = _fn_path(tmp_path, m)
    m.export_function(path, lambda a, b: (a + b, a * 2), m.ones((2, 3)), b=m.ones((3,)))
    return m.import_function(path)


CALL_MISUSE = {
    "missing_kwarg": lambda m, g: g(m.ones((2, 3))),
    "extra_positional": lambda m, g: g(m.ones((2, 3)), m.ones((3,))),
    "wrong_shape": lambda m, g: g(m.ones((2, 4)), b=m.ones((4,))),
    "wrong_dtype": lambda m, g: g(m.ones((2, 3), dtype=m.int32), b=m.ones((3,))),
    "wrong_name": lambda m, g: g(m.ones((2, 3)), c=m.ones((3,))),
    "non_array": lambda m, g: g(3, b=m.ones((3,))),
}


@pytest.mark.parametrize("name", sorted(CALL_MISUSE))
def test_call_errors_match_mlx(name, tmp_path):
    check_raises(lambda m: CALL_MISUSE[name](m, _exported(m, tmp_path)), err=ValueError)


EXPORT_MISUSE = {
    "non_array_input": lambda m, p: m.export_function(p, lambda x: x, 3),
    "non_array_kwarg": lambda m, p: m.export_function(p, lambda x, y: x, m.ones(2), y=3),
    "mixed_tuple": lambda m, p: m.export_function(p, lambda x, y: x, (m.ones(2),), y=m.ones(2)),
    "bad_output": lambda m, p: m.export_function(p, lambda x: 3, m.ones(2)),
    "dict_output": lambda m, p: m.export_function(p, lambda x: [x, {"a": x}], m.ones(2)),
}


@pytest.mark.parametrize("name", sorted(EXPORT_MISUSE))
def test_export_errors_match_mlx(name, tmp_path):
    check_raises(lambda m: EXPORT_MISUSE[name](m, _fn_path(tmp_path, m)), err=ValueError)


def test_import_errors_match_mlx(tmp_path):
    bad = tmp_path / "bad.fn"
    bad.write_bytes(b"garbage" * 4)
    check_raises(lambda m: m.import_function(str(tmp_path / "missing.fn")), err=RuntimeError)
    check_raises(lambda m: m.import_function(str(bad)), err=RuntimeError)


@rmx_only
def test_unsupported_primitive_is_a_clear_error(tmp_path):
    mx = get_rmx()
    with pytest.raises(ValueError, match=r"\[export_function\] Primitive \w+ cannot be exported yet\."):
        mx.export_function(str(tmp_path / "c.rmxfn"), lambda x: mx.fft.fft(x), mx.ones(4))


@rmx_only
def test_format_is_versioned_and_not_mlxfn(tmp_path):
    import mlx.core as mlx

    mx = get_rmx()
    path = str(tmp_path / "f.rmxfn")
    mx.export_function(path, lambda x: x + 1, mx.ones(2))
    with open(path, "rb") as fh:
        head = fh.read(16)
        assert head[:8] == b"RMXFN\0\0\0"
        n = int.from_bytes(head[8:], "little")
        import json

        header = json.loads(fh.read(n))
    assert header["version"] == 1 and header["format"] == "rmxfn"
    mpath = str(tmp_path / "f.mlxfn")
    mlx.export_function(mpath, lambda x: x + 1, mlx.ones(2))
    with pytest.raises(RuntimeError):
        mx.import_function(mpath)


def test_compiled_function_inside(tmp_path):
    """The trace holds the inner function's fused node (rmx stores `Fused` programs)."""

    def run(m, x, y):
        inner = m.compile(lambda a, b: m.exp(m.sin(a) * 2 + 1) * b - 0.5)
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda a, b: inner(a, b).sum(axis=0), m.ones((2, 3)), m.ones((2, 3)), shapeless=True)
        g = m.import_function(path)
        return g(x, y), g(x[:, :2], y[:, :2])

    check(run, A(rand((2, 3), seed=1)), A(rand((2, 3), seed=2)), rtol=1e-5, atol=1e-6)


def test_grad_through_imported_function(tmp_path):
    def run(m, x, w):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda a, b: (m.tanh(a @ b).sum(),), m.ones((2, 3)), m.ones((3, 4)))
        g = m.import_function(path)
        return m.grad(lambda a, b: g(a, b)[0], argnums=(0, 1))(x, w)

    check(run, A(rand((2, 3), seed=1)), A(rand((3, 4), seed=2)), rtol=1e-5, atol=1e-6)


@rmx_only
def test_imported_graph_is_fused(tmp_path):
    mx = get_rmx()
    path = str(tmp_path / "fused.rmxfn")
    mx.export_function(path, lambda a: mx.exp(mx.sin(a) * 2 + 1) * a, mx.ones((4, 4)))
    x = mx.array(rand((4, 4), seed=3))
    g = mx.import_function(path)
    assert g._inner.num_fused(0) == 1
    got = g(x)[0]
    np.testing.assert_allclose(np.array(got), np.array(mx.exp(mx.sin(x) * 2 + 1) * x), rtol=1e-6)


SHAPELESS_MISUSE = {
    # MLX: broadcast error; rmx: the norm's weight no longer fits the input.
    "norm_weight": (lambda m, x: m.fast.rms_norm(x, m.ones(3), 1e-5), (2, 3), (2, 4)),
    "slice": (lambda m, x: x[:, 1:], (2, 3), (2, 5)),
}


@pytest.mark.parametrize("name", sorted(SHAPELESS_MISUSE))
def test_shapeless_errors_match_mlx(name, tmp_path):
    f, s0, s1 = SHAPELESS_MISUSE[name]

    def run(m):
        path = _fn_path(tmp_path, m)
        m.export_function(path, lambda x: f(m, x), m.ones(s0), shapeless=True)
        return m.import_function(path)(m.ones(s1))

    check_raises(run, err=ValueError)


@rmx_only
@pytest.mark.parametrize(
    "f",
    [
        lambda m, x: x @ m.ones((3, 2)),  # MLX 0.32.4 returns a (2, 2) result from mismatched K
        lambda m, x: m.concatenate([x, m.ones((1, 3))]),  # MLX concatenates mismatched rows
    ],
)
def test_shapeless_checks_what_mlx_does_not(f, tmp_path):
    mx = get_rmx()
    path = str(tmp_path / "s.rmxfn")
    mx.export_function(path, lambda x: f(mx, x), mx.ones((2, 3)), shapeless=True)
    with pytest.raises(ValueError):
        mx.import_function(path)(mx.ones((2, 4)))


@rmx_only
def test_damaged_files_raise(tmp_path):
    """Truncations and edited headers raise RuntimeError instead of crashing."""
    import json

    mx = get_rmx()
    path = tmp_path / "ok.rmxfn"
    c = mx.array([1.0, 2.0, 3.0])
    mx.export_function(str(path), lambda x: (x * c + 1).sum(), mx.ones(3))
    data = path.read_bytes()
    n = int.from_bytes(data[8:16], "little")
    header = json.loads(data[16 : 16 + n])

    def write(h, blob=data[16 + n :]):
        raw = json.dumps(h).encode()
        bad = tmp_path / "bad.rmxfn"
        bad.write_bytes(data[:8] + len(raw).to_bytes(8, "little") + raw + blob)
        return str(bad)

    cases = [data[: len(data) - 4], data[:20], data[:8] + (2**63).to_bytes(8, "little") + data[16:]]
    for raw in cases:
        (tmp_path / "t.rmxfn").write_bytes(raw)
        with pytest.raises(RuntimeError):
            mx.import_function(str(tmp_path / "t.rmxfn"))
    edits = []
    h = json.loads(json.dumps(header))
    h["version"] = 99
    edits.append(h)
    h = json.loads(json.dumps(header))
    h["traces"][0]["steps"][0]["inputs"] = h["traces"][0]["steps"][0]["inputs"][:1]
    h["traces"][0]["steps"][0]["op"] = "Binary"
    h["traces"][0]["steps"][0]["params"] = {"op": "Add"}
    edits.append(h)
    h = json.loads(json.dumps(header))
    h["traces"][0]["outputs"] = [["step", 0, 5]]
    edits.append(h)
    h = json.loads(json.dumps(header))
    h["constants"][0]["shape"] = [2**40, 2**40]
    edits.append(h)
    h = json.loads(json.dumps(header))
    h["traces"][0]["steps"][0]["op"] = "NoSuchOp"
    edits.append(h)
    for h in edits:
        with pytest.raises(RuntimeError):
            mx.import_function(write(h))


def test_no_match_message_equals_mlx(tmp_path):
    import mlx.core as mlx

    msgs = []
    for m in (get_rmx(), mlx):
        g = _exported(m, tmp_path)
        with pytest.raises(ValueError) as e:
            g(m.ones((2, 3)))
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]
