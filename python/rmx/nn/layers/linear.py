"""Identity, Linear and Bilinear layers."""

import math
from typing import Any, Optional

import rmx.core as mx
from rmx.nn.module import Module


class Identity(Module):
    """A placeholder that returns its input unchanged (arguments are ignored)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __call__(self, x):
        return x


class Linear(Module):
    """``y = x W^T + b`` with ``W`` of shape ``(output_dims, input_dims)``,
    initialised from ``U(-1/sqrt(input_dims), 1/sqrt(input_dims))``."""

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True) -> None:
        super().__init__()
        s = math.sqrt(1.0 / input_dims)
        self.weight = mx.random.uniform(low=-s, high=s, shape=(output_dims, input_dims))
        if bias:
            self.bias = mx.random.uniform(low=-s, high=s, shape=(output_dims,))

    def _extra_repr(self) -> str:
        return (f"input_dims={self.weight.shape[1]}, output_dims={self.weight.shape[0]}, "
                f"bias={'bias' in self}")

    def __call__(self, x):
        if "bias" in self:
            return mx.addmm(self["bias"], x, self["weight"].T)
        return x @ self["weight"].T

    def to_quantized(self, group_size: Optional[int] = None, bits: Optional[int] = None,
                     mode: str = "affine", quantize_input: bool = False):
        """The :class:`QuantizedLinear` equivalent of this layer."""
        from rmx.nn.layers.quantized import QQLinear, QuantizedLinear
        if quantize_input:
            if mode not in ("nvfp4", "mxfp8"):
                raise ValueError(
                    f"Quantized activations are only supported for 'nvfp4' and 'mxfp8' "
                    f"modes, got {mode}.")
            return QQLinear.from_linear(self, group_size, bits, mode)
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class Bilinear(Module):
    """``y_i = x_1^T W_i x_2 + b_i`` with ``W`` of shape
    ``(output_dims, input2_dims, input1_dims)``."""

    def __init__(self, input1_dims: int, input2_dims: int, output_dims: int,
                 bias: bool = True) -> None:
        super().__init__()
        s = math.sqrt(1.0 / input1_dims)
        self.weight = mx.random.uniform(low=-s, high=s,
                                        shape=(output_dims, input2_dims, input1_dims))
        if bias:
            self.bias = mx.random.uniform(low=-s, high=s, shape=(output_dims,))

    def _extra_repr(self) -> str:
        out, in2, in1 = self.weight.shape
        return (f"input1_dims={in1}, input2_dims={in2}, output_dims={out}, "
                f"bias={'bias' in self}")

    def __call__(self, x1, x2):
        out, in2, in1 = self.weight.shape
        lead = x1.shape[:-1]
        a = x1.reshape(-1, in1)
        b = x2.reshape(-1, 1, in2)
        # (N, out*in2) -> (N, in2, out), then contract with x2 over in2.
        y = a @ self.weight.reshape(out * in2, in1).T
        y = y.reshape(-1, out, in2).swapaxes(-2, -1)
        y = (b @ y).squeeze(1).reshape(*lead, out)
        if "bias" in self:
            y = y + self.bias
        return y
