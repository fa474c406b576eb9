"""Normalisation layers: InstanceNorm, LayerNorm, RMSNorm, GroupNorm, BatchNorm."""

import rmx.core as mx
from rmx.nn.module import Module


def _check_eps(name, eps):
    if eps <= 0.0:
        raise ValueError(f"[{name}] 'eps' must be positive but got {eps}.")


class InstanceNorm(Module):
    """Normalises each channel of each sample over the spatial axes
    (inputs ``(N, ..., C)``), optionally with a learned affine map."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = False):
        super().__init__()
        _check_eps("InstanceNorm", eps)
        if affine:
            self.weight = mx.ones((dims,))
            self.bias = mx.zeros((dims,))
        self.dims = dims
        self.eps = eps

    def _extra_repr(self):
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x):
        if x.ndim < 3:
            raise ValueError(
                f"InstanceNorm expects inputs with at least 3 dimensions"
                f" (N, ..., C) but the input has {x.ndim} dimensions.")
        n, c = x.shape[0], x.shape[-1]
        spatial = x.shape[1:-1]
        y = mx.transpose(x, (0, x.ndim - 1, *range(1, x.ndim - 1)))
        y = mx.fast.layer_norm(y.reshape(n, c, -1), None, None, self.eps)
        y = mx.transpose(y.reshape(n, c, *spatial), (0, *range(2, len(spatial) + 2), 1))
        return (self.weight * y + self.bias) if "weight" in self else y


class LayerNorm(Module):
    """Normalises the last axis to zero mean / unit variance, then ``weight * x + bias``."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = True, bias: bool = True):
        super().__init__()
        _check_eps("LayerNorm", eps)
        if affine:
            self.weight = mx.ones((dims,))
            if bias:
                self.bias = mx.zeros((dims,))
        self.eps = eps
        self.dims = dims

    def _extra_repr(self):
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x):
        w = self.weight if "weight" in self else None
        b = self.bias if "bias" in self else None
        return mx.fast.layer_norm(x, w, b, self.eps)


class RMSNorm(Module):
    """``weight * x / sqrt(mean(x**2) + eps)`` over the last axis."""

    def __init__(self, dims: int, eps: float = 1e-5):
        super().__init__()
        _check_eps("RMSNorm", eps)
        self.weight = mx.ones((dims,))
        self.eps = eps

    def _extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}"

    def __call__(self, x):
        return mx.fast.rms_norm(x, self["weight"], self.eps)


class GroupNorm(Module):
    """Normalises groups of channels (last axis) of each sample."""

    def __init__(self, num_groups: int, dims: int, eps: float = 1e-5,
                 affine: bool = True, pytorch_compatible: bool = False):
        super().__init__()
        _check_eps("GroupNorm", eps)
        if num_groups <= 0:
            raise ValueError(
                f"The number of groups ({num_groups}) must be a positive integer.")
        if dims <= 0:
            raise ValueError(f"The number of features ({dims}) must be a positive integer.")
        if dims % num_groups != 0:
            raise ValueError(
                f"The number of features ({dims}) must be evenly divisible"
                f" by the number of groups ({num_groups}).")
        if affine:
            self.bias = mx.zeros((dims,))
            self.weight = mx.ones((dims,))
        self.num_groups = num_groups
        self.dims = dims
        self.eps = eps
        self.pytorch_compatible = pytorch_compatible

    def _extra_repr(self):
        return (f"{self.num_groups}, {self.dims}, eps={self.eps}, "
                f"affine={'weight' in self}, pytorch_compatible={self.pytorch_compatible}")

    def _pytorch_compatible_group_norm(self, x):
        g = self.num_groups
        batch, *rest, dims = x.shape
        gs = dims // g
        y = x.reshape(batch, -1, g, gs).transpose(0, 2, 1, 3).reshape(batch, g, -1)
        y = mx.fast.layer_norm(y, eps=self.eps, weight=None, bias=None)
        y = y.reshape(batch, g, -1, gs).transpose(0, 2, 1, 3)
        return y.reshape(batch, *rest, dims)

    def _group_norm(self, x):
        # Channel c belongs to group c % num_groups (MLX's default grouping).
        batch, *rest, dims = x.shape
        y = x.reshape(batch, -1, self.num_groups)
        mean = mx.mean(y, axis=1, keepdims=True)
        var = mx.var(y, axis=1, keepdims=True)
        y = (y - mean) * mx.rsqrt(var + self.eps)
        return y.reshape(batch, *rest, dims)

    def __call__(self, x):
        if self.pytorch_compatible:
            y = self._pytorch_compatible_group_norm(x)
        else:
            y = self._group_norm(x)
        return (self.weight * y + self.bias) if "weight" in self else y


class BatchNorm(Module):
    """Batch normalisation over all axes but the last (inputs of rank 2-4).
    Running statistics are tracked (frozen parameters) in training mode and
    used in eval mode."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        _check_eps("BatchNorm", eps)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = mx.ones((num_features,))
            self.bias = mx.zeros((num_features,))
        if track_running_stats:
            self.running_mean = mx.zeros((num_features,))
            self.running_var = mx.ones((num_features,))
            self.freeze(keys=["running_mean", "running_var"], recurse=False)

    def unfreeze(self, *args, **kwargs):
        super().unfreeze(*args, **kwargs)
        self.freeze(keys=["running_mean", "running_var"], recurse=False)
        return self

    def _extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={'weight' in self}, track_running_stats={self.track_running_stats}")

    def _calc_stats(self, x, ddof: int = 0):
        axes = tuple(range(x.ndim - 1))
        return mx.mean(x, axis=axes), mx.var(x, axis=axes, ddof=ddof)

    def __call__(self, x):
        if x.ndim < 2 or x.ndim > 4:
            raise ValueError(
                f"Expected input tensor to have 2, 3 or 4 dimensions, but got {x.ndim}")
        if self.training:
            count = 1
            for s in x.shape[:-1]:
                count *= s
            if count == 1:
                raise ValueError("BatchNorm training requires more than one value per channel.")
        mean, var = self._calc_stats(x)
        if self.training and self.track_running_stats:
            mu = self.momentum
            _, unbiased = self._calc_stats(x, ddof=1)
            self.running_mean = (1 - mu) * self.running_mean + mu * mean
            self.running_var = (1 - mu) * self.running_var + mu * unbiased
        elif self.track_running_stats:
            mean, var = self.running_mean, self.running_var
        y = (x - mean) * mx.rsqrt(var + self.eps)
        return (self.weight * y + self.bias) if "weight" in self else y
