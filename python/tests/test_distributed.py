"""rmx.core.distributed against MLX 0.32.4 on a machine with no communication backend:
the singleton group, init's strict errors, backend name checks, identity collectives
(values, dtypes, grad, vmap), send/recv errors."""

import numpy as np
import pytest

from diff import A, REF, check, check_raises, get_rmx, rand

BACKENDS = ["any", "mpi", "ring", "nccl", "jaccl"]


def test_is_available():
    rx = get_rmx()
    for b in ["mpi", "nccl", "jaccl", "bogus"]:
        assert rx.distributed.is_available(b) is REF.distributed.is_available(b) is False
    # rmx has no backend at all; MLX always builds its ring backend in
    assert rx.distributed.is_available() is False
    assert rx.distributed.is_available("ring") is False


def test_init_singleton_group():
    rx = get_rmx()
    for m in (rx, REF):
        for b in BACKENDS:
            g = m.distributed.init(backend=b)
            assert isinstance(g, m.distributed.Group)
            assert (g.rank(), g.size()) == (0, 1)
        assert m.distributed.init(False, "any", all_gather_factory=None).size() == 1
    assert rx.distributed.init() is rx.distributed.init()


@pytest.mark.parametrize("backend", BACKENDS)
def test_init_strict_raises(backend, monkeypatch):
    monkeypatch.delenv("MLX_RANK", raising=False)
    monkeypatch.delenv("MLX_HOSTFILE", raising=False)
    rx = get_rmx()
    errs = []
    for m in (rx, REF):
        with pytest.raises(RuntimeError) as e:
            m.distributed.init(strict=True, backend=backend)
        errs.append(str(e.value))
    assert errs[0] == errs[1]


def test_init_bad_backend():
    rx = get_rmx()
    for m in (rx, REF):
        for strict in (False, True):
            with pytest.raises(ValueError, match="only valid values"):
                m.distributed.init(strict=strict, backend="bogus")


def test_group_methods():
    rx = get_rmx()
    for m in (rx, REF):
        g = m.distributed.init()
        for args in [(0,), (0, 5), (1, -1)]:
            with pytest.raises(RuntimeError, match="Cannot split"):
                g.split(*args)
        with pytest.raises(TypeError):
            m.distributed.Group()


@pytest.mark.parametrize("op", ["all_sum", "all_max", "all_min", "all_gather", "sum_scatter"])
@pytest.mark.parametrize("dt", ["float32", "int32", "bool_", "float16", "complex64"])
def test_collectives_are_identities(op, dt):
    x = A(rand((2, 3), dt, seed=1), dt)
    check(lambda m, a: getattr(m.distributed, op)(a), x, exact=True)
    check(lambda m, a: getattr(m.distributed, op)(a, group=m.distributed.init()), x, exact=True)
    check(lambda m, a: getattr(m.distributed, op)(a, stream=m.cpu), x, exact=True)
    check(lambda m: getattr(m.distributed, op)(3.0), exact=True)
    check(lambda m: getattr(m.distributed, op)(7), exact=True)
    check_raises(lambda m: getattr(m.distributed, op)([1, 2]), err=ValueError)
    check_raises(lambda m, a: getattr(m.distributed, op)(a, m.distributed.init()), x,
                 err=TypeError)


@pytest.mark.parametrize("op", ["all_sum", "all_max", "all_min", "all_gather"])
def test_collectives_grad_vmap(op):
    x = A(rand((2, 3), "float32", seed=2))
    check(lambda m, a: m.grad(lambda y: (getattr(m.distributed, op)(y) * y).sum())(a), x)
    check(lambda m, a: m.vmap(getattr(m.distributed, op))(a), x)


def test_send_recv_raise():
    x = A(np.ones((2,), np.float32))
    check_raises(lambda m, a: m.distributed.send(a, 0), x, err=ValueError)
    check_raises(lambda m, a: m.distributed.send(a, 1), x, err=ValueError)
    check_raises(lambda m: m.distributed.recv((2,), m.float32, 0), err=ValueError)
    check_raises(lambda m, a: m.distributed.recv_like(a, 0), x, err=ValueError)


def test_submodule_import():
    import importlib

    mod = importlib.import_module(get_rmx().__name__ + ".distributed")
    assert mod.init().size() == 1
    names = {n for n in dir(REF.distributed) if not n.startswith("_")}
    assert names <= {n for n in dir(mod) if not n.startswith("_")}
