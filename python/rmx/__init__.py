"""rmx: MLX's array framework rebuilt in Rust. Use ``import rmx.core as mx``."""

from . import core  # noqa: F401

__version__ = "0.1.0"
