"""fft.stft / fft.istft against MLX 0.32.4 and a NumPy float64 reference (framing,
centring and padding modes, windows shorter than n_fft, norms, one-sided and complex
inputs, batches), the istft(stft(x)) round trip, errors, grad and vmap."""

import numpy as np
import pytest

from diff import A, REF, check, check_raises, get_rmx, rand


def _win(window, wl, n_fft):
    w = np.ones(wl) if window is None else np.asarray(window, np.float64)
    left = (n_fft - len(w)) // 2
    return np.pad(w, (left, n_fft - len(w) - left))


def np_stft(x, n_fft=2048, hop_length=None, win_length=None, window=None, center=True,
            pad_mode="reflect", norm="backward", onesided=None):
    x = np.asarray(x)
    hop = hop_length or n_fft // 4
    wl = win_length if win_length is not None else n_fft
    if onesided is None:
        onesided = not np.iscomplexobj(x)
    if center:
        p = n_fft // 2
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(p, p)], mode=pad_mode)
    t = 1 + (x.shape[-1] - n_fft) // hop
    idx = np.arange(t)[:, None] * hop + np.arange(n_fft)
    fr = x[..., idx] * _win(window, wl, n_fft)
    if onesided:
        f = np.fft.rfft(fr.real, axis=-1, norm=norm)
    else:
        f = np.fft.fft(fr, axis=-1, norm=norm)
    return np.swapaxes(f, -1, -2)


def np_istft(s, n_fft=None, hop_length=None, win_length=None, window=None, center=True,
             norm="backward", onesided=True, length=None):
    s = np.asarray(s)
    nf = s.shape[-2]
    n_fft = n_fft or (2 * (nf - 1) if onesided else nf)
    hop = hop_length or n_fft // 4
    wl = win_length if win_length is not None else n_fft
    fr = np.swapaxes(s, -1, -2)
    if onesided:
        y = np.fft.irfft(fr, n=n_fft, axis=-1, norm=norm)
    else:
        y = np.fft.ifft(fr, n=n_fft, axis=-1, norm=norm).real
    w = _win(window, wl, n_fft)
    y = y * w
    t = y.shape[-2]
    total = n_fft + hop * (t - 1)
    out = np.zeros(y.shape[:-2] + (total,))
    env = np.zeros(total)
    for i in range(t):
        out[..., i * hop:i * hop + n_fft] += y[..., i, :]
        env[i * hop:i * hop + n_fft] += w * w
    out = out / np.where(env > 1e-11, env, 1)
    start = n_fft // 2 if center else 0
    if length is not None:
        out = out[..., start:start + length]
        if out.shape[-1] < length:
            out = np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])])
    elif center:
        out = out[..., start:total - start]
    return out


X = rand((100,), "float32", seed=0)
HANN16 = np.hanning(16).astype(np.float32)

STFT_CASES = [
    dict(n_fft=16), dict(n_fft=16, center=False), dict(n_fft=15), dict(n_fft=17, hop_length=3),
    dict(n_fft=16, hop_length=5, win_length=10, window=np.hanning(10).astype(np.float32)),
    dict(n_fft=16, window=np.ones(10, np.float32)), dict(n_fft=16, win_length=7),
    dict(n_fft=16, win_length=0), dict(n_fft=16, window=HANN16), dict(n_fft=16, onesided=False),
    dict(n_fft=16, norm="ortho"), dict(n_fft=16, norm="forward"),
    dict(n_fft=16, pad_mode="edge"), dict(n_fft=16, pad_mode="constant"),
    dict(n_fft=100, hop_length=100), dict(n_fft=8, hop_length=20), dict(n_fft=4),
    dict(n_fft=16, win_length=8, window=np.ones(10, np.float32)),
]


def _kw(m, kw):
    return {k: (m.array(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}


@pytest.mark.parametrize("kw", STFT_CASES, ids=lambda k: ",".join(
    f"{a}={b if not isinstance(b, np.ndarray) else len(b)}" for a, b in k.items()))
def test_stft_matches_mlx_and_numpy(kw):
    check(lambda m, a: m.fft.stft(a, **_kw(m, kw)), A(X), rtol=1e-4, atol=1e-4,
          np_fn=lambda a: np_stft(a, **kw), np_rtol=1e-4, np_atol=1e-4)


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64", "int32",
                                "complex64"])
