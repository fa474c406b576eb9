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
    "fft": (
        lambda m, x, y: (
            m.fft.rfft(x),
            m.fft.irfft(m.fft.rfft(y), n=6),
            m.fft.fft2(x.astype(m.complex64)),
            m.fft.ifftn(y, axes=(0,)),
            m.fft.rfft2(x, s=(3, 5)),
        ),
        [(4, 6), (4, 6)],
    ),
    "conv": (
        lambda m, x, y: (
            m.conv1d(x, y, stride=2, padding=1),
            m.conv_transpose1d(x, y, stride=2),
            m.conv2d(x.reshape(1, 4, 2, 4), y.reshape(2, 3, 1, 4), padding=1, dilation=(1, 2)),
            m.conv1d(x, y[:, :, :2], groups=2),
        ),
        [(1, 8, 4), (2, 3, 4)],
    ),
    "quantized": (
        lambda m, x, y: (lambda q: (
            m.quantized_matmul(x, *q, transpose=True, group_size=32, bits=4),
            m.quantized_matmul(x[:, :32], *q, transpose=False, group_size=32, bits=4),
            m.dequantize(*q, group_size=32, bits=4),
        ))(m.quantize(y, group_size=32, bits=4)),
        [(2, 64), (32, 64)],
        {"rtol": 2e-5, "atol": 1e-5},  # rmx's kernel sums in another order than MLX's
    ),
    "quantized_mxfp4": (
        lambda m, x, y: (lambda q: m.quantized_matmul(x, *q, transpose=True, group_size=32, bits=4, mode="mxfp4"))(
            m.quantize(y, mode="mxfp4")
        ),
        [(2, 64), (32, 64)],
    ),
    "random_with_key_input": (
        lambda m, x, y: (
            x + m.random.uniform(shape=x.shape, key=(y[0, :2] * 7).astype(m.uint32)),
            m.random.normal((3, 2), key=(y[1, :2] * 5).astype(m.uint32)),
            m.random.randint(0, 100, (5,), key=(y[0, 2:4] * 3).astype(m.uint32)),
        ),
        [(4, 6), (4, 6)],
    ),
    "linalg": (
        lambda m, x, y: (lambda a: (
            m.linalg.inv(a, stream=m.cpu),
            m.linalg.cholesky(a, stream=m.cpu),
            m.abs(m.linalg.qr(a, stream=m.cpu)[1]),
            m.linalg.svd(a, compute_uv=False, stream=m.cpu),
            m.linalg.eigvalsh(a, stream=m.cpu),
            m.linalg.solve_triangular(a, y, upper=True, stream=m.cpu),
            m.linalg.tri_inv(a, upper=False, stream=m.cpu),
        ))(x @ x.T + 4 * m.eye(4)),
        [(4, 4), (4, 4)],
    ),
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
    f, shapes, *tol = FUNS[name]
    tol = tol[0] if tol else {"rtol": 1e-5, "atol": 1e-6}
    ins = [A(rand(s, "float32", seed=i + 1)) for i, s in enumerate(shapes)]
    check(lambda m, *xs: _roundtrip(m, tmp_path, f, shapes, xs), *ins, **tol)
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
def test_what_mlx_cannot_export(tmp_path):
    """fp8 conversion, qqmm and LU: MLX raises "Unable to serialize primitive ToFP8" (LUF);
    rmx exports them, and the imported function gives the direct call's values bit for bit."""
    import mlx.core as mlx

    with pytest.raises(ValueError, match="Unable to serialize primitive ToFP8"):
        mlx.export_function(str(tmp_path / "m.mlxfn"), lambda x: mlx.to_fp8(x), mlx.ones(4))
    mx = get_rmx()
    x = mx.array(rand((2, 64), "float32", seed=3))
    w = mx.array(rand((32, 64), "float32", seed=4))
    funs = {
        "fp8": lambda a, b: (mx.from_fp8(mx.to_fp8(a * 3), mx.bfloat16), mx.to_fp8(b)),
        "qqmm": lambda a, b: mx.qqmm(a[:1], *mx.quantize(b, mode="mxfp8"), mode="mxfp8"),
        "lu": lambda a, b: (*mx.linalg.lu_factor(b[:4, :4], stream=mx.cpu), *mx.linalg.lu(b[:4, :4], stream=mx.cpu),
                            mx.linalg.solve(b[:4, :4] + 8 * mx.eye(4), a[:, :4].T, stream=mx.cpu)),
    }
    for name, f in funs.items():
        path = str(tmp_path / f"{name}.rmxfn")
        mx.export_function(path, f, mx.ones((2, 64)), mx.ones((32, 64)))
        got = mx.import_function(path)(x, w)
        want = f(x, w)
        want = want if isinstance(want, tuple) else (want,)
        for g, e in zip(got, want):
            assert g.dtype == e.dtype and g.shape == e.shape
            np.testing.assert_array_equal(np.array(g.astype(mx.float32)), np.array(e.astype(mx.float32)))


