"""Quantized layers (via ``mx.quantize`` / ``mx.dequantize`` / ``mx.quantized_matmul``)
and ``nn.quantize``."""

import math
from typing import Callable, Optional, Union

import rmx.core as mx
from rmx.nn.module import Module
from rmx.utils import tree_map_with_path

_MODE_DEFAULTS = {"affine": (64, 4), "mxfp4": (32, 4), "nvfp4": (16, 4), "mxfp8": (32, 8)}


def _defaults_for_mode(mode, group_size, bits):
    if mode not in _MODE_DEFAULTS:
        raise ValueError(f"Invalid quantization mode '{mode}'. "
                         f"Valid modes are: {', '.join(_MODE_DEFAULTS)}.")
    g, b = _MODE_DEFAULTS[mode]
    return group_size or g, bits or b


def quantize(model: Module, group_size: int = None, bits: int = None, *,
             mode: str = "affine", quantize_input: bool = False,
             class_predicate: Optional[Callable[[str, Module], Union[bool, dict]]] = None):
    """Replaces (in place) the leaf modules selected by ``class_predicate(path,
    module)`` (default: those with ``to_quantized``) by their quantized
    versions.  The predicate may return a dict of ``to_quantized`` arguments."""
    class_predicate = class_predicate or (lambda _, m: hasattr(m, "to_quantized"))

    def maybe(path, m):
        sel = class_predicate(path, m)
        if not sel:
            return m
        if not hasattr(m, "to_quantized"):
            raise ValueError(f"Unable to quantize model of type {type(m)}")
        if isinstance(sel, bool):
            kw = {"group_size": group_size, "bits": bits, "mode": mode}
            if quantize_input:
                kw["quantize_input"] = quantize_input
            return m.to_quantized(**kw)
        if isinstance(sel, dict):
            if "quantize_input" in sel and not sel["quantize_input"]:
                sel.pop("quantize_input")
            return m.to_quantized(**sel)
        raise ValueError("``class_predicate`` must return a bool"
                         " or a dict of parameters to pass to ``to_quantized``")

    leaves = tree_map_with_path(maybe, model.leaf_modules(), is_leaf=Module.is_module)
    model.update_modules(leaves)


def _set_quantized(layer, w, group_size, bits, mode):
    layer.weight, layer.scales, *biases = mx.quantize(w, group_size, bits, mode=mode)
    layer.biases = biases[0] if biases else None


class QuantizedEmbedding(Module):
    """An :class:`Embedding` whose table is stored quantized (frozen)."""

    def __init__(self, num_embeddings: int, dims: int, group_size: int = None,
                 bits: int = None, mode: str = "affine"):
        super().__init__()
        self.group_size, self.bits = _defaults_for_mode(mode, group_size, bits)
        self.mode = mode
        w = mx.random.normal(shape=(num_embeddings, dims), scale=math.sqrt(1 / dims))
        _set_quantized(self, w, group_size, bits, mode)
        self.num_embeddings = num_embeddings
        self.dims = dims
        self.freeze()

    def __call__(self, x):
        b = self.get("biases")
        return mx.dequantize(self["weight"][x], scales=self["scales"][x],
                             biases=b[x] if b is not None else None,
                             group_size=self.group_size, bits=self.bits, mode=self.mode)

    def as_linear(self, x):
        return mx.quantized_matmul(x, self["weight"], scales=self["scales"],
                                   biases=self.get("biases"), transpose=True,
                                   group_size=self.group_size, bits=self.bits,
                                   mode=self.mode)

    def _extra_repr(self):
        return (f"{self.num_embeddings}, {self.dims}, group_size={self.group_size}, "
                f"bits={self.bits}, mode={self.mode}")

    @classmethod
    def from_embedding(cls, embedding_layer: Module, group_size: int = None,
                       bits: int = None, mode: str = "affine"):
        n, dims = embedding_layer.weight.shape
        ql = cls(n, dims, group_size, bits, mode=mode)
        _set_quantized(ql, embedding_layer.weight, group_size, bits, mode)
        return ql


