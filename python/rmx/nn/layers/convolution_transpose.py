"""Transposed convolutions (defined with the convolutions; MLX keeps them in
``mlx.nn.layers.convolution_transpose``)."""

from rmx.nn.layers.convolution import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
