"""rmx.utils against mlx.utils 0.32.4 on the same Python trees: the same public
functions, the same results (container types, dict key order, values) and errors."""

from collections import namedtuple

import mlx.utils as mutils
import numpy as np
import pytest

import rmx.utils as rutils
from diff import REF, get_rmx

Point = namedtuple("Point", ["x", "y"])


def same_tree(got, exp, ordered=True):
    """Equal values with equal container types (and dict key order when ``ordered``)."""
    assert type(got) is type(exp), (got, exp)
    if isinstance(exp, dict):
        if ordered:
            assert list(got) == list(exp), (list(got), list(exp))
        assert set(got) == set(exp), (got, exp)
        for k in exp:
            same_tree(got[k], exp[k], ordered)
    elif isinstance(exp, (list, tuple)):
        assert len(got) == len(exp), (got, exp)
        for g, e in zip(got, exp):
            same_tree(g, e, ordered)
    else:
        assert got == exp, (got, exp)


def both(fn, ordered=True):
    """``fn(utils_module)`` for both libraries: same result or the same error."""
    try:
        exp = fn(mutils)
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        with pytest.raises(type(e)) as info:
            fn(rutils)
        assert str(info.value) == str(e)
        return
    same_tree(fn(rutils), exp, ordered)


def test_public_functions_match():
    public = {n for n in dir(mutils) if n.startswith("tree_")}
    assert public <= set(dir(rutils)), public - set(dir(rutils))


TREES = {
    "nested": {"a": [1, {"b": 2, "c": (3, 4)}], "d": None, "e": "s"},
    "list": [[[0]], [1, 2], []],
    "namedtuple": {"p": Point(1, [2, 3])},
    "leaf": 7,
    "empty_dict": {},
}


@pytest.mark.parametrize("name", sorted(TREES))
@pytest.mark.parametrize("destination", [None, "list", "dict"])
def test_tree_flatten(name, destination):
    def run(u):
        dest = {"list": [("pre", 0)], "dict": {"pre": 0}}.get(destination)
        return u.tree_flatten(TREES[name], destination=dest)
    both(run)
    both(lambda u: u.tree_flatten(TREES[name], prefix=".hello"))
    both(lambda u: u.tree_flatten(TREES[name], is_leaf=lambda x: isinstance(x, tuple)))


def test_tree_flatten_destination_is_filled_in_place_and_errors():
    d = {}
    assert rutils.tree_flatten({"a": {"b": 1}}, destination=d) is d and d == {"a.b": 1}
    both(lambda u: u.tree_flatten([1], destination=(1,)))
    both(lambda u: u.tree_flatten([1], destination="x"))


UNFLAT = {
    "gap": [("a.1.b", 1)],
    "gaps": [("x.3", 1), ("x.0", 2), ("y", 3)],
    "unsorted": [("2", "c"), ("0", "a"), ("1", "b")],
    "leading_zero": [("01", 1), ("1", 2)],
    "mixed": [("0", 1), ("a", 2)],
    "deep": [("a.b.0.c", 1), ("a.b.0.d", 2), ("a.b.2", 3), ("a.e", 4)],
    "root": [("", 5)],
    "empty": [],
}


@pytest.mark.parametrize("name", sorted(UNFLAT))
def test_tree_unflatten(name):
    both(lambda u: u.tree_unflatten(list(UNFLAT[name])))
    both(lambda u: u.tree_unflatten(dict(UNFLAT[name])))


def test_tree_unflatten_round_trips_flatten():
    for tree in (TREES["nested"], TREES["list"]):
        both(lambda u: u.tree_unflatten(u.tree_flatten(tree)))


MERGES = {
    "disjoint_dicts": ({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}, "e": 4}),
    "lists": ([1, {}, [2]], [{}, 5, [None, 6]]),
    "longer_b": ([1], [None, 2, 3]),
    "empty_both_dict": ({}, {}),
    "empty_mismatch": ({}, []),
    "empty_and_leaf": ({}, 3),
    "none_a": (None, {"a": 1}),
    "conflict": ({"a": 1}, {"a": 2}),
    "namedtuple": (Point(1, None), Point(None, 2)),
    "tuple": ((1, None), (None, [3])),
}


@pytest.mark.parametrize("name", sorted(MERGES))
def test_tree_merge(name):
    a, b = MERGES[name]
    both(lambda u: u.tree_merge(a, b), ordered=False)


def test_tree_merge_with_merge_fn():
    both(lambda u: u.tree_merge({"a": 1, "b": [2]}, {"a": 10, "b": [20, 3]},
                                merge_fn=lambda x, y: x + y), ordered=False)


def test_tree_map_and_reduce():
    tree = {"a": [1, 2, (3, Point(4, 5))], "b": {"c": 6}}
    both(lambda u: u.tree_map(lambda x: x * 2, tree))
    both(lambda u: u.tree_map(lambda x, y: x + y, tree, tree))
    both(lambda u: u.tree_map_with_path(lambda p, x: f"{p}={x}", tree))
    both(lambda u: u.tree_map_with_path(lambda p, x: p, tree, path="root"))
    both(lambda u: u.tree_reduce(lambda acc, x: acc + x, tree, 0))
    both(lambda u: u.tree_reduce(lambda acc, x: acc + x, tree))
    both(lambda u: u.tree_reduce(lambda acc, x: acc * x, 5, 2))
    both(lambda u: u.tree_reduce(lambda acc, x: acc + [x], tree, [],
                                 is_leaf=lambda x: isinstance(x, tuple)))


def test_trees_of_arrays():
    """The same on trees whose leaves are the libraries' own arrays."""
    rx = get_rmx()
    pairs = [("layers.2.w", np.ones((2,), np.float32)), ("layers.0.b", np.zeros((1,), np.float32))]

    def run(u, m):
        t = u.tree_unflatten([(k, m.array(v)) for k, v in pairs])
        return [(k, tuple(v.shape)) for k, v in u.tree_flatten(t)], type(t["layers"][1])
    assert run(rutils, rx) == run(mutils, REF)
