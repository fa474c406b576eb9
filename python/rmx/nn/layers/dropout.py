"""Dropout layers (identity in eval mode)."""

import rmx.core as mx
from rmx.nn.module import Module


class _DropoutBase(Module):
    _ndims = None  # accepted input ranks (None: any)

    def __init__(self, p: float = 0.5):
        super().__init__()
        if p < 0 or p >= 1:
            raise ValueError(f"The dropout probability {p} is not in [0, 1)")
        self._p_1 = 1 - p

    def _extra_repr(self) -> str:
        return f"p={1 - self._p_1}"

    def _mask_shape(self, x):
        return x.shape

    def __call__(self, x):
        if self._ndims is not None and x.ndim not in self._ndims:
            a, b = self._ndims
            raise ValueError(
                f"Received input with {x.ndim} dimensions. Expected {a} or {b} dimensions.")
        if self._p_1 == 1 or not self.training:
            return x
        mask = mx.random.bernoulli(p=self._p_1, shape=self._mask_shape(x))
        return (mask * x) * (1 / self._p_1)


class Dropout(_DropoutBase):
    """Zeroes each element with probability ``p`` and scales the rest by ``1/(1-p)``."""


class Dropout2d(_DropoutBase):
    """Zeroes whole channels of ``(N, H, W, C)`` / ``(H, W, C)`` inputs."""

    _ndims = (3, 4)

    def _mask_shape(self, x):
        s = list(x.shape)
        s[-2] = s[-3] = 1
        return s


class Dropout3d(_DropoutBase):
    """Zeroes whole channels of ``(N, D, H, W, C)`` / ``(D, H, W, C)`` inputs."""

    _ndims = (4, 5)

    def _mask_shape(self, x):
        s = list(x.shape)
        s[-2] = s[-3] = s[-4] = 1
        return s
