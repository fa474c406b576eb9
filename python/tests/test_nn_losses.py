"""rmx.nn.losses versus mlx.nn.losses: every loss, every reduction, the
options, gradients w.r.t. the inputs, and the argument errors."""

import numpy as np
import pytest

import mlx.core as REF
import mlx.nn as mnn

from nnutil import rnn, rx, same
from nnutil import no_mlx_compile  # noqa: F401

pytestmark = pytest.mark.usefixtures("no_mlx_compile")

REDUCTIONS = ["none", "mean", "sum"]
G = np.random.default_rng(0)


def U(*shape, low=-2.0, high=2.0, seed=None):
    g = np.random.default_rng(seed) if seed is not None else G
    return g.uniform(low, high, shape).astype(np.float32)


def log_probs(*shape, axis=-1):
    x = U(*shape)
    x = x - np.log(np.exp(x).sum(axis=axis, keepdims=True))
    return x.astype(np.float32)


def probs(*shape, axis=-1):
    return np.exp(log_probs(*shape, axis=axis)).astype(np.float32)


def run(name, arrays, kwargs, grad_argnums=(0,), rtol=2e-5, atol=1e-6):
    """Forward value and gradient (of the sum of the loss times a fixed
    projection) w.r.t. ``grad_argnums``, compared between the libraries."""
    def call(lib, nn, arrs):
        args = [lib.array(a) if isinstance(a, np.ndarray) else a for a in arrs]
        return getattr(nn.losses, name)(*args, **kwargs), args

    ym, am = call(REF, mnn, arrays)
    yr, ar = call(rx(), rnn(), arrays)
    same(yr, ym, rtol, atol, f"{name} value")
    if not grad_argnums:
        return
    proj = np.random.default_rng(9).uniform(0.5, 1.5, tuple(ym.shape)).astype(np.float32)

    def grads(lib, nn, args):
        p = lib.array(proj)

        def f(*g):
            full = list(args)
            for i, v in zip(grad_argnums, g):
                full[i] = v
            return lib.sum(getattr(nn.losses, name)(*full, **kwargs) * p)
        argnums = tuple(range(len(grad_argnums)))
        return lib.grad(f, argnums=argnums)(*[args[i] for i in grad_argnums])

    same(grads(rx(), rnn(), ar), grads(REF, mnn, am), rtol, atol, f"{name} grad")


def expect_same_error(name, arrays, kwargs, exc=ValueError):
    def call(lib, nn):
        args = [lib.array(a) if isinstance(a, np.ndarray) else a for a in arrays]
        return getattr(nn.losses, name)(*args, **kwargs)
    with pytest.raises(exc) as em:
        REF.eval(call(REF, mnn))
    with pytest.raises(exc) as er:
        rx().eval(call(rx(), rnn()))
    assert str(er.value).replace("rmx", "mlx") == str(em.value)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_class_indices(reduction, smoothing):
    logits = U(6, 5)
    t = np.random.default_rng(1).integers(0, 5, 6).astype(np.int32)
    run("cross_entropy", [logits, t], {"label_smoothing": smoothing, "reduction": reduction})
    w = U(6, low=0.1, high=1.0)
    run("cross_entropy", [logits, t, w], {"label_smoothing": smoothing, "reduction": reduction})


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probabilities_and_axis(reduction):
    logits = U(4, 5, 3)
    run("cross_entropy", [logits, probs(4, 5, 3)], {"reduction": reduction}, grad_argnums=(0, 1))
    run("cross_entropy", [logits, probs(4, 5, 3, axis=1)],
        {"axis": 1, "label_smoothing": 0.1, "reduction": reduction}, grad_argnums=(0, 1))
    t = np.random.default_rng(2).integers(0, 5, (4, 3)).astype(np.int32)
    run("cross_entropy", [logits, t], {"axis": 1, "reduction": reduction})
    t0 = np.random.default_rng(3).integers(0, 4, (5, 3)).astype(np.int32)
    run("cross_entropy", [logits, t0], {"axis": 0, "reduction": reduction})


