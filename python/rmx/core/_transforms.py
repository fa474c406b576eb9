"""grad, value_and_grad, vjp, jvp over trees of arrays. The transforms themselves run in
Rust on flat lists of arrays; this module only flattens and rebuilds Python trees."""

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
    if argnums is None:
        return ((0,), True) if not argnames else ((), False)
    if isinstance(argnums, int):
        return (argnums,), True
    return tuple(argnums), False


def value_and_grad(fun, argnums=None, argnames=()):
    """A function returning ``(fun(*args), grad)``; the first output of ``fun`` must be a scalar."""
    if isinstance(argnames, str):
        argnames = (argnames,)
    nums, single = _resolve_argnums(argnums, argnames)

    def wrapper(*args, **kwargs):
        for k in nums:
            if k >= len(args) or k < -len(args):
                raise ValueError(
                    f"[grad] Invalid argument number {k} for function with {len(args)} positional arguments."
                )
        norm = [k % len(args) for k in nums]
        for name in argnames:
            if name not in kwargs:
                raise ValueError(f"[grad] Can't compute the gradient of argument '{name}': it was not given.")
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
        pos, named = trees_g[:len(norm)], dict(zip(argnames, trees_g[len(norm):]))
        if argnames:
            g = (pos[0] if single else tuple(pos), named)
        else:
            g = pos[0] if single else tuple(pos)
        return value, g

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
