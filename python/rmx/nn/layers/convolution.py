"""Convolution layers (channels-last, as MLX) and their transposes."""

import math
from typing import Union

import rmx.core as mx
from rmx.nn.module import Module


def _tuple(v, n):
    return (v,) * n if isinstance(v, int) else v


def _prod(xs):
    p = 1
    for x in xs:
        p *= x
    return p


class _ConvBase(Module):
    def _init_weight(self, in_per_group, out_channels, kernel_size, bias):
        s = math.sqrt(1 / (in_per_group * _prod(kernel_size)))
        self.weight = mx.random.uniform(low=-s, high=s,
                                        shape=(out_channels, *kernel_size, in_per_group))
        if bias:
            self.bias = mx.zeros((out_channels,))

    def _finish(self, y):
        if "bias" in self:
            y = y + self.bias
        return y


class Conv1d(_ConvBase):
    """1-D convolution over ``(N, L, C_in)`` inputs; weight ``(C_out, K, C_in/groups)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1,
                 bias: bool = True):
        super().__init__()
        if in_channels % groups != 0:
            raise ValueError(
                f"The number of input channels ({in_channels}) must be "
                f"divisible by the number of groups ({groups})")
        self._init_weight(in_channels // groups, out_channels, (kernel_size,), bias)
        self.padding = padding
        self.dilation = dilation
        self.stride = stride
        self.groups = groups

    def _extra_repr(self):
        return (f"{self.weight.shape[-1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[1]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={'bias' in self}")

    def __call__(self, x):
        return self._finish(mx.conv1d(x, self.weight, self.stride, self.padding,
                                      self.dilation, self.groups))


class Conv2d(_ConvBase):
    """2-D convolution over ``(N, H, W, C_in)`` inputs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        if in_channels % groups != 0:
            raise ValueError(
                f"The number of input channels ({in_channels}) must be "
                f"divisible by the number of groups ({groups})")
        kernel_size, stride, padding = (_tuple(v, 2) for v in (kernel_size, stride, padding))
        self._init_weight(in_channels // groups, out_channels, kernel_size, bias)
        self.padding = padding
        self.stride = stride
        self.dilation = dilation
        self.groups = groups

    def _extra_repr(self):
        return (f"{self.weight.shape[-1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[1:3]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={'bias' in self}")

    def __call__(self, x):
        return self._finish(mx.conv2d(x, self.weight, self.stride, self.padding,
                                      self.dilation, self.groups))


class Conv3d(_ConvBase):
    """3-D convolution over ``(N, D, H, W, C_in)`` inputs."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, bias: bool = True):
        super().__init__()
        kernel_size, stride, padding = (_tuple(v, 3) for v in (kernel_size, stride, padding))
        self._init_weight(in_channels, out_channels, kernel_size, bias)
        self.padding = padding
        self.stride = stride
        self.dilation = dilation

    def _extra_repr(self):
        return (f"{self.weight.shape[-1]}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[1:4]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"bias={'bias' in self}")

    def __call__(self, x):
        return self._finish(mx.conv3d(x, self.weight, self.stride, self.padding,
                                      self.dilation))


class _ConvTransposeBase(_ConvBase):
    _n = 1
    _op = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, output_padding=0, bias=True):
        super().__init__()
        n = self._n
        if n > 1:
            kernel_size, stride, padding, output_padding = (
                _tuple(v, n) for v in (kernel_size, stride, padding, output_padding))
            ks = kernel_size
        else:
            ks = (kernel_size,)
        self._init_weight(in_channels, out_channels, ks, bias)
        self.padding = padding
        self.dilation = dilation
        self.stride = stride
        self.output_padding = output_padding

    def _extra_repr(self):
        ks = self.weight.shape[1] if self._n == 1 else self.weight.shape[1:1 + self._n]
        return (f"{self.weight.shape[-1]}, {self.weight.shape[0]}, "
                f"kernel_size={ks}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"output_padding={self.output_padding}, bias={'bias' in self}")

    def __call__(self, x):
        op = getattr(mx, f"conv_transpose{self._n}d")
        return self._finish(op(x, self.weight, self.stride, self.padding, self.dilation,
                               self.output_padding))


class ConvTranspose1d(_ConvTransposeBase):
    """Transposed 1-D convolution; weight ``(C_out, K, C_in)``."""

    _n = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, dilation: int = 1,
                 output_padding: int = 0, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         dilation, output_padding, bias)


class ConvTranspose2d(_ConvTransposeBase):
    """Transposed 2-D convolution; weight ``(C_out, KH, KW, C_in)``."""

    _n = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         dilation, output_padding, bias)


class ConvTranspose3d(_ConvTransposeBase):
    """Transposed 3-D convolution; weight ``(C_out, KD, KH, KW, C_in)``."""

    _n = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding,
                         dilation, output_padding, bias)
