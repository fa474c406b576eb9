"""rmx.core mirrors mlx.core: lazy arrays, ops, devices and streams."""

from rmx._rmx import *  # noqa: F401,F403
from rmx._rmx import _dtype_from_name  # noqa: F401
from rmx._rmx import array, bool_  # noqa: F401

# `where` is a Python keyword only as a statement; it is a valid attribute name.
from rmx._rmx import where  # noqa: F401

# Submodules: register them so `import rmx.core.random` works too. `random` wraps the
# Rust samplers around the key sequence kept in Python (`random.state`, for `compile`).
import sys as _sys  # noqa: E402
from rmx._rmx import fast, fft  # noqa: F401,E402
from rmx.core import _random as random  # noqa: E402

_sys.modules[__name__ + ".random"] = random
_sys.modules[__name__ + ".fft"] = fft
_sys.modules[__name__ + ".fast"] = fast

# MLX's alternative names for the same functions.
acos, acosh, asin, asinh, atan, atanh = arccos, arccosh, arcsin, arcsinh, arctan, arctanh  # noqa: F405
atan2 = arctan2  # noqa: F405
bitwise_left_shift, bitwise_right_shift = left_shift, right_shift  # noqa: F405
pow = power  # noqa: F405,A001


class DtypeCategory(__import__("enum").Enum):
    """Abstract dtype categories for ``issubdtype`` (as ``mlx.core.DtypeCategory``)."""

    complexfloating = 0
    floating = 1
    inexact = 2
    signedinteger = 3
    unsignedinteger = 4
    integer = 5
    number = 6
    generic = 7

    def __repr__(self):
        return f"DtypeCategory.{self.name}"


complexfloating = DtypeCategory.complexfloating
floating = DtypeCategory.floating
inexact = DtypeCategory.inexact
signedinteger = DtypeCategory.signedinteger
unsignedinteger = DtypeCategory.unsignedinteger
integer = DtypeCategory.integer
number = DtypeCategory.number
generic = DtypeCategory.generic


class printoptions:  # noqa: N801 - MLX's name
    """Context manager setting print options temporarily: ``with mx.printoptions(precision=3):``."""

    def __init__(self, precision=-1):
        self.precision = precision

    def __enter__(self):
        self._saved = get_printoptions().precision  # noqa: F405
        set_printoptions(precision=self.precision)  # noqa: F405
        return self

    def __exit__(self, *exc):
        set_printoptions(precision=self._saved)  # noqa: F405
        return False

from rmx.core._compile import compile, disable_compile, enable_compile, set_compile_mode  # noqa: E402,F401
from rmx.core._export import FunctionExporter, export_function, exporter, import_function  # noqa: E402,F401
from rmx.core._transforms import (  # noqa: E402,F401
    checkpoint, custom_function, grad, jvp, value_and_grad, vjp, vmap)

# Array-API names (the same function objects, as in MLX), DLPack import and the
# single-process `distributed` submodule.
cumulative_sum, cumulative_prod = cumsum, cumprod  # noqa: F405
from rmx.core._dlpack import from_dlpack  # noqa: E402,F401
from rmx.core import _distributed as distributed  # noqa: E402

_sys.modules[__name__ + ".distributed"] = distributed
# mlx.core.linalg (`matrix_norm` is MLX's top-level alias of linalg.norm, set in Rust).
from rmx._rmx import linalg  # noqa: E402,F401

_sys.modules[__name__ + ".linalg"] = linalg
