"""pytest configuration for the rmx differential suite (see diff.py)."""

import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_PYDIR = os.path.dirname(_HERE)  # python/ -- holds the rmx package source

sys.path.insert(0, _HERE)
if importlib.util.find_spec("rmx") is None and os.path.isdir(os.path.join(_PYDIR, "rmx")):
    sys.path.insert(0, _PYDIR)

import diff  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "mlx_quirk: parity with an MLX 0.32.4 behaviour that looks like a bug or an "
        "implementation limitation (enforced by default; deselect with -m 'not mlx_quirk')")


def pytest_report_header(config):
    import mlx.core

    if diff.REFERENCE_ONLY:
        return ("rmx differential suite: REFERENCE-ONLY MODE "
                "(RMX_TEST_REFERENCE_ONLY=1: 'rmx' side is mlx.core "
                f"{getattr(mlx.core, '__version__', '?')})")
    if diff._RMX is None:
        return f"rmx differential suite: rmx.core NOT importable: {diff._RMX_ERR!r}"
    return (f"rmx differential suite: rmx.core from "
            f"{getattr(diff._RMX, '__file__', '?')} vs mlx.core "
            f"{getattr(mlx.core, '__version__', '?')}")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _require_rmx():
    """Every test fails (never skips) when rmx.core cannot be imported."""
    diff.get_rmx()