def test_stft_dtypes(dt):
    x = A(rand((64,), dt, seed=1), dt)
    check(lambda m, a: m.fft.stft(a, 16), x, rtol=1e-3, atol=1e-3)
    check(lambda m, a: m.fft.stft(a, 16, onesided=True), x, rtol=1e-3, atol=1e-3)
    check(lambda m, a: m.fft.stft(a, 16, window=m.hanning(16).astype(m.float16)), x,
          rtol=1e-3, atol=1e-3)


def test_stft_batches_views_short_inputs():
    check(lambda m, a: m.fft.stft(a, 16), A(rand((2, 3, 50), "float32", seed=2)),
          rtol=1e-4, atol=1e-4)
    check(lambda m, a: m.fft.stft(a, 8), A(rand((40, 3), "float32", seed=3), view=lambda v: v.T),
          rtol=1e-4, atol=1e-4)
    # reflect padding wider than the signal reflects repeatedly (as NumPy)
    check(lambda m, a: m.fft.stft(a, 16), A(X[:5]), rtol=1e-4, atol=1e-4,
          np_fn=lambda a: np_stft(a, 16), np_rtol=1e-4, np_atol=1e-4)
    check(lambda m, a: m.fft.stft(a, 16), A(X[:8]), rtol=1e-4, atol=1e-4)
    check(lambda m, a: m.fft.stft(a, 16, window=m.ones(16, m.complex64)), A(X),
          rtol=1e-4, atol=1e-4)


def test_stft_errors():
    x = A(X)
    check_raises(lambda m, a: m.fft.stft(a, 0), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, -3), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 2), x, err=ValueError)  # hop = 2 // 4 = 0
    check_raises(lambda m, a: m.fft.stft(a, 16, hop_length=0), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, hop_length=-2), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, win_length=17), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, win_length=-1), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, window=m.ones(20)), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, window=m.ones((16, 1))), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, pad_mode="zeros"), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16, norm="bad"), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a[:5], 16, center=False), x, err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16), A(np.float32(1.0)), err=ValueError)
    check_raises(lambda m, a: m.fft.stft(a, 16), A(np.zeros((3, 0), np.float32)),
                 err=ValueError)
    # an invalid pad mode is only looked at when centring, as in MLX
    check(lambda m, a: m.fft.stft(a, 16, center=False, pad_mode="bad"), x, rtol=1e-4,
          atol=1e-4)


def _S(window=HANN16, n_fft=16, **kw):
    return np_stft(X, n_fft, window=window, **kw).astype(np.complex64)


ISTFT_CASES = [
    (dict(), dict()), (dict(), dict(window=HANN16)),
    (dict(), dict(window=HANN16, length=100)), (dict(), dict(window=HANN16, center=False)),
    (dict(), dict(center=False)), (dict(), dict(length=120)), (dict(), dict(length=0)),
    (dict(), dict(length=-1)), (dict(), dict(length=-1, center=False)),
    (dict(norm="ortho"), dict(norm="ortho", window=HANN16)),
    (dict(), dict(hop_length=3, window=HANN16)), (dict(), dict(n_fft=15)),
    (dict(), dict(n_fft=40)), (dict(), dict(n_fft=8)), (dict(), dict(hop_length=20)),
    (dict(onesided=False), dict(onesided=False, window=HANN16)),
    (dict(), dict(onesided=False)), (dict(), dict(win_length=10)),
]


@pytest.mark.parametrize("skw,ikw", ISTFT_CASES, ids=lambda k: ",".join(
    f"{a}={b if not isinstance(b, np.ndarray) else len(b)}" for a, b in k.items()) or "-")
def test_istft_matches_mlx_and_numpy(skw, ikw):
    s = _S(**skw)
    check(lambda m, a: m.fft.istft(a, **_kw(m, ikw)), A(s), rtol=1e-4, atol=1e-4,
          np_fn=lambda a: np_istft(a, **ikw), np_rtol=1e-4, np_atol=1e-4)


