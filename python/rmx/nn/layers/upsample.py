"""Upsample: nearest, (bi/tri)linear and cubic interpolation of channels-last inputs."""

import math
import operator
from functools import reduce
from itertools import product
from typing import Literal, Tuple, Union

import rmx.core as mx
from rmx.nn.module import Module


def _axis_shape(dim, ndims):
    s = [1] * ndims
    s[dim] = -1
    return s


def _scaled_indices(N, scale, align_corners, dim, ndims):
    """Fractional source coordinates of the ``int(scale * N)`` outputs."""
    M = int(scale * N)
    pos = mx.arange(M, dtype=mx.float32)
    if align_corners:
        pos = pos * ((N - 1) / max(M - 1, 1))
    else:
        step = 1 / scale
        pos = pos * step - ((M - 1) * step - N + 1) / 2
    return pos.reshape(_axis_shape(dim, ndims))


def _nearest_indices(N, scale, dim, ndims):
    M = int(scale * N)
    idx = mx.arange(M, dtype=mx.float32)
    if M > N:
        idx = ((idx + 0.5) * (N / M) - 0.5).round()
    else:
        idx = idx * (N / M)
    return idx.astype(mx.uint32).reshape(_axis_shape(dim, ndims))


def _linear_indices(N, scale, align_corners, dim, ndims):
    pos = mx.clip(_scaled_indices(N, scale, align_corners, dim, ndims), a_min=0, a_max=N - 1)
    lo, hi = mx.floor(pos), mx.ceil(pos)
    w = mx.expand_dims(pos - lo, -1)
    return ((lo.astype(mx.uint32), 1 - w), (hi.astype(mx.uint32), w))


def _triangle_kernel(x):
    return mx.maximum(1.0 - x, 0.0)


def _keys_kernel(x, a):
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    outer = (((x - 5) * x + 8) * x - 4) * a
    return inner, outer


def _cubic_kernel(x):
    inner, outer = _keys_kernel(x, -0.5)
    return mx.where(x <= 1.0, inner, mx.where(x <= 2.0, outer, 0.0))


def _aa_indices(N, scale, align_corners, dim, ndims, kernel_fn, radius):
    """Taps and normalised weights of an antialiasing filter (kernel widened by 1/scale)."""
    pos = _scaled_indices(N, scale, align_corners, dim, ndims)
    inv = 1.0 / scale if scale < 1 else 1.0
    taps = math.ceil(radius * inv) + 1
    idxs, ws = [], []
    for k in range(-taps + 1, taps):
        idx = mx.floor(pos) + k
        w = kernel_fn(mx.abs(pos - idx) / inv)
        ws.append(mx.where((idx >= 0) & (idx < N), w, 0.0))
        idxs.append(idx)
    total = sum(ws)
    total = mx.where(total > 0, total, 1.0)
    return tuple((mx.clip(i, a_min=0, a_max=N - 1).astype(mx.uint32),
                  mx.expand_dims(w / total, -1)) for i, w in zip(idxs, ws))


def _linear_aa_indices(N, scale, align_corners, dim, ndims):
    return _aa_indices(N, scale, align_corners, dim, ndims, _triangle_kernel, 1.0)


def _cubic_aa_indices(N, scale, align_corners, dim, ndims):
    return _aa_indices(N, scale, align_corners, dim, ndims, _cubic_kernel, 2.0)


def _cubic_indices(N, scale, align_corners, dim, ndims):
    pos = _scaled_indices(N, scale, align_corners, dim, ndims)
    l1 = mx.floor(pos)
    r1 = mx.floor(pos + 1)
    l2 = l1 - 1
    r2 = r1 + 1

    def weight(grid, near):
        inner, outer = _keys_kernel(mx.abs(pos - grid), -0.75)
        return (inner if near else outer)[..., None]

    out = []
    for grid, near in ((l1, True), (r1, True), (l2, False), (r2, False)):
        w = weight(grid, near)
        out.append((mx.clip(grid, a_min=0, a_max=N - 1).astype(mx.uint32), w))
    return tuple(out)


def _validate_antialias_align_corners(align_corners, antialias):
    if antialias and align_corners:
        raise ValueError(
            "[Upsample] antialias=True with align_corners=True is not "
            "supported. Use align_corners=False for antialiased interpolation.")


