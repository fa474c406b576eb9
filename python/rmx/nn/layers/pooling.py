"""Max / average pooling over the spatial axes of channels-last inputs."""

from typing import Optional, Tuple, Union

import rmx.core as mx
from rmx.nn.module import Module


def _value_or_list(x, n, msg):
    if isinstance(x, (list, tuple)):
        if len(x) != n:
            raise ValueError(msg)
        return list(x)
    if not isinstance(x, int):
        raise ValueError(msg)
    return [x] * n


def _sliding_windows(x, window, strides):
    """View of ``x`` ``(N, *S, C)`` as ``(N, *out, *window, C)``."""
    if x.ndim < 3:
        raise ValueError(
            f"To extract sliding windows at least 1 spatial dimension "
            f"(3 total) is needed but the input only has {x.ndim} dimensions.")
    spatial = x.shape[1:-1]
    if not (len(spatial) == len(window) == len(strides)):
        raise ValueError(
            f"To extract sliding windows the window shapes and strides must have "
            f"the same number of spatial dimensions as the signal but the signal "
            f"has {len(spatial)} dims and the window shape has {len(window)} "
            f"and strides have {len(strides)}.")
    shape = list(x.shape)
    if all(w == s and n % w == 0 for n, w, s in zip(spatial, window, strides)):
        # Non-overlapping tiles: a reshape + transpose, no strided view.
        split = [shape[0]]
        for n, w in zip(spatial, window):
            split += [n // w, w]
        split.append(shape[-1])
        last = len(split) - 1
        order = [0, *range(1, last, 2), *range(2, last, 2), last]
        return x.reshape(split).transpose(order)
    # Row-major element strides of x.
    elem = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        elem[i] = elem[i + 1] * shape[i + 1]
    out_shape = ([shape[0]] + [(n - w) // s + 1 for n, w, s in zip(spatial, window, strides)]
                 + list(window) + [shape[-1]])
    out_strides = ([elem[0]] + [e * s for e, s in zip(elem[1:-1], strides)]
                   + elem[1:-1] + [elem[-1]])
    return mx.as_strided(x, out_shape, out_strides)


class _Pool(Module):
    def __init__(self, pooling_function, kernel_size, stride, padding, padding_value):
        super().__init__()
        name = type(self).__name__
        for what, vals in (("kernel_size", kernel_size), ("stride", stride)):
            if any(v <= 0 for v in vals):
                raise ValueError(f"[{name}] '{what}' must be positive but got {tuple(vals)}.")
        if any(p[0] < 0 for p in padding):
            raise ValueError(f"[{name}] 'padding' must be non-negative but got "
                             f"{tuple(p[0] for p in padding)}.")
        self._pooling_function = pooling_function
        self._kernel_size = kernel_size
        self._stride = stride
        self._padding = padding
        self._padding_value = padding_value
        self._axes = tuple(range(-len(kernel_size) - 1, -1, 1))

    def _extra_repr(self):
        return (f"kernel_size={tuple(self._kernel_size)}, stride={tuple(self._stride)}, "
                f"padding={tuple(p[0] for p in self._padding)}")

    def __call__(self, x):
        if any(p[0] > 0 for p in self._padding):
            x = mx.pad(x, [(0, 0)] + self._padding + [(0, 0)],
                       constant_values=self._padding_value)
        x = _sliding_windows(x, self._kernel_size, self._stride)
        return self._pooling_function(x, self._axes)


def _make_pool(n, word):
    class _PoolNd(_Pool):
        def __init__(self, pooling_function, padding_value, kernel_size, stride=None,
                     padding=0):
            name = type(self).__name__
            msg = ("[{}] '{}' must be an integer or a tuple containing 1 integer" if n == 1
                   else "[{}] '{}' must be an integer or a tuple containing %s integers" % word)
            kernel_size = _value_or_list(kernel_size, n, msg.format(name, "kernel_size"))
            stride = (kernel_size if stride is None
                      else _value_or_list(stride, n, msg.format(name, "stride")))
            padding = _value_or_list(padding, n, msg.format(name, "padding"))
            super().__init__(pooling_function, kernel_size, stride,
                             [(p, p) for p in padding], padding_value)
    return _PoolNd


_Pool1d = _make_pool(1, "1")
_Pool2d = _make_pool(2, "2")
_Pool3d = _make_pool(3, "3")


class MaxPool1d(_Pool1d):
    """Max pooling over ``(N, L, C)``; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size: Union[int, Tuple[int]],
                 stride: Optional[Union[int, Tuple[int]]] = None,
                 padding: Union[int, Tuple[int]] = 0):
        super().__init__(mx.max, -float("inf"), kernel_size, stride, padding)


class AvgPool1d(_Pool1d):
    """Average pooling over ``(N, L, C)`` (zero padding counts in the mean)."""

    def __init__(self, kernel_size: Union[int, Tuple[int]],
                 stride: Optional[Union[int, Tuple[int]]] = None,
                 padding: Union[int, Tuple[int]] = 0):
        super().__init__(mx.mean, 0, kernel_size, stride, padding)


class MaxPool2d(_Pool2d):
    def __init__(self, kernel_size: Union[int, Tuple[int, int]],
                 stride: Optional[Union[int, Tuple[int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int]]] = 0):
        super().__init__(mx.max, -float("inf"), kernel_size, stride, padding)


class AvgPool2d(_Pool2d):
    def __init__(self, kernel_size: Union[int, Tuple[int, int]],
                 stride: Optional[Union[int, Tuple[int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int]]] = 0):
        super().__init__(mx.mean, 0, kernel_size, stride, padding)


class MaxPool3d(_Pool3d):
    def __init__(self, kernel_size: Union[int, Tuple[int, int, int]],
                 stride: Optional[Union[int, Tuple[int, int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int, int]]] = 0):
        super().__init__(mx.max, -float("inf"), kernel_size, stride, padding)


class AvgPool3d(_Pool3d):
    def __init__(self, kernel_size: Union[int, Tuple[int, int, int]],
                 stride: Optional[Union[int, Tuple[int, int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int, int]]] = 0):
        super().__init__(mx.mean, 0, kernel_size, stride, padding)
