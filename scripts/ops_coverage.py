#!/usr/bin/env python3
"""Writes docs/OPS.md: every public name of mlx.core, mlx.core.linalg, mlx.core.fft,
mlx.core.random and mlx.core.fast, whether rmx has it, and (for ops that take a float
array) whether `grad` and `vmap` through it work in rmx and in MLX.

Regenerate (after merging new ops) with one command from the repository root:

    PYTHONPATH=python python3 scripts/ops_coverage.py

The probes call each op on a small float32 input (values in (0.1, 0.9)) through a
recipe (`RECIPES` below, else f(x), f(x, x), f(x, x, x) in turn, the first MLX accepts),
then try `grad` of the sum of its first floating output (real part if complex) and
`vmap` over a batch of two. "yes"/"no" are what happened; "-" means not probed (not an
op on arrays, no recipe fits, or the output is not floating so there is no gradient).
`python/tests/test_ops_coverage.py` checks that the committed presence column is current.
"""

import inspect
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import mlx.core as mx  # noqa: E402
import rmx.core as rx  # noqa: E402

MODULES = ["", "linalg", "fft", "random", "fast"]
OUT = os.path.join(HERE, "..", "docs", "OPS.md")

# Names that are not ops on arrays (devices, streams, memory, IO, transforms, classes):
# presence only.
NOT_OPS = {
    "array", "eval", "async_eval", "grad", "value_and_grad", "vjp", "jvp", "vmap",
    "compile", "checkpoint", "custom_function", "disable_compile", "enable_compile",
    "set_compile_mode", "export_to_dot", "export_function", "import_function",
    "exporter", "stream", "synchronize", "new_stream", "new_thread_unsafe_stream",
    "default_stream", "set_default_stream", "default_device", "set_default_device",
    "device_info", "device_count", "is_available", "clear_streams", "save", "savez",
    "savez_compressed", "save_safetensors", "save_gguf", "load", "from_dlpack",
    "set_printoptions", "get_printoptions", "printoptions", "finfo", "iinfo", "issubdtype",
    "isdtype", "can_cast", "result_type", "seed", "key", "split", "get_active_memory",
    "get_peak_memory", "reset_peak_memory", "get_cache_memory", "set_cache_limit",
    "set_memory_limit", "get_memory_limit", "clear_cache", "set_wired_limit",
    "get_array_buffer_size", "metal_kernel", "cuda_kernel", "precompiled_cuda_kernel",
    "hanning", "hamming", "bartlett", "blackman", "arange", "linspace", "eye", "identity",
    "tri", "zeros", "ones", "full", "fftfreq", "rfftfreq", "to_fp8", "from_fp8",
    "meshgrid", "broadcast_arrays", "concatenate", "concat", "stack", "vstack", "hstack",
    "dstack", "einsum_path", "quantize", "dequantize",
}


def _pos(lib):
    return lib.array(np.linspace(0.1, 0.9, 6, dtype=np.float32).reshape(2, 3))


def _sq(lib):
    return lib.array(np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]], np.float32))