def upsample_nearest(x, scale_factor: Tuple):
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    if tuple(map(int, scale_factor)) == tuple(scale_factor):
        # Integer factors: repeat by broadcasting.
        shape = list(x.shape)
        for d in range(dims):
            shape.insert(2 + 2 * d, 1)
        x = x.reshape(shape)
        for d in range(dims):
            shape[2 + 2 * d] = int(scale_factor[d])
        x = mx.broadcast_to(x, shape)
        for d in range(dims):
            shape[d + 1] *= shape[d + 2]
            shape.pop(d + 2)
        return x.reshape(shape)
    _, *N, _ = x.shape
    idx = [slice(None)] + [_nearest_indices(n, s, i, dims)
                           for i, (n, s) in enumerate(zip(N, scale_factor))]
    return x[tuple(idx)]


def _interpolate(x, scale_factor, indices_fn, align_corners=False):
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    _, *N, _ = x.shape
    per_axis = [indices_fn(n, s, align_corners, i, dims)
                for i, (n, s) in enumerate(zip(N, scale_factor))]
    total = None
    for combo in product(*per_axis):
        idx, w = zip(*combo)
        term = reduce(operator.mul, w) * x[(slice(None),) + idx]
        total = term if total is None else total + term
    return total


def _interpolate_separable(x, scale_factor, indices_fn, align_corners=False):
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    _, *N, _ = x.shape
    out = x
    for i, (n, s) in enumerate(zip(N, scale_factor)):
        out = sum(mx.take(out, idx.reshape(-1), axis=i + 1) * w
                  for idx, w in indices_fn(n, s, align_corners, i, dims))
    return out


def upsample_linear(x, scale_factor: Tuple, align_corners: bool = False,
                    antialias: bool = False):
    _validate_antialias_align_corners(align_corners, antialias)
    if antialias:
        return _interpolate_separable(x, scale_factor, _linear_aa_indices, align_corners)
    if not align_corners:
        return _interpolate_separable(x, scale_factor, _linear_indices, align_corners)
    return _interpolate(x, scale_factor, _linear_indices, align_corners)


def upsample_cubic(x, scale_factor: Tuple, align_corners: bool = False,
                   antialias: bool = False):
    _validate_antialias_align_corners(align_corners, antialias)
    if antialias:
        return _interpolate_separable(x, scale_factor, _cubic_aa_indices, align_corners)
    return _interpolate(x, scale_factor, _cubic_indices, align_corners)


class Upsample(Module):
    """Spatial upsampling of ``(N, *spatial, C)`` inputs by ``scale_factor``
    with ``mode`` ``'nearest'``, ``'linear'`` or ``'cubic'``."""

    def __init__(self, scale_factor: Union[float, Tuple],
                 mode: Literal["nearest", "linear", "cubic"] = "nearest",
                 align_corners: bool = False, antialias: bool = False):
        super().__init__()
        if mode not in ["nearest", "linear", "cubic"]:
            raise ValueError(f"[Upsample] Got unsupported upsampling algorithm: {mode}")
        if antialias and mode == "nearest":
            raise ValueError(
                "[Upsample] Antialiasing is not supported for nearest neighbor upsampling")
        if isinstance(scale_factor, (list, tuple)):
            scale_factor = tuple(map(float, scale_factor))
        else:
            scale_factor = float(scale_factor)
        _validate_antialias_align_corners(align_corners, antialias)
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.antialias = antialias

    def _extra_repr(self) -> str:
        s = (f"scale_factor={self.scale_factor}, mode={self.mode!r}, "
             f"align_corners={self.align_corners}")
        return s + (", antialias=True" if self.antialias else "")

    def __call__(self, x):
        dims = x.ndim - 2
        if dims <= 0:
            raise ValueError(
                f"[Upsample] The input should have at least 1 spatial "
                f"dimension which means it should be at least 3D but "
                f"{x.ndim}D was provided")
        sf = self.scale_factor
        if isinstance(sf, tuple):
            if len(sf) != dims:
                raise ValueError(
                    f"[Upsample] One scale per spatial dimension is required but "
                    f"scale_factor={sf} and the number of spatial dimensions were {dims}")
        else:
            sf = (sf,) * dims
        if self.mode == "nearest":
            return upsample_nearest(x, sf)
        if self.mode == "linear":
            return upsample_linear(x, sf, self.align_corners, self.antialias)
        return upsample_cubic(x, sf, self.align_corners, self.antialias)