class QuantizedLinear(Module):
    """A :class:`Linear` whose weight is stored quantized.  The quantized
    weight, scales and biases are frozen; a bias copied by :meth:`from_linear`
    stays trainable (as in MLX)."""

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True,
                 group_size: int = None, bits: int = None, mode: str = "affine"):
        super().__init__()
        self.group_size, self.bits = _defaults_for_mode(mode, group_size, bits)
        self.mode = mode
        s = math.sqrt(1 / input_dims)
        w = mx.random.uniform(low=-s, high=s, shape=(output_dims, input_dims))
        _set_quantized(self, w, group_size, bits, mode)
        if bias:
            self.bias = mx.zeros((output_dims,))
        self.freeze()

    def _extra_repr(self):
        out_dims, in_dims = self.weight.shape
        in_dims = (in_dims * 32) // self.bits
        return (f"input_dims={in_dims}, output_dims={out_dims}, bias={'bias' in self}, "
                f"group_size={self.group_size}, bits={self.bits}, mode={self.mode}")

    def __call__(self, x):
        x = mx.quantized_matmul(x, self["weight"], scales=self["scales"],
                                biases=self.get("biases"), transpose=True,
                                group_size=self.group_size, bits=self.bits, mode=self.mode)
        if "bias" in self:
            x = x + self["bias"]
        return x

    @classmethod
    def from_linear(cls, linear_layer: Module, group_size: int = None, bits: int = None,
                    mode: str = "affine"):
        out_dims, in_dims = linear_layer.weight.shape
        ql = cls(in_dims, out_dims, False, group_size, bits, mode=mode)
        _set_quantized(ql, linear_layer.weight, group_size, bits, mode)
        if "bias" in linear_layer:
            ql.bias = linear_layer.bias
        return ql


class QQLinear(Module):
    """A linear layer that quantizes both its weight and its input
    (``mx.qqmm``; modes ``'nvfp4'``/``'mxfp8'``).  In training mode the weight
    is kept in full precision; ``eval()`` quantizes it, ``train()`` restores it."""

    def __init__(self, input_dims: int, output_dims: int, group_size: int = None,
                 bits: int = None, mode: str = "nvfp4"):
        super().__init__()
        self.group_size, self.bits = _defaults_for_mode(mode, group_size, bits)
        self.mode = mode
        s = math.sqrt(1 / input_dims)
        self.weight = mx.random.uniform(low=-s, high=s, shape=(output_dims, input_dims))
        self._quantized = False

    def _extra_repr(self):
        out_dims, in_dims = self.weight.shape
        if self.weight.dtype == mx.uint32:
            in_dims = (in_dims * 32) // self.bits
        return (f"input_dims={in_dims}, output_dims={out_dims}, "
                f"group_size={self.group_size}, bits={self.bits}, mode={self.mode}")

    def quantize(self):
        if not self._quantized:
            self.weight, self.scales = mx.quantize(self.weight, self.group_size, self.bits,
                                                   mode=self.mode)
            self._quantized = True

    def dequantize(self):
        if self._quantized:
            self.weight = mx.dequantize(self.weight, scales=self.scales,
                                        group_size=self.group_size, bits=self.bits,
                                        mode=self.mode)
            self.__delattr__("scales")
            self._quantized = False

    def _set_training_mode(self, mode: bool):
        super()._set_training_mode(mode)
        if self._training:
            self.dequantize()
        else:
            self.quantize()

    def __call__(self, x):
        return mx.qqmm(x, self["weight"], scales=self.get("scales"),
                       group_size=self.group_size, bits=self.bits, mode=self.mode)

    @classmethod
    def from_linear(cls, linear_layer: Module, group_size: int = None, bits: int = None,
                    mode: str = "nvfp4"):
        out_dims, in_dims = linear_layer.weight.shape
        if linear_layer.get("bias") is not None:
            raise NotImplementedError("QQLinear does not support bias yet.")
        ql = cls(in_dims, out_dims, group_size, bits, mode=mode)
        ql.weight = linear_layer.weight
        ql.train(linear_layer.training)
        return ql
