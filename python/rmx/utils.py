"""Tree utilities, as ``mlx.utils``: nested lists, tuples and dicts of leaves."""

from collections import defaultdict
from itertools import zip_longest


def _is_tree_node(x):
    return isinstance(x, (list, tuple, dict))


def tree_map(fn, tree, *rest, is_leaf=None):
    """Applies ``fn`` to the leaves of ``tree`` (and the matching leaves of ``rest``)."""
    if is_leaf is not None and is_leaf(tree):
        return fn(tree, *rest)
    if isinstance(tree, (list, tuple)):
        items = [tree_map(fn, child, *(r[i] for r in rest), is_leaf=is_leaf) for i, child in enumerate(tree)]
        return type(tree)(items) if not hasattr(tree, "_fields") else type(tree)(*items)
    if isinstance(tree, dict):
        return {k: tree_map(fn, child, *(r[k] for r in rest), is_leaf=is_leaf) for k, child in tree.items()}
    return fn(tree, *rest)


def tree_map_with_path(fn, tree, *rest, is_leaf=None, path=None):
    """Like ``tree_map`` but ``fn`` also receives the dotted path of each leaf."""
    if is_leaf is not None and is_leaf(tree):
        return fn(path, tree, *rest)
    if isinstance(tree, (list, tuple)):
        prefix = f"{path}." if path else ""
        items = [
            tree_map_with_path(fn, child, *(r[i] for r in rest), is_leaf=is_leaf, path=f"{prefix}{i}")
            for i, child in enumerate(tree)
        ]
        return type(tree)(items) if not hasattr(tree, "_fields") else type(tree)(*items)
    if isinstance(tree, dict):
        prefix = f"{path}." if path else ""
        return {
            k: tree_map_with_path(fn, child, *(r[k] for r in rest), is_leaf=is_leaf, path=f"{prefix}{k}")
            for k, child in tree.items()
        }
    return fn(path, tree, *rest)


def tree_flatten(tree, prefix="", is_leaf=None, destination=None):
    """Flattens ``tree`` into ``(dotted_path, leaf)`` pairs: a list, or added to
    ``destination`` (a list is extended, a dict updated)."""
    if destination is None:
        destination = []
    if isinstance(destination, list):
        add = destination.extend
    elif isinstance(destination, dict):
        add = destination.update
    else:
        raise ValueError("Destination should be either a list or a dictionary or None")
    if is_leaf is not None and is_leaf(tree):
        add([(prefix[1:], tree)])
    elif isinstance(tree, (list, tuple)):
        for i, t in enumerate(tree):
            tree_flatten(t, f"{prefix}.{i}", is_leaf, destination)
    elif isinstance(tree, dict):
        for k, t in tree.items():
            tree_flatten(t, f"{prefix}.{k}", is_leaf, destination)
    else:
        add([(prefix[1:], tree)])
    return destination


def tree_unflatten(tree):
    """Rebuilds a tree from ``(dotted_path, leaf)`` pairs or a ``{dotted_path: leaf}``
    dict. Levels whose keys are all integers become lists; missing indices are ``{}``."""
    items = tree.items() if isinstance(tree, dict) else tree
    if len(items) == 1:
        key, value = next(iter(items))
        if key == "":
            return value
    children = defaultdict(list)
    for key, value in items:
        current, *rest = key.split(".", maxsplit=1)
        children[current].append((rest[0] if rest else "", value))
    try:
        keys = {int(k): k for k in children}
        is_list = len(keys) == len(children)  # "01" and "1" are two dict keys
    except ValueError:
        is_list = False
    if is_list:
        out = []
        for i, k in sorted(keys.items()):
            out.extend({} for _ in range(i - len(out)))
            out.append(tree_unflatten(children[k]))
        return out
    return {k: tree_unflatten(v) for k, v in children.items()}


def tree_reduce(fn, tree, initializer=None, is_leaf=None):
    """Reduces the leaves of ``tree`` with ``fn(accumulator, leaf)``."""
    if is_leaf is not None and is_leaf(tree):
        return tree if initializer is None else fn(initializer, tree)
    acc = initializer
    if isinstance(tree, (list, tuple)):
        for item in tree:
            acc = tree_reduce(fn, item, acc, is_leaf)
    elif isinstance(tree, dict):
        for item in tree.values():
            acc = tree_reduce(fn, item, acc, is_leaf)
    else:
        return tree if initializer is None else fn(initializer, tree)
    return acc


def tree_merge(tree_a, tree_b, merge_fn=None):
    """Merges two trees into one holding the leaves of both (a deep ``dict.update``);
    empty containers count as empty subtrees. Leaves at the same place are combined
    with ``merge_fn(a, b)`` (a ``ValueError`` without it)."""
    empty_a = isinstance(tree_a, (dict, list, tuple)) and len(tree_a) == 0
    empty_b = isinstance(tree_b, (dict, list, tuple)) and len(tree_b) == 0
    if empty_a and empty_b:
        if type(tree_a) is not type(tree_b):
            raise ValueError(f"Cannot merge {type(tree_a).__name__} with {type(tree_b).__name__}")
        return type(tree_a)()
    if empty_a:
        tree_a = None
    if empty_b:
        tree_b = None
    if tree_a is None and tree_b is not None:
        return tree_b
    if tree_a is not None and tree_b is None:
        return tree_a
    if isinstance(tree_a, (list, tuple)) and isinstance(tree_b, (list, tuple)):
        subtrees = [tree_merge(a, b, merge_fn) for a, b in zip_longest(tree_a, tree_b)]
        return type(tree_a)(*subtrees) if hasattr(tree_a, "_fields") else type(tree_a)(subtrees)
    if isinstance(tree_a, dict) and isinstance(tree_b, dict):
        return {k: tree_merge(tree_a.get(k, None), tree_b.get(k, None), merge_fn)
                for k in set(tree_a.keys()) | set(tree_b.keys())}
    if merge_fn is None:
        raise ValueError("Trees contain elements at the same locations but no merge "
                         "function was provided")
    return merge_fn(tree_a, tree_b)
