"""Helpers for the differential rmx.nn / rmx.optimizers tests.

Models are built in both libraries, MLX's (random) parameters are copied into
the rmx model through NumPy, and outputs / gradients / optimizer states are
compared with ``diff.assert_same`` (structure, key order, shapes, dtypes and
values).
"""

import numpy as np

import mlx.core as REF
import mlx.nn as mnn
import mlx.utils as mutils

from diff import REFERENCE_ONLY, assert_same, get_rmx, to_numpy

if REFERENCE_ONLY:
    # RMX_TEST_REFERENCE_ONLY=1: run rmx.nn / rmx.optimizers' Python code on
    # top of mlx.core (and mlx.utils), validating these tests and the layers
    # whose rmx.core ops are not available yet against MLX itself.
    import os
    import sys
    import types

    if "rmx" not in sys.modules:
        _fake = types.ModuleType("rmx")
        _fake.__path__ = [os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))), "rmx")]
        _fake.core = REF
        _fake.utils = mutils
        sys.modules.update({"rmx": _fake, "rmx.core": REF, "rmx.utils": mutils})


def rx():
    return get_rmx()


def rnn():
    import rmx.nn as nn
    return nn


def ropt():
    import rmx.optimizers as opt
    return opt


def rutils():
    import rmx.utils as u
    return u


def to_rmx(tree):
    """An mlx tree (arrays) as an rmx tree of identical values."""
    m = rx()

    def conv(a):
        if isinstance(a, REF.array):
            dt = str(a.dtype).rsplit(".", 1)[-1]
            return m.array(to_numpy(a, REF), dtype=getattr(m, dt))
        return a
    return mutils.tree_map(conv, tree)


def copy_params(mlx_model, rmx_model):
    """Copies every parameter of ``mlx_model`` into ``rmx_model`` (strict update)."""
    rmx_model.update(to_rmx(mlx_model.parameters()))
    return rmx_model


def pair(name, *args, **kwargs):
    """(mlx_layer, rmx_layer) built by ``nn.<name>(*args, **kwargs)`` with shared weights."""
    ml = getattr(mnn, name)(*args, **kwargs)
    rl = getattr(rnn(), name)(*args, **kwargs)
    copy_params(ml, rl)
    return ml, rl


def inputs(*shapes, seed=0, low=-2.0, high=2.0):
    g = np.random.default_rng(seed)
    return [g.uniform(low, high, s).astype(np.float32) for s in shapes]


def both(np_tree):
    """(mlx tree, rmx tree) from a NumPy tree (lists/tuples/dicts of ndarrays)."""
    m = rx()

    def mk(lib):
        return mutils.tree_map(
            lambda a: lib.array(a) if isinstance(a, np.ndarray) else a, np_tree)
    return mk(REF), mk(m)


def evaluate(lib, tree):
    arrs = [v for _, v in mutils.tree_flatten(tree) if isinstance(v, lib.array)]
    if arrs:
        lib.eval(arrs)


def same(got, exp, rtol=2e-5, atol=1e-6, where="result"):
    evaluate(rx(), got)
    evaluate(REF, exp)
    assert_same(got, exp, rtol=rtol, atol=atol, where=where)


def forward_and_grad(ml, rl, xs, call=None, rtol=2e-5, atol=1e-6, grad_rtol=None,
                     grad_atol=None, input_grad=True):
    """Compares ``call(layer, *xs)`` and the gradients of a fixed random
    projection of it w.r.t. the trainable parameters (and the float inputs)."""
    call = call or (lambda layer, *a: layer(*a))
    xm, xr = both(list(xs))
    ym = call(ml, *xm)
    yr = call(rl, *xr)
    same(yr, ym, rtol, atol, "forward")

    outs_m = [v for _, v in mutils.tree_flatten(ym)]
    g = np.random.default_rng(123)
    proj = [g.uniform(-1, 1, tuple(o.shape)).astype(np.float32) for o in outs_m]
    pm, pr = both(proj)

    def loss_fn(lib, layer, call_args):
        out = call(layer, *call_args)
        flat = [v for _, v in mutils.tree_flatten(out)]
        tot = None
        for o, p in zip(flat, pm if lib is REF else pr):
            t = lib.sum(o.astype(lib.float32) * p)
            tot = t if tot is None else tot + t
        return tot

    floats = [i for i, a in enumerate(xs) if np.issubdtype(np.asarray(a).dtype, np.floating)]

    def run(lib, nnmod, layer, args):
        def f(params, fargs):
            layer.update(params)
            a = list(args)
            for i, v in zip(floats, fargs):
                a[i] = v
            return loss_fn(lib, layer, a)
        wrt = (0, 1) if (input_grad and floats) else 0
        vg = lib.value_and_grad(f, argnums=wrt)
        return vg(layer.trainable_parameters(), [args[i] for i in floats])

    vm, gm = run(REF, mnn, ml, xm)
    vr, gr = run(rx(), rnn(), rl, xr)
    gr_rtol = grad_rtol if grad_rtol is not None else rtol
    gr_atol = grad_atol if grad_atol is not None else atol
    same(vr, vm, gr_rtol, max(gr_atol, 1e-5), "loss")
    same(gr, gm, gr_rtol, gr_atol, "grads")
    return yr, ym


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def no_mlx_compile():
    """mlx.nn wraps activations in ``mx.compile``, whose CPU kernels take ~1.5 s
    each to JIT-build; the reference values are the same with compilation off."""
    REF.disable_compile()
    yield
    REF.enable_compile()


def seeded(seed, f_mlx, f_rmx):
    """(f_mlx(), f_rmx()), each run right after seeding its library's global
    RNG (the two libraries draw identical bits from identical seeds; seeding
    each just before use also works when both sides are mlx.core)."""
    REF.random.seed(seed)
    a = f_mlx()
    evaluate(REF, a)
    rx().random.seed(seed)
    b = f_rmx()
    evaluate(rx(), b)
    return a, b