def test_cross_entropy_errors():
    logits = U(4, 5)
    t = np.zeros(4, np.int32)
    expect_same_error("cross_entropy", [logits, t], {"label_smoothing": 1.0})
    expect_same_error("cross_entropy", [logits, t], {"label_smoothing": -0.1})
    expect_same_error("cross_entropy", [logits, np.zeros(5, np.int32)], {})
    expect_same_error("cross_entropy", [logits, probs(4, 4)], {})
    expect_same_error("cross_entropy", [logits, t, U(5)], {})
    expect_same_error("cross_entropy", [logits, t], {"reduction": "avg"})


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    x = U(3, 4, low=-4, high=4)
    t = (np.random.default_rng(4).random((3, 4)) < 0.5).astype(np.float32)
    run("binary_cross_entropy", [x, t], {"reduction": reduction})
    run("binary_cross_entropy", [x, U(3, 4, low=0, high=1)], {"reduction": reduction},
        grad_argnums=(0, 1))
    p = U(3, 4, low=0.02, high=0.98)
    p[0, :2] = [0.0, 1.0]  # log clipped at -100
    run("binary_cross_entropy", [p, t], {"with_logits": False, "reduction": reduction},
        grad_argnums=())
    run("binary_cross_entropy", [p[1:], t[1:]], {"with_logits": False, "reduction": reduction})
    w = U(3, 4, low=0, high=2)
    run("binary_cross_entropy", [x, t, w], {"reduction": reduction})
    run("binary_cross_entropy", [x, t], {"reduction": reduction, "weights": None})


def test_binary_cross_entropy_errors():
    expect_same_error("binary_cross_entropy", [U(3, 4), U(4, 3)], {})
    expect_same_error("binary_cross_entropy", [U(3, 4), U(3, 4), U(3)], {})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["l1_loss", "mse_loss"])
def test_l1_mse(name, reduction):
    run(name, [U(3, 5), U(3, 5)], {"reduction": reduction}, grad_argnums=(0, 1))


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "smooth_l1_loss"])
def test_shape_mismatch_errors(name):
    expect_same_error(name, [U(3, 5), U(5, 3)], {})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0])
def test_smooth_l1(reduction, beta):
    run("smooth_l1_loss", [U(4, 6), U(4, 6)], {"beta": beta, "reduction": reduction},
        grad_argnums=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll(reduction):
    lp = log_probs(5, 4)
    t = np.random.default_rng(5).integers(0, 4, 5).astype(np.int32)
    run("nll_loss", [lp, t], {"reduction": reduction})
    lp3 = log_probs(3, 4, 2, axis=1)
    t3 = np.random.default_rng(6).integers(0, 4, (3, 2)).astype(np.int32)
    run("nll_loss", [lp3, t3], {"axis": 1, "reduction": reduction})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll(reduction, full):
    v = U(4, 3, low=0.1, high=2.0)
    v[0, 0] = 1e-9  # clamped to eps
    run("gaussian_nll_loss", [U(4, 3), U(4, 3), v], {"full": full, "reduction": reduction},
        grad_argnums=(0, 1, 2), rtol=1e-4, atol=1e-5)
    run("gaussian_nll_loss", [U(4, 3), U(4, 3), U(4, 3, low=0.5, high=1)],
        {"eps": 0.7, "reduction": reduction}, grad_argnums=(0, 2))


def test_gaussian_nll_errors():
    expect_same_error("gaussian_nll_loss", [U(4, 3), U(3, 4), U(4, 3)], {})
    expect_same_error("gaussian_nll_loss", [U(4, 3), U(4, 3), U(4)], {})


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_div(reduction):
    run("kl_div_loss", [log_probs(3, 5), log_probs(3, 5)], {"reduction": reduction},
        grad_argnums=(0, 1))
    run("kl_div_loss", [log_probs(5, 3, axis=0), log_probs(5, 3, axis=0)],
        {"axis": 0, "reduction": reduction})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, {"p": 1}, {"p": 3, "margin": 0.5}, {"axis": 0, "eps": 1e-3}])