# name -> call(lib, f, x): ops whose arguments are not just arrays like x
RECIPES = {
    "reshape": lambda L, f, x: f(x, (3, 2)),
    "transpose": lambda L, f, x: f(x),
    "broadcast_to": lambda L, f, x: f(x, (2, 2, 3)),
    "expand_dims": lambda L, f, x: f(x, 0),
    "squeeze": lambda L, f, x: f(L.expand_dims(x, 0)),
    "swapaxes": lambda L, f, x: f(x, 0, 1),
    "moveaxis": lambda L, f, x: f(x, 0, 1),
    "flatten": lambda L, f, x: f(x),
    "unflatten": lambda L, f, x: f(x, 1, (3, 1)),
    "split": lambda L, f, x: f(x, 3, axis=1)[0],
    "take": lambda L, f, x: f(x, L.array([0, 2]), axis=1),
    "take_along_axis": lambda L, f, x: f(x, L.array([[0], [2]]), axis=1),
    "put_along_axis": lambda L, f, x: f(x, L.array([[0], [2]]), x[:, :1], axis=1),
    "scatter_add_axis": lambda L, f, x: f(x, L.array([[0], [2]]), x[:, :1], axis=1),
    "slice": lambda L, f, x: f(x, L.array([0, 1]), (0, 1), (1, 2)),
    "slice_update": lambda L, f, x: f(x, x[:1, :2], L.array([0, 1]), (0, 1)),
    "pad": lambda L, f, x: f(x, 1),
    "tile": lambda L, f, x: f(x, (2, 1)),
    "repeat": lambda L, f, x: f(x, 2, axis=0),
    "roll": lambda L, f, x: f(x, 1),
    "tril": lambda L, f, x: f(x),
    "triu": lambda L, f, x: f(x),
    "diag": lambda L, f, x: f(x),
    "diagonal": lambda L, f, x: f(x),
    "trace": lambda L, f, x: f(x),
    "topk": lambda L, f, x: f(x, 2),
    "partition": lambda L, f, x: f(x, 1),
    "argpartition": lambda L, f, x: f(x, 1),
    "as_strided": lambda L, f, x: f(x, (2, 2), (3, 1)),
    "view": lambda L, f, x: f(x, L.float32),
    "astype": lambda L, f, x: f(x, L.float32),
    "round": lambda L, f, x: f(x, 1),
    "clip": lambda L, f, x: f(x, 0.2, 0.8),
    "where": lambda L, f, x: f(x > 0.5, x, x * 2),
    "matmul": lambda L, f, x: f(x, L.transpose(x)),
    "addmm": lambda L, f, x: f(x[:, :2], x, L.transpose(x)),
    "inner": lambda L, f, x: f(x, x),
    "outer": lambda L, f, x: f(x[0], x[1]),
    "tensordot": lambda L, f, x: f(x, L.transpose(x), axes=1),
    "kron": lambda L, f, x: f(x, x),
    "einsum": lambda L, f, x: f("ij,kj->ik", x, x),
    "block_masked_mm": lambda L, f, x: f(L.ones((32, 32)) * x[0, 0], L.ones((32, 32)), block_size=32),
    "gather_mm": lambda L, f, x: f(x, L.transpose(x)),
    "segmented_mm": lambda L, f, x: f(L.transpose(x), x, L.array([[0, 1], [1, 2]])),
    "hadamard_transform": lambda L, f, x: f(L.concatenate([x, x[:, :1]], axis=1)),
    "conv1d": lambda L, f, x: f(L.reshape(x, (1, 6, 1)), L.reshape(x[0], (1, 3, 1))),
    "conv2d": lambda L, f, x: f(L.reshape(x, (1, 2, 3, 1)), L.reshape(x[0, :2], (1, 1, 2, 1))),
    "conv3d": lambda L, f, x: f(L.reshape(x, (1, 1, 2, 3, 1)), L.reshape(x[0, :2], (1, 1, 1, 2, 1))),
    "conv_general": lambda L, f, x: f(L.reshape(x, (1, 6, 1)), L.reshape(x[0], (1, 3, 1))),
    "conv_transpose1d": lambda L, f, x: f(L.reshape(x, (1, 6, 1)), L.reshape(x[0], (1, 3, 1))),
    "conv_transpose2d": lambda L, f, x: f(L.reshape(x, (1, 2, 3, 1)), L.reshape(x[0, :2], (1, 1, 2, 1))),
    "conv_transpose3d": lambda L, f, x: f(L.reshape(x, (1, 1, 2, 3, 1)), L.reshape(x[0, :2], (1, 1, 1, 2, 1))),
    "convolve": lambda L, f, x: f(x[0], x[1]),
    "quantized_matmul": lambda L, f, x: f(
        L.ones((2, 64)) * x[0, 0], *L.quantize(L.ones((4, 64)))),
    "gather_qmm": lambda L, f, x: f(L.ones((2, 64)) * x[0, 0], *L.quantize(L.ones((4, 64)))),
    "qqmm": lambda L, f, x: f(L.ones((1, 64)) * x[0, 0], L.ones((16, 64))),
    "gather_qqmm": lambda L, f, x: f(L.ones((1, 64)) * x[0, 0], L.ones((16, 64))),
    "softmax": lambda L, f, x: f(x, axis=-1),
    "cumsum": lambda L, f, x: f(x, axis=1),
    "cumprod": lambda L, f, x: f(x, axis=1),
    "cummax": lambda L, f, x: f(x, axis=1),
    "cummin": lambda L, f, x: f(x, axis=1),
    "cumulative_sum": lambda L, f, x: f(x, axis=1),
    "cumulative_prod": lambda L, f, x: f(x, axis=1),
    "logcumsumexp": lambda L, f, x: f(x, axis=1),
    "full_like": lambda L, f, x: f(x, 2.0),
    "array_equal": None,
    "allclose": None,
    "isclose": None,
    "nan_to_num": lambda L, f, x: f(x),
    "searchsorted": None,
    "divmod": lambda L, f, x: f(x, x + 1)[0],
    "bitwise_and": None, "bitwise_or": None, "bitwise_xor": None, "bitwise_invert": None,
    "left_shift": None, "right_shift": None, "bitwise_left_shift": None,
    "bitwise_right_shift": None,
    "matrix_norm": lambda L, f, x: f(x),
    "minmax": lambda L, f, x: f(x)[1],
    "unique": lambda L, f, x: f(x, 4),
    "depends": lambda L, f, x: f(x * 2, x),
    # linalg
    "linalg.norm": lambda L, f, x: f(x),
    "linalg.matrix_norm": lambda L, f, x: f(x),
    "linalg.inv": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu),
    "linalg.tri_inv": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu),
    "linalg.cholesky": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu),
    "linalg.cholesky_inv": lambda L, f, x: f(L.linalg.cholesky(_sq(L), stream=L.cpu) * x[0, 0], stream=L.cpu),
    "linalg.pinv": lambda L, f, x: f(x, stream=L.cpu),
    "linalg.solve": lambda L, f, x: f(_sq(L), x[0] * L.ones(3), stream=L.cpu),
    "linalg.solve_triangular": lambda L, f, x: f(L.triu(_sq(L)) * x[0, 0], x[0], stream=L.cpu),
    "linalg.qr": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu)[0],
    "linalg.svd": lambda L, f, x: f(x, stream=L.cpu)[1],
    "linalg.eigh": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu)[0],
    "linalg.eigvalsh": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu),
    "linalg.eig": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu)[0],
    "linalg.eigvals": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu),
    "linalg.lu": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu)[2],
    "linalg.lu_factor": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu)[0],
    "linalg.det": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu),
    "linalg.slogdet": lambda L, f, x: f(_sq(L) * x[0, 0], stream=L.cpu)[1],
    "linalg.cross": lambda L, f, x: f(x[0], x[1]),
    # fft
    "fft.fftfreq": None, "fft.rfftfreq": None,
    "fft.stft": lambda L, f, x: f(L.reshape(x, (6,)), n_fft=4),
    "fft.istft": lambda L, f, x: f(L.fft.stft(L.reshape(x, (6,)), n_fft=4) * x[0, 0], n_fft=4),
    # random: sampling with array parameters
    "random.uniform": lambda L, f, x: f(x, x + 1, key=L.random.key(0)),
    "random.normal": lambda L, f, x: f((2, 3), loc=x, key=L.random.key(0)),
    "random.truncated_normal": lambda L, f, x: f(x - 1, x + 1, key=L.random.key(0)),
    "random.gumbel": None, "random.bernoulli": None, "random.categorical": None,
    "random.randint": None, "random.permutation": None, "random.laplace": None,
    "random.multivariate_normal": lambda L, f, x: f(x[0], _sq(L), key=L.random.key(0), stream=L.cpu),
    "random.bits": None, "random.key": None, "random.split": None, "random.seed": None,
    # fast
    "fast.rms_norm": lambda L, f, x: f(x, x[0], 1e-5),
    "fast.layer_norm": lambda L, f, x: f(x, x[0], x[1], 1e-5),
    "fast.rope": lambda L, f, x: f(L.reshape(L.concatenate([x, x], 1), (1, 2, 6))[..., :4], 4, traditional=False, base=10000.0, scale=1.0, offset=0),
    "fast.scaled_dot_product_attention": lambda L, f, x: f(
        L.reshape(x, (1, 1, 2, 3)), L.reshape(x, (1, 1, 2, 3)), L.reshape(x, (1, 1, 2, 3)), scale=1.0),
    "fast.cross_entropy": lambda L, f, x: f(x, L.array([0, 2])),
    "fast.gated_delta_update": lambda L, f, x: f(
        L.reshape(x, (1, 2, 1, 3)), L.reshape(x, (1, 2, 1, 3)), L.reshape(x, (1, 2, 1, 3)),
        L.reshape(x[:, :1], (1, 2, 1)), L.reshape(x[:, :1], (1, 2, 1)))[0],
}


