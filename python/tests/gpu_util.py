"""Shared by the GPU test files: dtype lists and tolerances, GPU-against-CPU helpers, and
the check that an op ran on the GPU (not through the CPU backend).
"""

import numpy as np
import pytest

from diff import get_rmx

mx = get_rmx()

requires_gpu = pytest.mark.skipif(
    not mx.is_available(mx.gpu), reason="no GPU backend in this build or no CUDA device"
)

FLOATS = ["float16", "bfloat16", "float32", "float64"]
INTS = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64"]
TOL = {
    "float16": (2e-3, 2e-3),
    "bfloat16": (1.6e-2, 1.6e-2),
    "float32": (2e-5, 1e-6),
    "float64": (1e-12, 1e-14),
}


def dt(name):
    return getattr(mx, name)


def host(x):
    """A NumPy copy of `x` (bfloat16 widened to float32 on the CPU)."""
    if x.dtype == mx.bfloat16:
        x = x.astype(mx.float32, stream=mx.cpu)
    return np.array(x)


def assert_close(g, c, dtype_name, what):
    assert g.shape == c.shape, what
    assert g.dtype == c.dtype, what
    gn, cn = host(g), host(c)
    if dtype_name in TOL and gn.dtype.kind == "f":
        rtol, atol = TOL[dtype_name]
        np.testing.assert_allclose(gn, cn, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(gn, cn, err_msg=what)


def both(fn, *args):
    """fn(*args, stream) on the GPU and on the CPU, evaluated."""
    g = fn(*args, mx.gpu)
    c = fn(*args, mx.cpu)
    mx.eval(g, c)
    return g, c


def rand(shape, dtype="float32", low=-3.0, high=3.0, seed=0):
    r = np.random.default_rng(seed).uniform(low, high, size=shape)
    if dtype in INTS or dtype == "bool_":
        r = np.round(r)
    return mx.array(r.astype(np.float64)).astype(dt(dtype), stream=mx.cpu)


def host_fallbacks():
    """How many GPU-stream ops have run on the host so far (families without a kernel)."""
    return int(mx.device_info(mx.gpu)["host_fallback_ops"])


def on_gpu_natively(fn, *args):
    """fn(*args, mx.gpu) evaluated, checking that no part of it ran on the host."""
    before = host_fallbacks()
    g = fn(*args, mx.gpu)
    mx.eval(g)
    assert host_fallbacks() == before, "ran on the host"
    return g
