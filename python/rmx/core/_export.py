"""``export_function``, ``import_function`` and ``exporter``: the Python side of function
export. It normalises the example arguments (positional and keyword arrays, or one tuple
and/or dict of arrays), checks the outputs, and picks the stored trace that matches a
call. The traced graphs and the file format (rmx's own, not MLX's ``.mlxfn``) live in
Rust (``rmx-io/src/export.rs``)."""

import json

from rmx import _rmx

_array = _rmx.array

_BAD_INPUTS = (
    "[export_function] Inputs can either be a variable number of positional and keyword "
    "arrays or a single tuple and/or dictionary of arrays."
)


def _normalize(args, kwargs, where):
    """``(positional arrays, {name: array})`` from either calling convention."""
    if all(isinstance(a, _array) for a in args) and all(isinstance(v, _array) for v in kwargs.values()):
        return list(args), dict(kwargs)
    if not kwargs and 1 <= len(args) <= 2:
        pos, kw = [], {}
        rest = list(args)
        if isinstance(rest[0], (tuple, list)):
            pos = list(rest.pop(0))
        if rest and isinstance(rest[0], dict):
            kw = dict(rest.pop(0))
        if not rest and all(isinstance(a, _array) for a in pos) and all(
            isinstance(k, str) and isinstance(v, _array) for k, v in kw.items()
        ):
            return pos, kw
    raise ValueError(_BAD_INPUTS.replace("export_function", where))


def _signature(pos, kw, shapeless):
    keys = sorted(kw)
    leaves = pos + [kw[k] for k in keys]
    specs = tuple((a.ndim if shapeless else tuple(a.shape), str(a.dtype)) for a in leaves)
    return (len(pos), tuple(keys), specs)


class FunctionExporter:
    """Collects traces of ``fun`` (one per call) into one file; see ``exporter``."""

    def __init__(self, file, fun, shapeless=False, metadata=None):
        self._callback = file if callable(file) and not isinstance(file, str) else None
        if self._callback is not None and metadata is not None:
            raise ValueError("[export_function] The metadata argument is only supported when exporting to a "
                             "file, not when using a callback.")
        self._file = None if self._callback else str(file)
        self._fun = fun
        self._shapeless = bool(shapeless)
        self._inner = _rmx._Exporter(self._shapeless, "" if metadata is None else str(metadata))
        self._signatures = set()
        self._closed = False

    def __call__(self, *args, **kwargs):
        if self._closed:
            raise RuntimeError("[export_function] Attempting to write after exporting is closed.")
        pos, kw = _normalize(args, kwargs, "export_function")
        sig = _signature(pos, kw, self._shapeless)
        if sig in self._signatures:
            raise RuntimeError(
                "[export_function] Attempting to export a function twice with the same signature is not allowed."
            )
        keys = sorted(kw)
        leaves = pos + [kw[k] for k in keys]
        fun = self._fun

        def flat(xs):
            out = fun(*xs[: len(pos)], **dict(zip(keys, xs[len(pos):])))
            if isinstance(out, _array):
                out = [out]
            if not isinstance(out, (tuple, list)) or not all(isinstance(o, _array) for o in out):
                raise ValueError("[export_function] Outputs can be either a single array, a tuple, or a list of arrays.")
            return list(out)

        meta = json.dumps({"positional": len(pos), "keywords": keys})
        self._inner.add(flat, [list(a.shape) for a in leaves], [a.dtype for a in leaves], meta)
        self._signatures.add(sig)
        if self._callback is None:
            self._inner.write(self._file)
        else:
            _report(self._callback, self._inner, len(self._signatures) - 1, len(pos), keys)

    def close(self):
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _ids():
    """MLX's node ids: A, B, ..., Z, AA, AB, ..."""
    n = 0
    while True:
        k, name = n, ""
        while True:
            name = chr(ord("A") + k % 26) + name
            k = k // 26 - 1
            if k < 0:
                break
        yield name
        n += 1


