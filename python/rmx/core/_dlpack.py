"""``from_dlpack``: import any DLPack producer through NumPy's DLPack support.

MLX 0.32.4 on the CPU always copies (``copy=False`` raises its ValueError) and converts
like ``mx.array(numpy_array)`` (float64 becomes float32, complex128 complex64), so the
zero-copy NumPy view that ``numpy.from_dlpack`` gives is handed to ``array``.
"""

import numpy as _np

_SIGNATURE = (
    "from_dlpack(): incompatible function arguments. The following argument types are "
    "supported:\n    1. from_dlpack(x: DLPackCompatible, /, *, copy: bool | None = None) -> array"
)


def from_dlpack(x, /, *, copy=None):
    """Create an array from an object that supports DLPack (a copy, as MLX on the CPU)."""
    from rmx._rmx import array

    if isinstance(x, array):
        if copy is False:
            raise ValueError("[convert] Cannot import a CPU array without a copy.")
        return array(x)
    if not (hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")):
        raise TypeError(_SIGNATURE + f"\n\nInvoked with types: {type(x).__name__}")
    if copy is False:
        raise ValueError("[convert] Cannot import a CPU array without a copy.")
    device_type = x.__dlpack_device__()[0]
    if device_type != 1:  # kDLCPU
        raise ValueError(f"[from_dlpack] Unsupported DLPack device type {device_type}.")
    return array(_np.from_dlpack(x))
