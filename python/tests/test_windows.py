"""hanning, hamming, bartlett, blackman: against MLX (float32, to the last few ulps of
sin/cos) and NumPy float64, every small M, non-positive M, argument types and stream."""

import numpy as np
import pytest

from diff import check, check_raises, get_rmx

WINDOWS = ["hanning", "hamming", "bartlett", "blackman"]


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("M", [-5, -1, 0, 1, 2, 3, 4, 5, 7, 16, 100, 1001, 4096])
def test_window_values(name, M):
    np_fn = getattr(np, name)
    # MLX's float32 formulas; rmx uses the same ones, so values agree to sin/cos ulps
    check(lambda m: getattr(m, name)(M), rtol=1e-6, atol=1e-6,
          np_fn=lambda: np_fn(M), np_rtol=1e-6, np_atol=1e-6)


@pytest.mark.parametrize("name", WINDOWS)
def test_window_exact_structure(name):
    rx = get_rmx()
    w = np.array(getattr(rx, name)(9))
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, w[::-1], atol=3e-7)  # symmetric up to sin/cos rounding
    assert w[4] == pytest.approx(1.0, abs=1e-7)
    if name in ("hanning", "bartlett", "blackman"):
        assert w.min() >= 0.0  # blackman is exactly 0 at the ends, as in MLX


@pytest.mark.parametrize("name", WINDOWS)
def test_window_bad_arguments(name):
    check_raises(lambda m: getattr(m, name)(2.5), err=TypeError)
    check_raises(lambda m: getattr(m, name)("3"), err=TypeError)
    check_raises(lambda m: getattr(m, name)(None), err=TypeError)


@pytest.mark.parametrize("name", WINDOWS)
def test_window_stream_and_keyword(name):
    check(lambda m: getattr(m, name)(M=6, stream=m.cpu), rtol=1e-6, atol=1e-6)
