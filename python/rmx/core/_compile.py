"""``compile``: the Python side of rmx's compiler. It flattens argument trees, keys a
cache by tree structure, input shapes/dtypes and non-array constants, and replays the
graph traced once in Rust (``_CompiledGraph``). Python side effects in the function run
at trace time only, as in MLX. ``inputs``/``outputs`` capture state (e.g. a model and its
optimizer) as implicit inputs and outputs."""

import functools

from rmx import _rmx
from rmx.core._random import _RandomState, state as _random_state
from rmx.utils import tree_map

_array = _rmx.array
_mode = {"disabled_by_call": False}


def disable_compile():
    """Globally turn ``compile`` into a pass-through."""
    _rmx.set_compile_mode_str("disabled")


def enable_compile():
    """Turn ``compile`` back on (and ignore ``RMX_DISABLE_COMPILE``/``MLX_DISABLE_COMPILE``)."""
    _rmx.set_compile_mode_str("enabled")


def set_compile_mode(mode):
    """One of ``"enabled"``, ``"no_fuse"``, ``"no_simplify"``, ``"disabled"``."""
    _rmx.set_compile_mode_str(str(mode))


# The tree walkers below are module-level functions with explicit accumulators: a nested
# recursive closure is a reference cycle (function -> cell -> function) that would keep
# the arrays it collects (a compiled call's inputs) alive until the garbage collector runs.


def _split(tree):
    """Array leaves, and a hashable description of the tree with the other leaves."""
    arrays = []
    return arrays, _split_walk(tree, arrays)


def _split_walk(t, arrays):
    if isinstance(t, _array):
        arrays.append(t)
        return ("A",)
    if isinstance(t, (list, tuple)):
        return (type(t).__name__, tuple(_split_walk(c, arrays) for c in t))
    if isinstance(t, dict):
        return ("dict", tuple((k, _split_walk(v, arrays)) for k, v in t.items()))
    if isinstance(t, (int, float, complex, str, bool, type(None))):
        return ("C", type(t).__name__, t)
    raise ValueError(f"[compile] Function arguments must be trees of arrays or constants, got {type(t)}.")


def _fill(tree, leaves):
    """``tree`` with its array leaves replaced, in order, by ``leaves``."""
    it = iter(leaves)
    return tree_map(lambda x: next(it) if isinstance(x, _array) else x, tree)


def _walk_state(t, fn):
    """Replaces each array ``a`` held by the (mutable) containers of ``t`` by ``fn(a)``:
    list and dict slots, and the key behind ``random.state``."""
    if isinstance(t, list):
        for i, c in enumerate(t):
            if isinstance(c, _array):
                t[i] = fn(c)
            else:
                _walk_state(c, fn)
    elif isinstance(t, dict):
        for k, c in t.items():
            if isinstance(c, _array):
                t[k] = fn(c)
            else:
                _walk_state(c, fn)
    elif isinstance(t, tuple):
        for c in t:
            if isinstance(c, _array):
                raise ValueError("[compile] State arrays must sit in lists or dicts to be updated.")
            _walk_state(c, fn)
    elif isinstance(t, _RandomState):
        t._set(fn(t[0]))


def _state_leaves(tree, out=None):
    """The arrays of a captured state tree, in the order ``_walk_state`` visits them."""
    out = [] if out is None else out
    if isinstance(tree, _array):
        out.append(tree)
    elif isinstance(tree, (list, tuple)):
        for c in tree:
            _state_leaves(c, out)
    elif isinstance(tree, dict):
        for c in tree.values():
            _state_leaves(c, out)
    elif isinstance(tree, _RandomState):
        out.append(tree[0])
    return out


def _has_random_state(tree):
    if isinstance(tree, _RandomState):
        return True
    if isinstance(tree, (list, tuple)):
        return any(_has_random_state(c) for c in tree)
    if isinstance(tree, dict):
        return any(_has_random_state(c) for c in tree.values())
    return False


def _set_state(tree, leaves):
    """Writes ``leaves``, in order, into the array slots of ``tree`` (MLX's ``tree_fill``)."""
    it = iter(leaves)
    _walk_state(tree, lambda _: next(it))


def _restore_state(tree, tracers, originals):
    """Puts the original arrays back where the trace's placeholders still sit (MLX's
    ``tree_replace``). Arrays the function added to the state while tracing (e.g. an
    optimizer initialising itself) stay; the outputs then overwrite them."""
    back = {id(t): o for t, o in zip(tracers, originals)}
    _walk_state(tree, lambda a: back.get(id(a), a))


def compile(fun=None, inputs=None, outputs=None, shapeless=False):
    """A compiled version of ``fun``. The first call per input signature traces ``fun``
    and simplifies its graph (CSE, elementwise fusion); later calls replay it.
    ``shapeless=True`` is accepted; rmx still retraces when shapes change."""
    if fun is None:
        return lambda f: compile(f, inputs, outputs, shapeless)
    cache = {}

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        if _rmx.compile_mode_str() == "disabled":
            return fun(*args, **kwargs)
        arrays, desc = _split((args, kwargs))
        state = _state_leaves(inputs) if inputs is not None else []
        leaves = arrays + state
        key = (desc, tuple((tuple(a.shape), str(a.dtype)) for a in leaves))
        entry = cache.get(key)
        if entry is None:
            holder = {}

            def flat_fun(xs):
                n = len(arrays)
                tracers = list(xs[n:])
                saved_key = _random_state[0]
                if inputs is not None:
                    _set_state(inputs, tracers)
                try:
                    a, kw = _fill((args, kwargs), xs[:n])
                    out = fun(*a, **kw)
                    out_arrays, out_desc = _split(out)
                    new_state = _state_leaves(outputs) if outputs is not None else []
                finally:
                    if inputs is not None:
                        _restore_state(inputs, tracers, state)
                        if _has_random_state(inputs):
                            # The key derived from the placeholder must not outlive the
                            # trace (MLX 0.32.4 leaves it; an `outputs` capture overwrites it).
                            _random_state._set(saved_key)
                holder["tree"] = tree_map(lambda x: None if isinstance(x, _array) else x, out)
                holder["n_out"] = len(out_arrays)
                return out_arrays + new_state

            graph = _rmx._compile_trace(flat_fun, [list(a.shape) for a in leaves], [a.dtype for a in leaves])
            entry = cache[key] = (graph, holder["tree"], holder["n_out"])
        graph, tree, n_out = entry
        res = graph(leaves)
        if outputs is not None:
            _set_state(outputs, res[n_out:])
        it = iter(res[:n_out])
        return tree_map(lambda x: next(it) if x is None else x, tree)

    return wrapper
