"""Activation functions and their module wrappers, as ``mlx.nn``'s."""

import math

import rmx.core as mx
from rmx.nn.module import Module


def sigmoid(x):
    """Element-wise logistic sigmoid ``1 / (1 + exp(-x))``."""
    return mx.sigmoid(x)


def relu(x):
    """Rectified linear unit ``max(x, 0)``."""
    return mx.maximum(x, 0)


def relu2(x):
    """Squared ReLU ``max(x, 0) ** 2``."""
    return mx.square(mx.maximum(x, 0))


relu_squared = relu2


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return mx.minimum(mx.maximum(x, 0), 6.0)


def leaky_relu(x, negative_slope=0.01):
    """``max(negative_slope * x, x)``."""
    return mx.maximum(negative_slope * x, x)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis`` (max-shifted for stability)."""
    x = x - mx.stop_gradient(mx.max(x, axis=axis, keepdims=True))
    return x - mx.logsumexp(x, axis=axis, keepdims=True)


def elu(x, alpha=1.0):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return mx.where(x > 0, x, alpha * (mx.exp(x) - 1))


def softmax(x, axis=-1):
    return mx.softmax(x, axis=axis)


def softmin(x, axis=-1):
    return mx.softmax(-x, axis=axis)


def softplus(x):
    """``log(1 + exp(x))``."""
    return mx.logaddexp(x, 0)


def softsign(x):
    """``x / (1 + |x|)``."""
    return mx.divide(x, 1 + mx.abs(x))


def softshrink(x, lambd: float = 0.5):
    """``x - sign(x) * lambd`` where ``|x| > lambd``, else 0."""
    return mx.where(mx.abs(x) > lambd, x - mx.sign(x) * lambd, 0)


def celu(x, alpha=1.0):
    """``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``."""
    return mx.maximum(x, 0.0) + alpha * (mx.exp(mx.minimum(x, 0.0) / alpha) - 1)


def silu(x):
    """``x * sigmoid(x)``."""
    return x * mx.sigmoid(x)


def log_sigmoid(x):
    """``-softplus(-x)``."""
    return -softplus(-x)


def gelu(x):
    """Exact GELU ``x * (1 + erf(x / sqrt(2))) / 2``."""
    return x * (1 + mx.erf(x / math.sqrt(2))) / 2


def gelu_approx(x):
    """tanh approximation of GELU."""
    return 0.5 * x * (1 + mx.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_fast_approx(x):
    """Sigmoid approximation of GELU ``x * sigmoid(1.702 x)``."""
    return x * mx.sigmoid(1.702 * x)


def glu(x, axis: int = -1):
    """Gated linear unit: splits ``x`` in halves ``a, b`` along ``axis``; ``a * sigmoid(b)``."""
    a, b = mx.split(x, indices_or_sections=2, axis=axis)
    return a * mx.sigmoid(b)


def step(x, threshold: float = 0.0):
    """1 where ``x >= threshold``, else 0."""
    return mx.where(x >= threshold, 1, 0)


def selu(x):
    """Scaled ELU ``1.0507 * elu(x, 1.67326)``."""
    return elu(x, 1.67326) * 1.0507


def prelu(x, alpha):
    """``max(0, x) + alpha * min(0, x)``."""
    return mx.maximum(0, x) + alpha * mx.minimum(0, x)


def mish(x):
    """``x * tanh(softplus(x))``."""
    return x * mx.tanh(softplus(x))


def hardswish(x):
    """``x * min(max(x + 3, 0), 6) / 6``."""
    return x * mx.minimum(mx.maximum(x + 3, 0), 6) / 6


def hard_tanh(x, min_val=-1.0, max_val=1.0):
    return mx.minimum(mx.maximum(x, min_val), max_val)


def hard_shrink(x, lambd=0.5):
    return mx.where(mx.abs(x) > lambd, x, 0)


def tanh(x):
    return mx.tanh(x)


def _simple(name, fn, doc):
    def __call__(self, x):
        return fn(x)

    return type(name, (Module,), {"__call__": __call__, "__doc__": doc,
                                  "__module__": __name__})


Sigmoid = _simple("Sigmoid", sigmoid, "Applies :func:`sigmoid`.")
Mish = _simple("Mish", mish, "Applies :func:`mish`.")
ReLU = _simple("ReLU", relu, "Applies :func:`relu`.")
ReLU2 = _simple("ReLU2", relu2, "Applies :func:`relu2`.")
ReLU6 = _simple("ReLU6", relu6, "Applies :func:`relu6`.")
Softmax = _simple("Softmax", softmax, "Applies :func:`softmax` on the last axis.")
Softmin = _simple("Softmin", softmin, "Applies :func:`softmin` on the last axis.")
Softplus = _simple("Softplus", softplus, "Applies :func:`softplus`.")
Softsign = _simple("Softsign", softsign, "Applies :func:`softsign`.")
SiLU = _simple("SiLU", silu, "Applies :func:`silu`.")
LogSoftmax = _simple("LogSoftmax", log_softmax, "Applies :func:`log_softmax`.")
LogSigmoid = _simple("LogSigmoid", log_sigmoid, "Applies :func:`log_sigmoid`.")
Tanh = _simple("Tanh", tanh, "Applies :func:`tanh`.")
Hardswish = _simple("Hardswish", hardswish, "Applies :func:`hardswish`.")
SELU = _simple("SELU", selu, "Applies :func:`selu`.")
HardTanh = _simple("HardTanh", hard_tanh, "Applies :func:`hard_tanh`.")


class GLU(Module):
    """Applies :func:`glu` along ``axis``."""

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def __call__(self, x):
        return glu(x=x, axis=self.axis)


class LeakyReLU(Module):
    def __init__(self, negative_slope=1e-2):
        super().__init__()
        self._negative_slope = negative_slope

    def __call__(self, x):
        return leaky_relu(x, self._negative_slope)


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self._alpha = alpha

    def __call__(self, x):
        return elu(x, self._alpha)


class CELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self._alpha = alpha

    def __call__(self, x):
        return celu(x, self._alpha)


class Softshrink(Module):
    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def __call__(self, x):
        return softshrink(x, self.lambd)


class HardShrink(Module):
    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def __call__(self, x):
        return hard_shrink(x, self.lambd)


class PReLU(Module):
    """Parametric ReLU with a learnable ``weight`` of ``num_parameters`` slopes."""

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.weight = mx.full([num_parameters], init)

    def __call__(self, x):
        return prelu(x, self.weight)


class GELU(Module):
    """GELU; ``approx`` is one of ``'none'``, ``'precise'``/``'tanh'`` or ``'fast'``."""

    def __init__(self, approx="none"):
        super().__init__()
        allowed = ["none", "precise", "tanh", "fast"]
        if approx not in allowed:
            raise ValueError(
                f"The approximation should be in {allowed} but '{approx}' was given")
        self._approx = approx

    def __call__(self, x):
        if self._approx == "none":
            return gelu(x)
        if self._approx in ("precise", "tanh"):
            return gelu_approx(x)
        return gelu_fast_approx(x)


class Step(Module):
    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = threshold

    def __call__(self, x):
        return step(x, self.threshold)
