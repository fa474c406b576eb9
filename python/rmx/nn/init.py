"""Parameter initializers, as ``mlx.nn.init``: each factory returns a function
``init(a) -> array`` producing a new array of ``a``'s shape."""

import math
from typing import Callable, Literal

import rmx.core as mx


def constant(value: float, dtype=mx.float32) -> Callable:
    """Fills with ``value``."""
    def initializer(a):
        return mx.full(a.shape, value, dtype=dtype)
    return initializer


def normal(mean: float = 0.0, std: float = 1.0, dtype=mx.float32) -> Callable:
    """Samples ``N(mean, std**2)``."""
    def initializer(a):
        return mx.random.normal(shape=a.shape, scale=std, loc=mean, dtype=dtype)
    return initializer


def uniform(low: float = 0.0, high: float = 1.0, dtype=mx.float32) -> Callable:
    """Samples ``U(low, high)``."""
    def initializer(a):
        return mx.random.uniform(low, high, a.shape, dtype=dtype)
    return initializer


def identity(dtype=mx.float32) -> Callable:
    """The identity matrix (square 2-D inputs only)."""
    def initializer(arr):
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(
                f"The input array must be a square matrix but got shape {arr.shape}.")
        return mx.eye(n=arr.shape[0], dtype=dtype)
    return initializer


def _calculate_fan_in_fan_out(x):
    if x.ndim < 2:
        raise ValueError(
            "Glorot / He initialization requires at least 2 dimensional input"
            f" but input with {x.ndim} dimensions.")
    fan_in, fan_out = x.shape[-1], x.shape[0]
    if x.ndim > 2:
        rf = 1
        for d in x.shape[1:-1]:
            rf *= d
        fan_in, fan_out = fan_in * rf, fan_out * rf
    return fan_in, fan_out


def glorot_normal(dtype=mx.float32) -> Callable:
    """``N(0, gain**2 * 2 / (fan_in + fan_out))``."""
    def initializer(a, gain: float = 1.0):
        fi, fo = _calculate_fan_in_fan_out(a)
        return mx.random.normal(shape=a.shape, scale=gain * math.sqrt(2.0 / (fi + fo)),
                                dtype=dtype)
    return initializer


def glorot_uniform(dtype=mx.float32) -> Callable:
    """``U(-l, l)`` with ``l = gain * sqrt(6 / (fan_in + fan_out))``."""
    def initializer(a, gain: float = 1.0):
        fi, fo = _calculate_fan_in_fan_out(a)
        lim = gain * math.sqrt(6.0 / (fi + fo))
        return mx.random.uniform(-lim, lim, a.shape, dtype=dtype)
    return initializer


def _fan(a, mode):
    fi, fo = _calculate_fan_in_fan_out(a)
    if mode == "fan_in":
        return fi
    if mode == "fan_out":
        return fo
    raise ValueError(f"Invalid mode: {mode}. Valid modes are: fan_in, fan_out")


def he_normal(dtype=mx.float32) -> Callable:
    """``N(0, gain**2 / fan)``."""
    def initializer(a, mode: Literal["fan_in", "fan_out"] = "fan_in", gain: float = 1.0):
        std = gain / math.sqrt(_fan(a, mode))
        return mx.random.normal(shape=a.shape, scale=std, dtype=dtype)
    return initializer


def he_uniform(dtype=mx.float32) -> Callable:
    """``U(-l, l)`` with ``l = gain * sqrt(3 / fan)``."""
    def initializer(a, mode: Literal["fan_in", "fan_out"] = "fan_in", gain: float = 1.0):
        lim = gain * math.sqrt(3.0 / _fan(a, mode))
        return mx.random.uniform(-lim, lim, a.shape, dtype=dtype)
    return initializer


def sparse(sparsity: float, mean: float = 0.0, std: float = 1.0, dtype=mx.float32) -> Callable:
    """Normal samples with ``ceil(sparsity * cols)`` random zeros in each row (2-D only)."""
    def initializer(a):
        if a.ndim != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        rows, cols = a.shape
        nz = int(math.ceil(sparsity * cols))
        order = mx.argsort(mx.random.uniform(shape=a.shape), axis=1)
        out = mx.random.normal(shape=a.shape, scale=std, loc=mean, dtype=dtype)
        out[mx.arange(rows).reshape(rows, 1), order[:, :nz]] = 0
        return out
    return initializer


def _qr_positive(a):
    """Q of the QR decomposition of square ``a`` with ``diag(R) > 0``
    (modified Gram-Schmidt; used when ``mx.linalg.qr`` is unavailable)."""
    n = a.shape[0]
    cols = []
    for j in range(n):
        v = a[:, j]
        for q in cols:
            v = v - mx.sum(q * v) * q
        cols.append(v / mx.sqrt(mx.sum(v * v)))
    return mx.stack(cols, axis=1)


def orthogonal(gain: float = 1.0, dtype=mx.float32) -> Callable:
    """A (semi-)orthogonal matrix: Q of the QR decomposition of a normal
    ``n x n`` sample (``n = max(rows, cols)``), sign-fixed, cropped, times ``gain``."""
    def initializer(a):
        if a.ndim != 2:
            raise ValueError(
                "Orthogonal initialization requires a 2D array but got"
                f" a {a.ndim}D array.")
        rows, cols = a.shape
        n = max(rows, cols)
        rmat = mx.random.normal(shape=(n, n))
        linalg = getattr(mx, "linalg", None)
        if linalg is not None and hasattr(linalg, "qr"):
            q, r = linalg.qr(rmat, stream=mx.cpu)
            q = q * mx.sign(mx.diag(r))
        else:
            q = _qr_positive(rmat)
        return (q[:rows, :cols] * gain).astype(dtype)
    return initializer