def test_istft_dtypes_and_batches():
    s = A(_S())
    check(lambda m, a: m.fft.istft(a.real), s, rtol=1e-4, atol=1e-4)
    check(lambda m, a: m.fft.istft(a, window=m.ones(16, m.float16)), s, rtol=1e-4, atol=1e-4)
    check(lambda m, a: m.fft.istft(a, window=m.ones(16, m.float64)), s, rtol=1e-4, atol=1e-4)
    b = np_stft(rand((2, 3, 60), "float32", seed=4), 16).astype(np.complex64)
    check(lambda m, a: m.fft.istft(a), A(b), rtol=1e-4, atol=1e-4)
    check(lambda m, a: m.fft.istft(a), A(np.ones((9, 26), np.int32)), rtol=1e-4, atol=1e-4)


def test_istft_errors():
    s = A(_S())
    check_raises(lambda m, a: m.fft.istft(a, 0), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, -4), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, hop_length=0), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, win_length=17), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, win_length=-1), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, window=m.ones(20)), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, window=m.ones((4, 4))), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a, norm="x"), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a[:1]), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a[:, :0]), s, err=ValueError)
    check_raises(lambda m, a: m.fft.istft(a[0]), s, err=ValueError)


@pytest.mark.parametrize("n_fft,hop,window", [(16, None, "hann"), (16, 4, None), (15, 5, "hann"),
                                              (64, 16, "hann"), (32, 8, "hamming")])
def test_round_trip(n_fft, hop, window):
    rx = get_rmx()
    x = rx.array(rand((2, 300), "float32", seed=5))
    w = None if window is None else getattr(rx, {"hann": "hanning"}.get(window, window))(n_fft)
    s = rx.fft.stft(x, n_fft, hop_length=hop, window=w)
    y = rx.fft.istft(s, n_fft, hop_length=hop, window=w, length=300)
    np.testing.assert_allclose(np.array(y), np.array(x), rtol=1e-4, atol=1e-4)


def test_grad_and_vmap():
    x = A(X)
    check(lambda m, a: m.grad(lambda y: m.abs(m.fft.stft(y, 16)).sum())(a), x,
          rtol=1e-3, atol=1e-3)
    s = A(_S())
    check(lambda m, a: m.grad(lambda y: (m.fft.istft(y, window=m.hanning(16)) ** 2).sum())(a), s,
          rtol=1e-3, atol=1e-3)
    rx = get_rmx()
    # vmap: MLX raises (as_strided has no vmap); rmx maps, matching a loop
    xb = rand((3, 100), "float32", seed=6)
    v = rx.vmap(lambda y: rx.fft.stft(y, 16))(rx.array(xb))
    loop = np.stack([np.array(rx.fft.stft(rx.array(r), 16)) for r in xb])
    np.testing.assert_allclose(np.array(v), loop, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        REF.vmap(lambda y: REF.fft.stft(y, 16))(REF.array(xb))
    sb = np.stack([_S(), _S() * 2])
    v = rx.vmap(lambda y: rx.fft.istft(y))(rx.array(sb))
    loop = np.stack([np.array(rx.fft.istft(rx.array(r))) for r in sb])
    np.testing.assert_allclose(np.array(v), loop, rtol=1e-5, atol=1e-5)


def test_grad_against_finite_differences():
    rx = get_rmx()
    x0 = rand((40,), "float64", seed=7)
    w = np.random.default_rng(8).standard_normal((9, 9))  # 9 bins x 9 frames

    def f(lib, v):
        return lib.sum(lib.real(lib.fft.stft(v, 16, hop_length=5)) * lib.array(w.astype(np.float32)))

    g = np.array(rx.grad(lambda v: f(rx, v))(rx.array(x0.astype(np.float32))))
    eps = 1e-2
    fd = np.zeros_like(x0)
    for i in range(len(x0)):
        e = np.zeros_like(x0)
        e[i] = eps
        hi = f(rx, rx.array((x0 + e).astype(np.float32))).item()
        lo = f(rx, rx.array((x0 - e).astype(np.float32))).item()
        fd[i] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-2, atol=1e-2)