def public(mod):
    return sorted(n for n in dir(mod) if not n.startswith("_"))


def submodule(lib, sub):
    return lib if not sub else getattr(lib, sub, None)


def _first_float(L, out):
    if isinstance(out, (list, tuple)):
        out = next((o for o in out if isinstance(o, L.array)), None)
    if not isinstance(out, L.array):
        raise LookupError("no array output")
    if L.issubdtype(out.dtype, L.complexfloating):
        return L.real(out)
    if not L.issubdtype(out.dtype, L.floating):
        raise LookupError("not floating")
    return out


def _call(L, qual, f, x):
    if qual in RECIPES:
        r = RECIPES[qual]
        if r is None:
            raise LookupError("no recipe")
        return r(L, f, x)
    last = None
    for n in (1, 2, 3):
        try:
            return f(*([x] * n))
        except Exception as e:  # noqa: BLE001 - try the next arity
            last = e
    raise LookupError(f"no arity fits: {last}")


def probe(L, qual, f):
    """(grad, vmap) for one op in one library: 'yes', 'no' or '-' (not probed)."""
    x = _pos(L)
    try:
        _first_float(L, _call(L, qual, f, x))
    except Exception:  # noqa: BLE001 - not callable this way: not probed
        return "-", "-"
    try:
        g = L.grad(lambda y: L.sum(_first_float(L, _call(L, qual, f, y))))(x)
        L.eval(g)
        grad = "yes"
    except Exception:  # noqa: BLE001
        grad = "no"
    try:
        xb = L.stack([x, x * 0.5])
        v = L.vmap(lambda y: _first_float(L, _call(L, qual, f, y)))(xb)
        L.eval(v)
        vmap = "yes"
    except Exception:  # noqa: BLE001
        vmap = "no"
    return grad, vmap


