"""Neural network layers, losses and initializers, mirroring ``mlx.nn``.

Port MLX code by replacing ``import mlx.nn as nn`` with ``import rmx.nn as nn``.
"""

from rmx.nn import init, losses  # noqa: F401
from rmx.nn.layers import *  # noqa: F401,F403
from rmx.nn.layers import (  # noqa: F401
    activations, base, containers, convolution, dropout, embedding, linear,
    normalization, pooling, positional_encoding, quantized, recurrent, transformer,
    upsample)
from rmx.nn.module import Module  # noqa: F401
from rmx.nn.utils import average_gradients, checkpoint, value_and_grad  # noqa: F401
from rmx.nn.layers import convolution_transpose  # noqa: F401
from rmx.nn import layers  # noqa: F401
