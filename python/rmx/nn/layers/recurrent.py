"""Recurrent layers: RNN, GRU, LSTM (inputs ``(N, L, D)`` or ``(L, D)``)."""

import math
from typing import Callable, Optional

import rmx.core as mx
from rmx.nn.layers.activations import tanh
from rmx.nn.module import Module


def _uniform(scale, shape):
    return mx.random.uniform(low=-scale, high=scale, shape=shape)


class RNN(Module):
    """Elman RNN: ``h_t = nonlinearity(W_xh x_t + W_hh h_{t-1} + b)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: Optional[Callable] = None):
        super().__init__()
        self.nonlinearity = nonlinearity or tanh
        if not callable(self.nonlinearity):
            raise ValueError(f"Nonlinearity must be callable. Current value: {nonlinearity}.")
        s = 1.0 / math.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.Wxh = _uniform(s, (hidden_size, input_size))
        self.Whh = _uniform(s, (hidden_size, hidden_size))
        self.bias = _uniform(s, (hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wxh.shape[1]}, hidden_size={self.hidden_size}, "
                f"nonlinearity={self.nonlinearity}, bias={self.bias is not None}")

    def __call__(self, x, hidden=None):
        if self.bias is not None:
            x = mx.addmm(self.bias, x, self.Wxh.T)
        else:
            x = x @ self.Wxh.T
        outs = []
        for t in range(x.shape[-2]):
            xt = x[..., t, :]
            hidden = xt if hidden is None else mx.addmm(xt, hidden, self.Whh.T)
            hidden = self.nonlinearity(hidden)
            outs.append(hidden)
        return mx.stack(outs, axis=-2)


class GRU(Module):
    """Gated recurrent unit (gate order r, z, n; ``bhn`` is the hidden bias of n)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        s = 1.0 / math.sqrt(hidden_size)
        self.Wx = _uniform(s, (3 * hidden_size, input_size))
        self.Wh = _uniform(s, (3 * hidden_size, hidden_size))
        self.b = _uniform(s, (3 * hidden_size,)) if bias else None
        self.bhn = _uniform(s, (hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wx.shape[1]}, hidden_size={self.hidden_size}, "
                f"bias={self.b is not None}")

    def __call__(self, x, hidden=None):
        H = self.hidden_size
        x = mx.addmm(self.b, x, self.Wx.T) if self.b is not None else x @ self.Wx.T
        x_rz, x_n = x[..., :-H], x[..., -H:]
        outs = []
        for t in range(x.shape[-2]):
            rz = x_rz[..., t, :]
            if hidden is not None:
                hp = hidden @ self.Wh.T
                hp_rz, hp_n = hp[..., :-H], hp[..., -H:]
                if self.bhn is not None:
                    hp_n = hp_n + self.bhn
                rz = rz + hp_rz
            r, z = mx.split(mx.sigmoid(rz), 2, axis=-1)
            n = x_n[..., t, :]
            if hidden is not None:
                n = n + r * hp_n
            elif self.bhn is not None:
                n = n + r * self.bhn
            n = mx.tanh(n)
            hidden = (1 - z) * n + z * hidden if hidden is not None else (1 - z) * n
            outs.append(hidden)
        return mx.stack(outs, axis=-2)


class LSTM(Module):
    """Long short-term memory (gate order i, f, g, o); returns ``(hidden, cell)``
    sequences."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        s = 1.0 / math.sqrt(hidden_size)
        self.Wx = _uniform(s, (4 * hidden_size, input_size))
        self.Wh = _uniform(s, (4 * hidden_size, hidden_size))
        self.bias = _uniform(s, (4 * hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wx.shape[1]}, hidden_size={self.hidden_size}, "
                f"bias={self.bias is not None}")

    def __call__(self, x, hidden=None, cell=None):
        x = mx.addmm(self.bias, x, self.Wx.T) if self.bias is not None else x @ self.Wx.T
        hs, cs = [], []
        for t in range(x.shape[-2]):
            ifgo = x[..., t, :]
            if hidden is not None:
                ifgo = mx.addmm(ifgo, hidden, self.Wh.T)
            i, f, g, o = mx.split(ifgo, 4, axis=-1)
            i, f, g, o = mx.sigmoid(i), mx.sigmoid(f), mx.tanh(g), mx.sigmoid(o)
            cell = f * cell + i * g if cell is not None else i * g
            hidden = o * mx.tanh(cell)
            hs.append(hidden)
            cs.append(cell)
        return mx.stack(hs, axis=-2), mx.stack(cs, axis=-2)
