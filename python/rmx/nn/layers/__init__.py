"""All layers of ``rmx.nn``."""

from rmx.nn.layers.activations import (  # noqa: F401
    CELU, ELU, GELU, GLU, SELU, HardShrink, Hardswish, HardTanh, LeakyReLU, LogSigmoid,
    LogSoftmax, Mish, PReLU, ReLU, ReLU2, ReLU6, Sigmoid, SiLU, Softmax, Softmin,
    Softplus, Softshrink, Softsign, Step, Tanh, celu, elu, gelu, gelu_approx,
    gelu_fast_approx, glu, hard_shrink, hard_tanh, hardswish, leaky_relu, log_sigmoid,
    log_softmax, mish, prelu, relu, relu2, relu6, relu_squared, selu, sigmoid, silu,
    softmax, softmin, softplus, softshrink, softsign, step, tanh)
from rmx.nn.layers.containers import Sequential  # noqa: F401
from rmx.nn.layers.convolution import (  # noqa: F401
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
from rmx.nn.layers.dropout import Dropout, Dropout2d, Dropout3d  # noqa: F401
from rmx.nn.layers.embedding import Embedding  # noqa: F401
from rmx.nn.layers.linear import Bilinear, Identity, Linear  # noqa: F401
from rmx.nn.layers.normalization import (  # noqa: F401
    BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RMSNorm)
from rmx.nn.layers.pooling import (  # noqa: F401
    AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d)
from rmx.nn.layers.positional_encoding import ALiBi, RoPE, SinusoidalPositionalEncoding  # noqa: F401
from rmx.nn.layers.quantized import (  # noqa: F401
    QQLinear, QuantizedEmbedding, QuantizedLinear, quantize)
from rmx.nn.layers.recurrent import GRU, LSTM, RNN  # noqa: F401
from rmx.nn.layers.transformer import (  # noqa: F401
    MultiHeadAttention, Transformer, TransformerDecoder, TransformerDecoderLayer,
    TransformerEncoder, TransformerEncoderLayer)
from rmx.nn.layers.upsample import Upsample  # noqa: F401
from rmx.nn.module import Module  # noqa: F401