def _custom(m, with_vjp=True):
    @m.custom_function
    def f(x, y):
        return m.sin(x) * y

    if with_vjp:
        @f.vjp
        def f_vjp(primals, cotangent, output):
            return cotangent * 100.0, cotangent * 100.0

    return f


def test_custom_function_exports_its_forward_graph(tmp_path):
    """A custom function without rules exports as its forward graph in both libraries. With
    a custom vjp MLX refuses ("Unable to serialize primitive CustomTransforms"); rmx
    exports the forward graph without the rules (they are closures), so the imported
    function's gradient is the plain derivative: checked against MLX's gradient of the
    same function written without custom_function."""
    x, y = A(rand((3,), seed=5)), A(rand((3,), seed=6))

    def run(m, a, b, with_vjp):
        f = _custom(m, with_vjp)
        path = _fn_path(tmp_path, m)
        if with_vjp and m.__name__.startswith("mlx"):
            with pytest.raises(ValueError, match="CustomTransforms"):
                m.export_function(path, lambda u, v: f(u, v), m.ones((3,)), m.ones((3,)))
            g = lambda u, v: (m.sin(u) * v + 1).sum()  # noqa: E731 - the plain function
        else:
            m.export_function(path, lambda u, v: (f(u, v) + 1).sum(), m.ones((3,)), m.ones((3,)))
            g = lambda u, v: m.import_function(path)(u, v)[0]  # noqa: E731
        return g(a, b), m.grad(g, argnums=(0, 1))(a, b)

    check(lambda m, a, b: run(m, a, b, False), x, y, rtol=1e-5, atol=1e-6)
    check(lambda m, a, b: run(m, a, b, True), x, y, rtol=1e-5, atol=1e-6)


CALLBACK_FUNS = {
    "elementwise_kw": (lambda m: (lambda x, y: m.exp(x) * y + 1), [(2,)], {"y": ()}),
    "multi_out_constant": (lambda m: (lambda x, y: (m.sin(x) @ y, x * 3.0, m.cumsum(y, axis=0))), [(2, 3), (3, 4)], {}),
    "custom": (lambda m: (lambda x: _custom(m, with_vjp=False)(x, x) * 2), [(3,)], {}),
    "fft_conv": (lambda m: (lambda x, w: (m.fft.rfft(x[0, :, 0]), m.conv1d(x, w, stride=2, padding=1))),
                 [(1, 8, 4), (2, 3, 4)], {}),
    "random_key": (lambda m: (lambda k: m.random.randint(0, 9, (3,), key=k)), [], {"k": "key"}),
}


def _events(m, name):
    make, shapes, kw = CALLBACK_FUNS[name]
    events = []
    args = [m.ones(s) for s in shapes]
    kwargs = {k: (m.random.key(1) if s == "key" else m.ones(s)) for k, s in kw.items()}
    m.export_function(events.append, make(m), *args, **kwargs)
    return events


