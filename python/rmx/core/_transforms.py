"""grad, value_and_grad, vjp, jvp and vmap over trees of arrays. The transforms themselves run in
Rust on flat lists of arrays; this module only flattens and rebuilds Python trees."""

import functools

from rmx import _rmx
from rmx.utils import tree_flatten, tree_map

_array = _rmx.array


def _leaves(tree, what):
    flat = tree_flatten(tree)
    for path, leaf in flat:
        if not isinstance(leaf, _array):
            raise ValueError(
                f"[{what}] Input tree must contain only arrays, got {type(leaf).__name__} at '{path}'."
            )
    return flat


def _rebuild(structure, leaves):
    """``structure`` (a tree) with its leaves replaced, in order, by ``leaves``."""
    it = iter(leaves)
    return tree_map(lambda _: next(it), structure)


def _resolve_argnums(argnums, argnames):
    """MLX's argnums/argnames validation, done when the transform is created; like MLX,
    the argument numbers are sorted (gradients come back in argument order)."""
    if argnums is None:
        nums = [] if argnames else [0]
    elif isinstance(argnums, int):
        nums = [argnums]
    else:
        nums = sorted(argnums)
    if not nums and not argnames:
        raise ValueError("[grad] Gradient wrt no argument requested")
    seen = set()
    for k in nums:
        if k < 0:
            raise ValueError(f"[grad] Can't compute the gradient of negative argument index {k}")
        if k in seen:
            raise ValueError(f"[grad] Duplicate argument index {k} is not allowed.")
        seen.add(k)
    return tuple(nums)


def _positional_grads(grads):
    """As MLX: one argnum gives the bare gradient, several a tuple, none ``None``."""
    if len(grads) == 1:
        return grads[0]
    return tuple(grads) if grads else None


def value_and_grad(fun, argnums=None, argnames=()):
    """A function returning ``(fun(*args), grad)``; the first output of ``fun`` must be a scalar."""
    if isinstance(argnames, str):
        argnames = (argnames,)
    argnames = tuple(argnames)
    nums = _resolve_argnums(argnums, argnames)

    def wrapper(*args, **kwargs):
        for k in nums:
            if k >= len(args):
                raise ValueError(
                    f"[grad] Can't compute the gradient of argument index {k} because the function "
                    f"is called with only {len(args)} positional arguments."
                )
        norm = list(nums)
        for name in argnames:
            if name not in kwargs:
                raise ValueError(
                    f"[grad] Can't compute the gradient of keyword argument '{name}' because the "
                    f"function is called with the following keyword arguments {{{''.join(k + ',' for k in kwargs)}}}"
                )
        trees = [args[k] for k in norm] + [kwargs[n] for n in argnames]
        flats = [_leaves(t, "grad") for t in trees]
        counts = [len(f) for f in flats]
        leaves = [leaf for f in flats for _, leaf in f]
        captured = {}

        def flat_fun(xs):
            new_args, new_kwargs, i = list(args), dict(kwargs), 0
            for j, f in enumerate(flats):
                part = _rebuild(trees[j], xs[i:i + counts[j]])
                i += counts[j]
                if j < len(norm):
                    new_args[norm[j]] = part
                else:
                    new_kwargs[argnames[j - len(norm)]] = part
            out = fun(*new_args, **new_kwargs)
            out_flat = tree_flatten(out)
            for path, leaf in out_flat:
                if not isinstance(leaf, _array):
                    raise ValueError("[grad] The function must return an array or a tree of arrays.")
            captured["tree"] = out
            return [leaf for _, leaf in out_flat]

        outs, grads = _rmx._value_and_grad_flat(flat_fun, leaves, list(range(len(leaves))))
        value = _rebuild(captured["tree"], outs)
        trees_g, i = [], 0
        for j in range(len(flats)):
            trees_g.append(_rebuild(trees[j], grads[i:i + counts[j]]))
            i += counts[j]
        pos = _positional_grads(trees_g[:len(norm)])
        if argnames:
            return value, (pos, dict(zip(argnames, trees_g[len(norm):])))
        return value, pos

    return wrapper


def grad(fun, argnums=None, argnames=()):
    """A function returning the gradient of ``fun``'s scalar output."""
    vg = value_and_grad(fun, argnums, argnames)

    def wrapper(*args, **kwargs):
        return vg(*args, **kwargs)[1]

    return wrapper


