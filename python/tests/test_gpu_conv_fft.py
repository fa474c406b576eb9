"""Convolution and FFT on the GPU (im2col + cuBLAS, cuFFT) against the CPU backend.

Skips where no GPU backend is available (CI has no GPU); see test_gpu.py.
"""

import numpy as np
import pytest

from gpu_util import (FLOATS, TOL, assert_close, dt, host, mx, on_gpu_natively, rand,  # noqa: F401
                      requires_gpu)

pytestmark = requires_gpu

CONV_CASES = [
    ((2, 9, 5), (4, 3, 5), {}),
    ((2, 9, 6), (6, 3, 2), dict(stride=2, padding=1, groups=3)),
    ((2, 8, 7, 3), (5, 3, 3, 3), dict(padding=1)),
    ((2, 8, 7, 3), (4, 2, 3, 3), dict(stride=(2, 1), kernel_dilation=(1, 2),
                                      input_dilation=(2, 1), padding=([1, 0], [2, 1]),
                                      flip=True)),
    ((2, 5, 5, 8), (4, 1, 1, 8), {}),
    ((1, 6, 6, 4), (8, 3, 3, 1), dict(groups=4, padding=2)),
    ((1, 4, 5, 6, 2), (3, 2, 2, 2, 2), dict(padding=1, stride=(1, 2, 1))),
    ((0, 5, 3), (2, 3, 3), {}),
    ((2, 3, 4), (2, 5, 4), dict(padding=1)),
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_runs_natively(case, dtype):
    xs, ws, kw = CONV_CASES[case]
    x = rand(xs, dtype, -1, 1, seed=70 + case)
    w = rand(ws, dtype, -1, 1, seed=80 + case)
    g = on_gpu_natively(lambda x, w, s: mx.conv_general(x, w, **kw, stream=s), x, w)
    c = mx.conv_general(x, w, **kw, stream=mx.cpu)
    assert g.shape == c.shape and g.dtype == c.dtype
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(host(g), host(c), rtol=rtol * 4, atol=atol * 20)


def test_conv_transpose_and_gradients_on_gpu():
    x = rand((2, 6, 6, 3), "float32", -1, 1, seed=90)
    w = rand((4, 3, 3, 3), "float32", -1, 1, seed=91)
    for fn in [
        lambda x, w, s: mx.conv_transpose2d(x, w[:, :, :, :3], stride=2, padding=1, stream=s),
        lambda x, w, s: mx.conv1d(x[:, 0], w[:, 0], stride=2, stream=s),
    ]:
        g = on_gpu_natively(fn, x, w)
        np.testing.assert_allclose(np.array(g), np.array(fn(x, w, mx.cpu)), rtol=1e-5, atol=1e-5)

    def loss(x, w):
        return mx.sum(mx.conv2d(x, w, stride=2, padding=1) ** 2)

    mx.set_default_device(mx.cpu)
    try:
        gc = mx.grad(loss, argnums=(0, 1))(x, w)
        mx.eval(gc)
    finally:
        mx.set_default_device(mx.gpu)
    gg = mx.grad(loss, argnums=(0, 1))(x, w)
    for a, b in zip(gg, gc):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-4)


FFT_CASES = [
    ("fft", (8, 16), {}),
    ("fft", (5, 12), dict(axis=0)),
    ("fft", (8, 16), dict(n=20)),
    ("fft", (8, 16), dict(n=10)),
    ("fft", (3, 1009), {}),
    ("ifft", (6, 10), {}),
    ("fft2", (4, 6, 10), {}),
    ("fftn", (3, 4, 5), dict(axes=(0, 2))),
    ("ifftn", (3, 4, 6), {}),
    ("rfft", (7, 16), {}),
    ("rfft", (6, 15), {}),
    ("rfft", (16, 6), dict(axis=0)),
    ("rfft2", (4, 6, 10), {}),
    ("rfftn", (3, 4, 8), {}),
    ("irfft", (7, 9), {}),
    ("irfft", (7, 9), dict(n=17)),
    ("irfft2", (4, 6, 6), {}),
    ("irfftn", (3, 4, 5), {}),
    ("fft", (1, 1 << 20), {}),
]


@pytest.mark.parametrize("case", range(len(FFT_CASES)))
def test_fft_runs_natively(case):
    name, shape, kw = FFT_CASES[case]
    r = np.random.default_rng(100 + case)
    real = name.startswith("rfft")
    x = r.standard_normal(shape).astype(np.float32)
    if not real:
        x = (x + 1j * r.standard_normal(shape)).astype(np.complex64)
    x = mx.array(x)
    fn = lambda x, s: getattr(mx.fft, name)(x, **kw, stream=s)  # noqa: E731
    g = on_gpu_natively(fn, x)
    c = fn(x, mx.cpu)
    assert g.shape == c.shape and g.dtype == c.dtype
    gn, cn = np.array(g), np.array(c)
    scale = np.abs(cn).max()
    np.testing.assert_allclose(gn, cn, rtol=1e-4, atol=1e-5 * scale)


def test_fft_of_a_real_strided_input_and_gradient():
    x = rand((6, 16), "float32", -1, 1, seed=110)
    for fn in [
        lambda x, s: mx.fft.fft(x[:, ::2], stream=s),
        lambda x, s: mx.fft.rfft(x.T, axis=0, stream=s),
    ]:
        g = on_gpu_natively(fn, x)
        np.testing.assert_allclose(np.array(g), np.array(fn(x, mx.cpu)), rtol=1e-4, atol=1e-4)

    def loss(x):
        return mx.sum(mx.fft.irfft(mx.fft.rfft(x) * 2.0))

    gg = mx.grad(loss)(x)
    mx.set_default_device(mx.cpu)
    try:
        gc = mx.grad(loss)(x)
        mx.eval(gc)
    finally:
        mx.set_default_device(mx.gpu)
    np.testing.assert_allclose(np.array(gg), np.array(gc), rtol=1e-4, atol=1e-4)
