"""fast.gated_delta_update against MLX 0.32.4 (its CPU fallback) and a NumPy float64
recurrence: grouped heads, initial state, masks, half-precision dtypes (the state
stays float32), shape errors, grad and vmap."""

import numpy as np
import pytest

from diff import A, check, check_raises, get_rmx, rand


def np_gdu(q, k, v, g, beta, state=None, mask=None):
    b, t_n, hk, dk = q.shape
    hv, dv = v.shape[-2:]
    state = np.zeros((b, hv, dv, dk)) if state is None else state.astype(np.float64)
    r = hv // hk
    q, k = np.repeat(q, r, -2), np.repeat(k, r, -2)
    ys = []
    for t in range(t_n):
        new = state * g[:, t, :, None, None]
        kv = (new * k[:, t, :, None, :]).sum(-1)
        delta = (v[:, t] - kv) * beta[:, t, :, None]
        new = new + k[:, t, :, None, :] * delta[..., None]
        y = (new * q[:, t, :, None, :]).sum(-1)
        if mask is not None:
            y = np.where(mask[:, t][:, None, None], y, 0)
            state = np.where(mask[:, t][:, None, None, None], new, state)
        else:
            state = new
        ys.append(y)
    return np.stack(ys, 1), state


def _inputs(b=2, t=5, hk=2, dk=4, hv=4, dv=3, dt="float32", seed=0):
    qs = [rand((b, t, hk, dk), dt, seed=seed), rand((b, t, hk, dk), dt, seed=seed + 1),
          rand((b, t, hv, dv), dt, seed=seed + 2),
          rand((b, t, hv), dt, seed=seed + 3, low=0.5, high=1.0),
          rand((b, t, hv), dt, seed=seed + 4, low=0.0, high=1.0)]
    return [A(x, dt) for x in qs]


def gdu(m, *a, **kw):
    return m.fast.gated_delta_update(*a, **kw)


@pytest.mark.parametrize("dims", [dict(), dict(hk=4), dict(hk=1, hv=3), dict(t=1),
                                  dict(b=1, t=9, hk=2, dk=8, hv=6, dv=5)], ids=repr)
def test_matches_mlx_and_numpy(dims):
    ins = _inputs(**dims)
    check(gdu, *ins, rtol=1e-4, atol=1e-4, np_fn=np_gdu, np_rtol=1e-4, np_atol=1e-4)


def test_initial_state_and_mask():
    ins = _inputs()
    st = A(rand((2, 4, 3, 4), "float32", seed=9))
    check(lambda m, *a: gdu(m, *a[:5], initial_state=a[5]), *ins, st, rtol=1e-4, atol=1e-4,
          np_fn=lambda *a: np_gdu(*a[:5], state=a[5]), np_rtol=1e-4, np_atol=1e-4)
    mask = np.array([[1, 0, 1, 1, 0], [0, 1, 0, 1, 1]], bool)
    check(lambda m, *a: gdu(m, *a[:5], mask=a[5]), *ins, A(mask), rtol=1e-4, atol=1e-4,
          np_fn=lambda *a: np_gdu(*a[:5], mask=a[5]), np_rtol=1e-4, np_atol=1e-4)
    check(lambda m, *a: gdu(m, *a[:5], a[5], a[6]), *ins, st, A(mask), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_half_dtypes(dt):
    ins = _inputs(dt=dt)
    tol = 2e-2 if dt == "float16" else 1e-1
    check(gdu, *ins, rtol=tol, atol=tol)
    st = A(rand((2, 4, 3, 4), dt, seed=9), dt)
    check(lambda m, *a: gdu(m, *a[:5], initial_state=a[5]), *ins, st, rtol=tol, atol=tol)


def test_shape_errors():
    q, k, v, g, b = _inputs()
    check_raises(gdu, A(q.data[..., :3]), k, v, g, b, err=ValueError)
    check_raises(gdu, q, k, A(v.data[:, :, :3]), g, b, err=ValueError)
    check_raises(gdu, q, k, v, A(g.data[..., :2]), b, err=ValueError)
    check_raises(lambda m, *a: gdu(m, *a, initial_state=m.zeros((2, 4, 4, 3))), q, k, v, g, b,
                 err=ValueError)
    check_raises(gdu, q, k, A(v.data[:, :, :3]), A(g.data[..., :3]), A(b.data[..., :3]),
                 err=ValueError)


def test_grad_and_vmap():
    ins = _inputs(t=3)
    check(lambda m, *a: m.grad(lambda x: gdu(m, x, *a[1:])[0].sum())(a[0]), *ins,
          rtol=1e-4, atol=1e-4)
    check(lambda m, *a: m.grad(lambda gg, bb: (gdu(m, *a[:3], gg, bb)[1] ** 2).sum(),
                               argnums=(0, 1))(a[3], a[4]), *ins, rtol=1e-4, atol=1e-4)
    check(lambda m, *a: m.vmap(lambda x: gdu(m, x, *a[1:])[0])(m.stack([a[0], a[0] * 2])),
          *ins, rtol=1e-4, atol=1e-4)