def vjp(fun, primals, cotangents):
    """``(outputs, vjps)`` of ``fun`` at ``primals`` (lists of arrays) with ``cotangents``."""
    _leaves(list(primals), "vjp")
    _leaves(list(cotangents), "vjp")

    def flat_fun(xs):
        out = fun(*xs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    return _rmx._vjp_flat(flat_fun, list(primals), list(cotangents))


def jvp(fun, primals, tangents):
    """``(outputs, jvps)`` of ``fun`` at ``primals`` (lists of arrays) with ``tangents``."""
    _leaves(list(primals), "jvp")
    _leaves(list(tangents), "jvp")

    def flat_fun(xs):
        out = fun(*xs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    return _rmx._jvp_flat(flat_fun, list(primals), list(tangents))


def _check_axis(a):
    if a is not None and (not isinstance(a, int) or isinstance(a, bool)):
        raise ValueError("[vmap] axis must be int or None.")
    return a


def _prefix_leaves(axes, tree):
    """One axis per leaf of ``tree``: ``axes`` is a prefix of ``tree`` (an int or None
    applies to a whole subtree), as in JAX; MLX's own prefix matching rejects nesting."""
    if axes is None or isinstance(axes, int):
        _check_axis(axes)
        return [axes] * len(tree_flatten(tree))
    mismatch = ValueError("[tree_map] Additional input tree is not a valid prefix of the first tree.")
    if isinstance(axes, (list, tuple)):
        if not isinstance(tree, (list, tuple)) or len(axes) != len(tree):
            raise mismatch
        return [a for ax, t in zip(axes, tree) for a in _prefix_leaves(ax, t)]
    if isinstance(axes, dict):
        if not isinstance(tree, dict) or set(axes) != set(tree):
            raise mismatch
        return [a for k in tree for a in _prefix_leaves(axes[k], tree[k])]
    raise ValueError("[vmap] axis must be int or None.")


def _array_leaves(tree):
    flat = tree_flatten(tree)
    if not all(isinstance(leaf, _array) for _, leaf in flat):
        raise ValueError("[tree_flatten] The argument should contain only arrays")
    return [leaf for _, leaf in flat]


def vmap(fun, in_axes=0, out_axes=0):
    """``fun`` vectorized over the ``in_axes`` of its arguments, its outputs stacked
    along ``out_axes``. Axes are ints, None, or trees prefixing the arguments/outputs."""

    def wrapper(*args, **kwargs):
        if kwargs:
            raise TypeError("[vmap] Keyword arguments are not supported.")
        args = list(args)
        leaves = _array_leaves(args)
        axes = _prefix_leaves(in_axes, args)
        captured = {}

        def flat_fun(xs):
            out = fun(*_rebuild(args, xs))
            captured["tree"] = out
            return _array_leaves(out)

        outs, batch_axes, size = _rmx._vmap_trace(flat_fun, leaves, axes)
        tree = captured["tree"]
        oaxes = _prefix_leaves(out_axes, tree)
        return _rebuild(tree, [_rmx._vmap_finish(o, b, d, size) for o, b, d in zip(outs, batch_axes, oaxes)])

    return wrapper


def _unwrap_single(args):
    """MLX passes a lone positional argument to custom rules as itself, else a tuple."""
    return args[0] if len(args) == 1 else tuple(args)


class custom_function:
    """A function with user-defined ``vjp``, ``jvp`` and ``vmap`` rules (decorators).
    Undefined rules fall back to transforming the function itself; the default vjp
    recomputes the function from its inputs."""

    def __init__(self, f):
        self._fun = f
        self._vjp = self._jvp = self._vmap = None
        functools.update_wrapper(self, f)

    def vjp(self, f):
        self._vjp = f
        return self

    def jvp(self, f):
        self._jvp = f
        return self

    def vmap(self, f):
        self._vmap = f
        return self

    def __call__(self, *args, **kwargs):
        leaves = _array_leaves(list(args))
        # The rules outlive this call inside the graph: keep only the trees' structure,
        # never the arrays (a checkpoint's recomputed outputs would otherwise stay alive).
        args = tree_map(lambda _: None, list(args))
        captured = {}

        def primal_tree(xs):
            return _unwrap_single(_rebuild(args, xs))

        def fun_flat(xs):
            out = self._fun(*_rebuild(args, xs), **kwargs)
            flat = _array_leaves(out)
            captured["tree"] = tree_map(lambda _: None, out)
            return flat

        def cotangents(primals, vals):
            if len(vals) != len(primals):
                raise ValueError(
                    f"[custom_function] Expected {len(primals)} cotangents or tangents, got {len(vals)}.")
            return [_rmx.zeros_like(p) if v is None else v for p, v in zip(primals, vals)]

        def vjp_flat(primals, cts, outs):
            tree = captured["tree"]
            r = self._vjp(primal_tree(primals), _rebuild(tree, cts), _rebuild(tree, outs))
            return cotangents(primals, [leaf for _, leaf in tree_flatten(r, is_leaf=lambda x: x is None)])

        def jvp_flat(primals, tangents, argnums):
            full = [None] * len(primals)
            for k, t in zip(argnums, tangents):
                full[k] = t
            r = self._jvp(primal_tree(primals), _unwrap_single(_rebuild(args, full)))
            return _array_leaves(r)

        def vmap_flat(inputs, axes):
            r, out_axes = self._vmap(primal_tree(inputs), _unwrap_single(_rebuild(args, axes)))
            return _array_leaves(r), _prefix_leaves(out_axes, r)

        outs = _rmx._custom_call(fun_flat, vjp_flat if self._vjp else None,
                                 jvp_flat if self._jvp else None,
                                 vmap_flat if self._vmap else None, leaves)
        return _rebuild(captured["tree"], outs)


class _Slot:
    """Marks where an array sat in a checkpointed call's arguments."""


_SLOT = _Slot()


def checkpoint(fun):
    """``fun`` with gradient checkpointing: its backward pass recomputes ``fun`` from
    the inputs instead of keeping the intermediate activations. As in MLX, the array
    leaves of the positional and keyword arguments are the inputs; other leaves (``None``,
    numbers, strings) are passed through unchanged as constants."""

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        full = (list(args), kwargs)
        arrays = [leaf for _, leaf in tree_flatten(full) if isinstance(leaf, _array)]
        # Only the constants are kept (the rules outlive this call inside the graph).
        structure = tree_map(lambda x: _SLOT if isinstance(x, _array) else x, full)

        def inner(*xs):
            it = iter(xs)
            a, kw = tree_map(lambda x: next(it) if x is _SLOT else x, structure)
            return fun(*a, **kw)

        return custom_function(inner)(*arrays)

    return wrapper
