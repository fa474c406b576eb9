"""Alias of :mod:`rmx.nn.module` (MLX keeps ``Module`` in ``mlx.nn.layers.base``)."""

from rmx.nn.module import Module  # noqa: F401