def test_triplet(reduction, kw):
    run("triplet_loss", [U(4, 6), U(4, 6), U(4, 6)], {**kw, "reduction": reduction},
        grad_argnums=(0, 1, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_hinge(reduction):
    t = np.sign(U(3, 4)).astype(np.float32)
    run("hinge_loss", [U(3, 4), t], {"reduction": reduction})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("delta", [1.0, 0.3, 2.5])
def test_huber(reduction, delta):
    run("huber_loss", [U(4, 5), U(4, 5)], {"delta": delta, "reduction": reduction},
        grad_argnums=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh(reduction):
    run("log_cosh_loss", [U(4, 5, low=-8, high=8), U(4, 5)], {"reduction": reduction},
        grad_argnums=(0, 1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": -1, "eps": 0.5}])
def test_cosine_similarity(reduction, kw):
    a, b = U(4, 6), U(4, 6)
    a[0] = 0.0  # norm product below eps
    run("cosine_similarity_loss", [a, b], {**kw, "reduction": reduction}, grad_argnums=(1,),
        rtol=1e-5, atol=1e-6)
    run("cosine_similarity_loss", [U(4, 6), U(4, 6)], {**kw, "reduction": reduction},
        grad_argnums=(0, 1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking(reduction, margin):
    t = np.sign(U(8)).astype(np.float32)
    run("margin_ranking_loss", [U(8), U(8), t], {"margin": margin, "reduction": reduction},
        grad_argnums=(0, 1))


def test_margin_ranking_errors():
    expect_same_error("margin_ranking_loss", [U(8), U(7), U(8)], {})


@pytest.mark.parametrize("name,arrays", [
    ("l1_loss", lambda: [U(2, 2), U(2, 2)]), ("mse_loss", lambda: [U(2, 2), U(2, 2)]),
    ("huber_loss", lambda: [U(2, 2), U(2, 2)]), ("hinge_loss", lambda: [U(2, 2), U(2, 2)]),
    ("log_cosh_loss", lambda: [U(2, 2), U(2, 2)]),
    ("kl_div_loss", lambda: [U(2, 2), U(2, 2)]),
    ("triplet_loss", lambda: [U(2, 2), U(2, 2), U(2, 2)]),
    ("cosine_similarity_loss", lambda: [U(2, 2), U(2, 2)]),
    ("smooth_l1_loss", lambda: [U(2, 2), U(2, 2)]),
    ("binary_cross_entropy", lambda: [U(2, 2), U(2, 2)]),
    ("gaussian_nll_loss", lambda: [U(2, 2), U(2, 2), U(2, 2, low=0.1)]),
    ("margin_ranking_loss", lambda: [U(2), U(2), U(2)]),
    ("nll_loss", lambda: [U(2, 2), np.zeros(2, np.int32)]),
])
def test_invalid_reduction(name, arrays):
    expect_same_error(name, arrays(), {"reduction": "max"})


def test_loss_dtypes_follow_inputs():
    for dt in ("float16", "bfloat16"):
        def go(lib, nn):
            a = lib.array(U(3, 4, seed=1)).astype(getattr(lib, dt))
            b = lib.array(U(3, 4, seed=2)).astype(getattr(lib, dt))
            t = lib.array(np.array([0, 3, 1], np.int32))
            return [nn.losses.mse_loss(a, b), nn.losses.cross_entropy(a, t),
                    nn.losses.binary_cross_entropy(a, b), nn.losses.huber_loss(a, b)]
        same(go(rx(), rnn()), go(REF, mnn), 2e-2, 2e-2)