def kind(obj):
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def presence():
    """{module: [(name, has_rmx)]} for every public MLX name."""
    table = {}
    for sub in MODULES:
        mm, rm = submodule(mx, sub), submodule(rx, sub)
        table[sub] = [(n, rm is not None and hasattr(rm, n)) for n in public(mm)]
    return table


def rows(with_probes=True):
    out = {}
    for sub, names in presence().items():
        mm, rm = submodule(mx, sub), submodule(rx, sub)
        lines = []
        for name, has in names:
            qual = f"{sub}.{name}" if sub else name
            obj = getattr(mm, name)
            k = kind(obj)
            probes = ("-", "-", "-", "-")
            if with_probes and k == "function" and name not in NOT_OPS and qual not in (
                "random." + n for n in ("key", "split", "seed")
            ):
                mg, mv = probe(mx, qual, obj)
                rg, rv = probe(rx, qual, getattr(rm, name)) if has else ("-", "-")
                probes = (rg, mg, rv, mv)
            lines.append((name, k, "yes" if has else "**no**") + probes)
        out[sub] = lines
    return out


HEADER = """# rmx coverage of the MLX 0.32.4 Python API

Generated by `scripts/ops_coverage.py`; do not edit by hand. Regenerate (for example
after merging new ops) with one command from the repository root:

    PYTHONPATH=python python3 scripts/ops_coverage.py

`python/tests/test_ops_coverage.py` fails when the *rmx* column no longer matches.
The grad and vmap columns are probes on a small float32 input (see the script's
docstring): "yes" means `grad` (of the sum of the first floating output) or `vmap`
(over a batch of two) ran, "no" that it raised, "-" that the name was not probed
(not an op on float arrays, no call recipe, or an output with no gradient).
"""


def render(table):
    parts = [HEADER]
    for sub in MODULES:
        title = "mlx.core" + (f".{sub}" if sub else "")
        lines = table[sub]
        have = sum(1 for line in lines if line[2] == "yes")
        parts.append(f"\n## `{title}` ({have} of {len(lines)} names)\n")
        parts.append("| name | kind | rmx | grad rmx | grad MLX | vmap rmx | vmap MLX |")
        parts.append("|---|---|---|---|---|---|---|")
        for line in lines:
            parts.append("| `" + line[0] + "` | " + " | ".join(line[1:]) + " |")
    return "\n".join(parts) + "\n"


def parse_presence(text):
    """{module: [(name, has_rmx)]} read back from a rendered OPS.md."""
    table, sub = {}, None
    for line in text.splitlines():
        if line.startswith("## `mlx.core"):
            title = line.split("`")[1]
            sub = title[len("mlx.core") + 1:] if title != "mlx.core" else ""
            table[sub] = []
        elif sub is not None and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            table[sub].append((cells[0].strip("`"), cells[2] == "yes"))
    return table


def main():
    text = render(rows())
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