def _report(callback, inner, index, pos_count, keys):
    """Calls ``callback`` with one trace as MLX does: a dict each for the inputs, the keyword
    inputs, the outputs and the constants, then one per primitive (its name, arguments,
    inputs and outputs as ``(id, shape, dtype)``). rmx's primitive arguments are its own
    parameters of the step, not MLX's."""
    desc_json, consts = inner.describe(index)
    desc = json.loads(desc_json)
    ids = _ids()
    dtype = lambda name: getattr(_rmx, name)  # noqa: E731
    inputs = [(next(ids), tuple(s), dtype(d)) for s, d in desc["inputs"]]
    steps = desc["steps"]
    step_ids = [[None] * len(st["outputs"]) for st in steps]
    const_ids = [None] * len(consts)

    def spec(ref):
        kind, i = ref[0], ref[1]
        if kind == "in":
            return inputs[i]
        if kind == "const":
            return (const_ids[i], tuple(consts[i].shape), consts[i].dtype)
        s, d = steps[i]["outputs"][ref[2]]
        return (step_ids[i][ref[2]], tuple(s), dtype(d))

    # function outputs are named before the constants and the other nodes, as in MLX
    for ref in desc["outputs"]:
        if ref[0] == "step" and step_ids[ref[1]][ref[2]] is None:
            step_ids[ref[1]][ref[2]] = next(ids)
    for c in range(len(consts)):
        const_ids[c] = next(ids)
    # steps in MLX's order: depth first from each output in turn, inputs before users
    order, seen = [], set()
    for ref in desc["outputs"]:
        stack = [(ref[1], False)] if ref[0] == "step" else []
        while stack:
            s, done = stack.pop()
            if done:
                order.append(s)
            elif s not in seen:
                seen.add(s)
                stack.append((s, True))
                for r in reversed(steps[s]["inputs"]):
                    if r[0] == "step" and r[1] not in seen:
                        stack.append((r[1], False))
    callback({"inputs": inputs, "type": "inputs"})
    callback({"keywords": [(k, inputs[pos_count + j][0]) for j, k in enumerate(keys)],
              "type": "keyword_inputs"})
    callback({"outputs": [spec(r) for r in desc["outputs"]], "type": "outputs"})
    callback({"constants": [(const_ids[c], a) for c, a in enumerate(consts)], "type": "constants"})
    for s in order:
        st = steps[s]
        for k in range(len(st["outputs"])):
            if step_ids[s][k] is None:
                step_ids[s][k] = next(ids)
        callback({
            "arguments": st["arguments"],
            "outputs": [spec(["step", s, k]) for k in range(len(st["outputs"]))],
            "inputs": [spec(r) for r in st["inputs"]],
            "name": st["name"],
            "type": "primitive",
        })


def exporter(file, fun, *, shapeless=False, metadata=None):
    """A callable that adds one trace of ``fun`` per call to ``file``; use it as a context
    manager (``with mx.exporter(path, fun) as e: e(x); e(x, y)``)."""
    return FunctionExporter(file, fun, shapeless, metadata)


def export_function(file, fun, *args, shapeless=False, metadata=None, **kwargs):
    """Traces ``fun`` on the example arrays and writes the graph to ``file`` (rmx's own
    versioned format, not byte-compatible with MLX's ``.mlxfn``), or, when ``file`` is a
    callable, reports it to that callback as MLX does."""
    with FunctionExporter(file, fun, shapeless, metadata) as e:
        e(*args, **kwargs)


def _describe(pos_count, keys, specs):
    lines = [f"Function with {pos_count} positional inputs and {len(keys)} keyword inputs:"]
    for i, (shape, dtype) in enumerate(specs):
        name = str(i + 1) if i < pos_count else f'"{keys[i - pos_count]}"'
        dims = ",".join(str(d) for d in shape)
        lines.append(f"   {name}: ({dims}) {str(dtype).split('.')[-1]}")
    return "\n".join(lines)


class ImportedFunction:
    """A function read back by ``import_function``; returns a tuple of arrays."""

    def __init__(self, inner):
        self._inner = inner
        self._traces = []
        for meta, specs in inner.traces:
            m = json.loads(meta)
            self._traces.append((m["positional"], m["keywords"], specs))

    def _matches(self, trace, pos, kw):
        n, keys, specs = trace
        if n != len(pos) or sorted(kw) != keys:
            return False
        leaves = pos + [kw[k] for k in keys]
        for a, (shape, dtype) in zip(leaves, specs):
            if a.dtype != dtype:
                return False
            if self._inner.shapeless:
                if a.ndim != len(shape):
                    return False
            elif tuple(a.shape) != tuple(shape):
                return False
        return True

    def __call__(self, *args, **kwargs):
        pos, kw = _normalize(args, kwargs, "import_function::call")
        for i, t in enumerate(self._traces):
            if self._matches(t, pos, kw):
                keys = t[1]
                return tuple(self._inner.call(i, pos + [kw[k] for k in keys]))
        options = "\n".join(f" {i + 1}. {_describe(*t)}" for i, t in enumerate(self._traces))
        keys = sorted(kw)
        called = _describe(len(pos), keys, [(a.shape, a.dtype) for a in pos + [kw[k] for k in keys]])
        called = called.replace("\n   ", "\n  ") + "\n"  # as MLX: inputs indented by two, final newline
        raise ValueError(
            "[import_function::call] No imported function found which matches the given positional "
            f"and keyword arguments. Possible functions include:\n{options}\n\nCalled with {called[len('Function with '):]}"
        )


def import_function(file, return_metadata=False):
    """Reads a function written by ``export_function`` / ``exporter``. The imported
    function takes the same positional and keyword arrays and returns a tuple of arrays."""
    inner = _rmx._import_function(str(file))
    fn = ImportedFunction(inner)
    return (fn, inner.metadata) if return_metadata else fn