def _plain(v):
    """An event's values with dtypes and arrays as text, so both libraries compare."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, tuple):
        return ("array", tuple(v.shape), str(v.dtype).split(".")[-1])
    if type(v).__name__ == "Dtype":
        return str(v).split(".")[-1]
    return v


@pytest.mark.parametrize("name", sorted(CALLBACK_FUNS))
def test_export_to_a_callback_reports_as_mlx(name):
    """The inputs, keyword inputs and outputs records equal MLX's (ids, shapes, dtypes); the
    primitive records name the same primitives in the same order, broadcasts aside (rmx
    reports constants already broadcast, MLX a scalar and a Broadcast step) and MLX's
    Squeeze/ExpandDims being rmx's Reshape, among the steps that depend on an input; and connect
    by the same ids to inputs and outputs."""
    import mlx.core as mlx

    mine, theirs = _events(get_rmx(), name), _events(mlx, name)
    kinds = lambda ev: [e["type"] for e in ev if e["type"] != "primitive"]  # noqa: E731
    assert kinds(mine) == kinds(theirs) == ["inputs", "keyword_inputs", "outputs", "constants"]
    for k in range(3):
        assert _plain(mine[k]) == _plain(theirs[k])
    same = {"Squeeze": "Reshape", "ExpandDims": "Reshape"}  # MLX's reshapes by kind

    def prims(ev):
        """Names of the steps that depend on an input (rmx folds work on constants alone
        into constants; MLX keeps it as steps)."""
        varying, names = {i[0] for i in ev[0]["inputs"]}, []
        for e in ev[4:]:
            if any(i[0] in varying for i in e["inputs"]):
                varying |= {o[0] for o in e["outputs"]}
                if e["name"] != "Broadcast":
                    names.append(same.get(e["name"], e["name"]))
        return names

    assert prims(mine) == prims(theirs)
    ids = {e[0] for e in mine[0]["inputs"]} | {c[0] for c in mine[3]["constants"]}
    for e in mine[4:]:
        assert all(i[0] in ids for i in e["inputs"]), e
        ids |= {o[0] for o in e["outputs"]}
    assert {o[0] for o in mine[2]["outputs"]} <= ids


def test_callback_export_errors_match_mlx():
    messages = []
    for m in (get_rmx(), __import__("mlx.core", fromlist=["core"])):
        with pytest.raises(ValueError) as e:
            m.export_function(lambda d: None, lambda x: x + 1, m.ones(2), metadata="{}")
        messages.append(str(e.value))
    assert messages[0] == messages[1]


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


@rmx_only
def test_damaged_kernel_parameters_raise(tmp_path):
    """Parameters of the kernel families that no longer fit the step's operands (a conv
    stride, an FFT axis, quantization bits, a random-bits width) are refused at import."""
    import json

    mx = get_rmx()
    path = tmp_path / "k.rmxfn"
    f = lambda x, w, m, k: (  # noqa: E731
        mx.conv1d(x, w, stride=2), mx.fft.rfft(x[0, :, 0]),
        mx.quantized_matmul(x[0].T, *mx.quantize(m), transpose=True),
        mx.random.uniform(shape=(3,), key=k),
    )
    mx.export_function(str(path), f, mx.ones((1, 64, 4)), mx.ones((2, 3, 4)), mx.ones((8, 64)), mx.random.key(0))
    data = path.read_bytes()
    n = int.from_bytes(data[8:16], "little")
    header = json.loads(data[16 : 16 + n])
    mx.import_function(str(path))  # the undamaged file imports

    def edited(op, key, value):
        h = json.loads(json.dumps(header))
        steps = [st for st in h["traces"][0]["steps"] if st["op"] == op]
        assert steps, op
        steps[0]["params"][key] = value
        raw = json.dumps(h).encode()
        bad = tmp_path / "bad.rmxfn"
        bad.write_bytes(data[:8] + len(raw).to_bytes(8, "little") + raw + data[16 + n :])
        return str(bad)

    for op, key, value in [("Convolution", "stride", [1]), ("Convolution", "groups", 3),
                           ("Convolution", "stride", []), ("Fft", "axes", [3]), ("Fft", "real", False),
                           ("QuantizedMatmul", "bits", 3), ("QuantizedMatmul", "transpose", False),
                           ("Quantize", "group_size", 48), ("RandomBits", "width", 3),
                           ("RandomBits", "shape", [4])]:
        with pytest.raises(RuntimeError, match="do not fit its operands"):
            mx.import_function(edited(op, key, value))


def test_no_match_message_equals_mlx(tmp_path):
    import mlx.core as mlx

    msgs = []
    for m in (get_rmx(), mlx):
        g = _exported(m, tmp_path)
        with pytest.raises(ValueError) as e:
            g(m.ones((2, 3)))
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]
