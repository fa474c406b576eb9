"""einsum and einsum_path against MLX 0.32.4 and NumPy float64 (np.einsum): values, shapes,
dtypes, the contraction path and its summary text, error types and messages, empty arrays,
views, broadcasting, gradients (MLX's vjp/jvp and finite differences), vmap (a loop)."""

import random

import numpy as np
import pytest

import mlx.core as MX
from diff import A, check, check_meta, check_np, check_raises, get_rmx, rand, to_numpy

# (subscripts, shapes): every feature einsum has
CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij", [(3, 4)]),
    ("ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ii", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("iii->i", [(3, 3, 3)]),
    ("ijij->ij", [(2, 3, 2, 3)]),
    ("iji->j", [(3, 4, 3)]),
    ("i,i", [(5,), (5,)]),
    ("i,i->i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij,i->j", [(3, 4), (3,)]),
    ("ij,kl->ijkl", [(2, 3), (4, 2)]),
    ("ij,kl->", [(2, 3), (4, 2)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ji->", [(3, 4), (4, 3)]),
    ("ii,jj->ij", [(3, 3), (2, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,jk,kl,lm->im", [(5, 3), (3, 6), (6, 2), (2, 7)]),
    ("ea,fb,abcd,gc,hd->efgh", [(2, 3), (2, 2), (3, 2, 3, 2), (3, 3), (2, 2)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("i,j,k->ijk", [(2,), (3,), (4,)]),
    ("i,j,k->", [(2,), (3,), (4,)]),
    ("ab,ab,ab->ab", [(2, 3), (2, 3), (2, 3)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...,i...->...", [(3, 2, 4), (3, 2, 4)]),
    ("...,...->...", [(2, 3), (3,)]),
    ("...i,...i->...", [(2, 3), (4, 1, 3)]),
    ("ij...->...", [(2, 3, 4, 5)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("a...b->b...a", [(2, 3, 4, 5)]),
    ("ij->j...", [(2, 3)]),
    ("...", [(2, 3)]),
    ("i,i->", [(3,), (1,)]),
    ("ij,jk->ik", [(3, 4), (1, 5)]),
    ("ij,jk->ik", [(3, 1), (4, 5)]),
    ("bij,bjk->bik", [(1, 3, 4), (5, 4, 2)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("ij, jk -> ik", [(3, 4), (4, 5)]),
    ("", [()]),
    ("->", [()]),
    (",", [(), ()]),
    (",i->i", [(), (3,)]),
    ("i,->i", [(3,), ()]),
    ("ab,bc,cd,de,ef->af", [(2, 3), (3, 4), (4, 3), (3, 2), (2, 5)]),
    ("abcd,dcba->", [(2, 3, 4, 5), (5, 4, 3, 2)]),
    ("abc,bca,cab->abc", [(2, 3, 4), (3, 4, 2), (4, 2, 3)]),
]


def _ops(shapes, dtype="float32", seed=0):
    return [A(rand(s, dtype, seed=seed + i)) for i, s in enumerate(shapes)]


@pytest.mark.parametrize("subs,shapes", CASES, ids=[c[0] or "empty" for c in CASES])
def test_einsum_matches_mlx_and_numpy(subs, shapes):
    np_subs = subs.replace(" ", "")
    check(lambda m, *xs: m.einsum(subs, *xs), *_ops(shapes), rtol=1e-4, atol=1e-4,
          np_fn=lambda *xs: np.einsum(np_subs, *xs))


@pytest.mark.parametrize("subs,shapes", CASES, ids=[c[0] or "empty" for c in CASES])
def test_einsum_path_matches_mlx(subs, shapes):
    check(lambda m, *xs: m.einsum_path(subs, *xs), *_ops(shapes))


def test_einsum_path_returns_list_of_tuples_and_text():
    mx = get_rmx()
    path, text = mx.einsum_path("ij,jk,kl->il", mx.ones((2, 3)), mx.ones((3, 4)), mx.ones((4, 5)))
    assert path == [(1, 2), (0, 1)]
    ref = MX.einsum_path("ij,jk,kl->il", MX.ones((2, 3)), MX.ones((3, 4)), MX.ones((4, 5)))
    assert (path, text) == ref


def _random_expr(g, letters="abcdefgh", max_ops=7):
    n = g.randint(3, max_ops)
    terms = ["".join(g.sample(letters, g.randint(0, 4))) for _ in range(n)]
    used = sorted(set("".join(terms)))
    out = "".join(sorted(g.sample(used, g.randint(0, min(3, len(used))))))
    sizes = {c: g.choice([1, 2, 3, 5, 8]) for c in letters}
    return ",".join(terms) + "->" + out, [tuple(sizes[c] for c in t) for t in terms]


@pytest.mark.parametrize("seed", range(4))
def test_einsum_path_random_expressions_match_mlx(seed):
    # the greedy order (ties, outer products, memory limit) and the FLOP counts
    mx = get_rmx()
    g = random.Random(seed)
    for _ in range(150):
        subs, shapes = _random_expr(g)
        got = mx.einsum_path(subs, *[mx.ones(s) for s in shapes])
        exp = MX.einsum_path(subs, *[MX.ones(s) for s in shapes])
        assert got == exp, (subs, shapes)


@pytest.mark.parametrize("seed", range(3))
def test_einsum_random_expressions_match_numpy(seed):
    g = random.Random(100 + seed)
    for i in range(25):
        subs, shapes = _random_expr(g, letters="abcdef", max_ops=5)
        check(lambda m, *xs: m.einsum(subs, *xs), *_ops(shapes, seed=i), rtol=1e-4, atol=1e-4,
              np_fn=lambda *xs: np.einsum(subs, *xs))


def test_einsum_path_overflowing_flop_count_matches_mlx():
    # MLX counts in size_t: the naive count wraps; rmx prints the same number
    subs = "ab,bc,cd,de,ef,fg,gh,hi,ij,jk,kl->al"
    check(lambda m: m.einsum_path(subs, *[m.ones((100, 100))] * 11))


# ---------------------------------------------------------------- dtypes

DTYPES = ["bool_", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64", "complex64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("subs,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]),    # matmul: floating types only (MLX's matmul error)
    ("ij,ij->i", [(3, 4), (3, 4)]),     # batched matmul too
    ("ij,ij->ij", [(3, 4), (3, 4)]),    # elementwise: every dtype
    ("ij->", [(3, 4)]),                 # a sum
    ("ij->ji", [(3, 4)]),
    ("ii->i", [(3, 3)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,k->", [(2, 3), (4,)]),
])
def test_einsum_dtypes_match_mlx(dtype, subs, shapes):
    tol = {"float16": 2e-2, "bfloat16": 5e-2}.get(dtype, 1e-4)
    check(lambda m, *xs: m.einsum(subs, *xs, stream=m.cpu), *_ops(shapes, dtype),
          rtol=tol, atol=tol)


def test_einsum_mixed_dtypes_promote():
    check(lambda m, a, b: m.einsum("ij,jk->ik", a, b), A(rand((3, 4), "int32")),
          A(rand((4, 5), "float16")), rtol=2e-2, atol=2e-2)
    check(lambda m, a, b: m.einsum("ij,ij->ij", a, b), A(rand((3, 4), "int8")),
          A(rand((3, 4), "uint8")))


def test_einsum_special_values():
    a = A(rand((4, 5), special=True, seed=3))
    b = A(rand((5, 3), seed=4))
    check(lambda m, a, b: m.einsum("ij,ij->ij", a, a), a, b)
    check(lambda m, a: m.einsum("ij->j", a), a, np_fn=lambda a: np.einsum("ij->j", a))


# ---------------------------------------------------------------- empty, views

@pytest.mark.parametrize("subs,shapes", [
    ("ij,jk->ik", [(0, 4), (4, 5)]),
    ("ij,jk->ik", [(3, 0), (0, 5)]),
    ("ij->", [(0, 3)]),
    ("ij->j", [(0, 3)]),
    ("bij,bjk->bik", [(0, 3, 4), (0, 4, 5)]),
    ("i,i->", [(0,), (0,)]),
    ("ii->i", [(0, 0)]),
    ("ij,jk,kl->il", [(2, 0), (0, 4), (4, 5)]),
])
def test_einsum_empty(subs, shapes):
    # shapes/dtypes against MLX without evaluating it (MLX 0.32.4 reductions over empty axes
    # can spin forever), values against NumPy
    check_meta(lambda m, *xs: m.einsum(subs, *xs), *_ops(shapes))
    check_np(lambda m, *xs: m.einsum(subs, *xs), lambda *xs: np.einsum(subs, *xs),
             *_ops(shapes))


def test_einsum_views():
    a = A(rand((6, 8), seed=1), view=lambda x: x.T)
    b = A(rand((8, 6), seed=2), view=lambda x: x[::2, ::-1])
    c = A(rand((4, 5, 6), seed=3), view=lambda x: x[:, 1:4, ::2].transpose(2, 0, 1))
    check(lambda m, a, b: m.einsum("ij,jk->ik", a, b), a, b, rtol=1e-4, atol=1e-4,
          np_fn=lambda a, b: np.einsum("ij,jk->ik", a, b))
    check(lambda m, c: m.einsum("ijk->kj", c), c, np_fn=lambda c: np.einsum("ijk->kj", c))
    d = A(rand((5, 5), seed=4), view=lambda x: x[::-1])
    check(lambda m, d: m.einsum("ii->i", d), d, np_fn=lambda d: np.einsum("ii->i", d))
    e = A(rand((3,), seed=5), view=_broadcast_view)
    check(lambda m, e: m.einsum("ij,ij->i", e, e), e, rtol=1e-4, atol=1e-4,
          np_fn=lambda e: np.einsum("ij,ij->i", e, e))


def _broadcast_view(x):
    # a stride-0 view of x in its own library
    m = MX if isinstance(x, MX.array) else get_rmx()
    return m.broadcast_to(x, (4, 3))


# ---------------------------------------------------------------- errors

ERRORS = [
    ("ij,jk->ik", [(2, 3)]),                 # too few operands
    ("ij,jk->ik", [(2, 3), (3, 4), (4, 5)]),  # too many
    ("", []),                                # no operand
    ("ij->ii", [(2, 3)]),                    # repeat in output
    ("i1->i", [(2, 3)]),                     # not a letter
    ("i.->i", [(2, 3)]),
    ("ij->ji\t", [(2, 3)]),                  # only spaces are dropped
    ("i...j...->i", [(2, 3)]),               # two ellipses
    ("ij,jk->ik", [(2, 3), (4, 4)]),          # mismatched sizes
    ("ii->i", [(2, 3)]),                     # diagonal of a non-square pair
    ("ijk->i", [(2, 3)]),                    # too many subscripts
    ("i->i", [(2, 3)]),                      # too few
    ("...ijk->i", [(2, 3)]),                 # ellipsis without room
    ("ab,bc->ac", [(), (3, 3)]),
    ("...i,...i->...", [(2, 3), (4, 5, 3)]),  # ellipsis dims do not broadcast
    ("ij->ik", [(2, 3)]),                    # output letter not in the inputs
    ("ij,jk->il", [(2, 3), (3, 4)]),
    ("ij,jk->l", [(2, 3), (3, 4)]),
    ("i->I", [(2,)]),
    ("ij->ij->j", [(2, 3)]),
]


@pytest.mark.parametrize("subs,shapes", ERRORS, ids=[e[0] or "empty" for e in ERRORS])
def test_einsum_errors_match_mlx(subs, shapes):
    mx = get_rmx()
    for name in ("einsum", "einsum_path"):
        got = exp = None
        try:
            getattr(mx, name)(subs, *[mx.ones(s) for s in shapes])
        except Exception as e:  # noqa: BLE001
            got = e
        try:
            getattr(MX, name)(subs, *[MX.ones(s) for s in shapes])
        except Exception as e:  # noqa: BLE001
            exp = e
        assert (got is None) == (exp is None), (name, got, exp)
        if exp is not None:
            assert type(got) is type(exp), (name, got, exp)
            assert str(got) == str(exp), name


def test_einsum_integer_contraction_raises_like_mlx():
    # contractions go through matmul, which takes floating types only
    check_raises(lambda m, a, b: m.einsum("ij,jk->ik", a, b), A(rand((2, 3), "int32")),
                 A(rand((3, 4), "int32")), err=ValueError)
    check_raises(lambda m, a, b: m.einsum("i,i->", a, b), A(rand((3,), "int32")),
                 A(rand((3,), "int32")), err=ValueError)


def test_einsum_operands_must_be_arrays():
    mx = get_rmx()
    for m in (mx, MX):
        with pytest.raises(RuntimeError):
            m.einsum("i,i", [1.0, 2.0], [3.0, 4.0])
        with pytest.raises(RuntimeError):
            m.einsum_path("i,i", m.ones(2), 3.0)
        with pytest.raises(TypeError):
            m.einsum(1, m.ones(2))


# ---------------------------------------------------------------- transforms

GRAD_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (1, 4, 5)]),
    ("ii->i", [(4, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("...i,...i->...", [(2, 3), (4, 1, 3)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ijij->ij", [(2, 3, 2, 3)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
]


@pytest.mark.parametrize("subs,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_einsum_vjp_jvp_match_mlx(subs, shapes):
    ops = _ops(shapes, seed=7)

    def out_shape():
        return MX.einsum(subs, *[o.make(MX) for o in ops]).shape
    ct = A(rand(out_shape(), seed=50))
    tans = _ops(shapes, seed=60)
    n = len(shapes)

    def vjp(m, *xs):
        return m.vjp(lambda *p: m.einsum(subs, *p), list(xs[:n]), [xs[n]])[1]
    check(vjp, *ops, ct, rtol=1e-4, atol=1e-4)

    def jvp(m, *xs):
        return m.jvp(lambda *p: m.einsum(subs, *p), list(xs[:n]), list(xs[n:]))[1]
    check(jvp, *ops, *tans, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("subs,shapes", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_einsum_grad_matches_finite_differences(subs, shapes):
    mx = get_rmx()
    xs = [rand(s, "float64", seed=20 + i) for i, s in enumerate(shapes)]
    w = rand(np.einsum(subs, *xs).shape, "float64", seed=99)
    f64 = lambda x: mx.array(x, dtype=mx.float64)  # noqa: E731
    grads = mx.grad(lambda *p: (mx.einsum(subs, *p) * f64(w)).sum(),
                    argnums=tuple(range(len(xs))))(*[f64(x) for x in xs])
    if len(xs) == 1:
        grads = (grads,) if not isinstance(grads, (tuple, list)) else grads
    f = lambda *p: (np.einsum(subs, *p) * w).sum()  # noqa: E731
    h = 1e-6
    for i, g in enumerate(grads):
        fd = np.zeros_like(xs[i])
        for idx in np.ndindex(xs[i].shape):
            hi = [x.copy() for x in xs]
            lo = [x.copy() for x in xs]
            hi[i][idx] += h
            lo[i][idx] -= h
            fd[idx] = (f(*hi) - f(*lo)) / (2 * h)
        np.testing.assert_allclose(to_numpy(g), fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("subs,shapes,axes", [
    ("ij,jk->ik", [(3, 4), (4, 5)], (0, None)),
    ("ij,jk->ik", [(3, 4), (4, 5)], (None, 1)),
    ("ij,jk->ik", [(3, 4), (4, 5)], (1, 0)),
    ("ii->i", [(4, 4)], (2,)),
    ("i,i->", [(4,), (4,)], (0, 0)),
    ("...i,...i->...", [(2, 3), (3,)], (0, None)),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], (0, None, 1)),
])
def test_einsum_vmap_matches_loop(subs, shapes, axes):
    mx = get_rmx()
    nb = 3
    xs = []
    for i, (s, ax) in enumerate(zip(shapes, axes)):
        if ax is None:
            xs.append(rand(s, seed=i))
        else:
            bs = list(s)
            bs.insert(ax, nb)
            xs.append(rand(tuple(bs), seed=i))
    got = mx.vmap(lambda *p: mx.einsum(subs, *p), in_axes=axes)(*[mx.array(x) for x in xs])
    loop = []
    for b in range(nb):
        parts = [x if ax is None else np.take(x, b, axis=ax) for x, ax in zip(xs, axes)]
        loop.append(to_numpy(mx.einsum(subs, *[mx.array(p) for p in parts])))
    np.testing.assert_allclose(to_numpy(got), np.stack(loop), rtol=1e-5, atol=1e-5)
    exp = MX.vmap(lambda *p: MX.einsum(subs, *p), in_axes=axes)(*[MX.array(x) for x in xs])
    np.testing.assert_allclose(to_numpy(got), np.array(exp), rtol=1e-4, atol=1e-4)
