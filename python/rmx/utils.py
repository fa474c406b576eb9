"""Tree utilities, as ``mlx.utils``: nested lists, tuples and dicts of leaves."""

from collections import defaultdict


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


def tree_flatten(tree, prefix="", is_leaf=None):
    """Flattens ``tree`` into a list of ``(dotted_path, leaf)`` pairs."""
    flat = []
    if is_leaf is not None and is_leaf(tree):
        return [(prefix[1:], tree)]
    if isinstance(tree, (list, tuple)):
        for i, t in enumerate(tree):
            flat.extend(tree_flatten(t, f"{prefix}.{i}", is_leaf))
        return flat
    if isinstance(tree, dict):
        for k, t in tree.items():
            flat.extend(tree_flatten(t, f"{prefix}.{k}", is_leaf))
        return flat
    return [(prefix[1:], tree)]


def tree_unflatten(tree):
    """Rebuilds a tree from ``(dotted_path, leaf)`` pairs (integer keys become lists)."""
    if len(tree) == 1 and tree[0][0] == "":
        return tree[0][1]
    try:
        int(tree[0][0].split(".", maxsplit=1)[0])
        is_list = True
    except ValueError:
        is_list = False
    children = defaultdict(list)
    for key, value in tree:
        current, *rest = key.split(".", maxsplit=1)
        children[current].append((rest[0] if rest else "", value))
    if is_list:
        keys = sorted((int(k), k) for k in children)
        return [tree_unflatten(children[k]) for _, k in keys]
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
