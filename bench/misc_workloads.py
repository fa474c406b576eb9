"""Workloads for the smaller MLX names: unique, fft.stft/istft, to_fp8/from_fp8,
fast.cross_entropy (appended to `workloads.build`)."""

import numpy as np

from workloads import Workload


def _np_stft(x, n_fft, hop):
    t = 1 + (len(x) + 2 * (n_fft // 2) - n_fft) // hop
    xp = np.pad(x, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.as_strided(xp, (t, n_fft), (hop * 4, 4))
    return np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=-1).T


def _np_ce(logits, targets):
    m = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(-1)) + m[:, 0]
    return lse - np.take_along_axis(logits, targets[:, None].astype(np.int64), -1)[:, 0]


def build(quick):
    n = 1_000_000 if quick else 4_000_000
    sig = 1 << (17 if quick else 20)
    rows = 64 if quick else 512
    vocab = 32000
    w = [
        Workload(
            "unique", f"unique(x, size) {n / 1e6:g}M int32 (1000 distinct)",
            lambda rng: [rng.integers(0, 1000, n).astype(np.float32)],
            lambda mx, x: mx.unique(x, 1000, return_counts=True)[1],
            lambda x: np.unique(x, return_counts=True)[1],
            dtype="int32", work=("bytes", n * 4),
            note="counts output; NumPy: np.unique(return_counts=True)"),
        Workload(
            "stft", f"fft.stft {sig} f32, n_fft 512, hop 128, hann",
            lambda rng: [rng.uniform(-1, 1, sig).astype(np.float32)],
            lambda mx, x: mx.fft.stft(x, 512, 128, window=mx.hanning(512)),
            lambda x: _np_stft(x, 512, 128),
            work=("bytes", sig * 4 * 4 + sig * 4), tol=1e-3,
            note="NumPy: reflect pad, strided frames, rfft"),
        Workload(
            "istft", f"fft.istft of stft({sig}) n_fft 512, hop 128, hann",
            lambda rng: [rng.uniform(-1, 1, sig).astype(np.float32)],
            lambda mx, x: mx.fft.istft(mx.fft.stft(x, 512, 128, window=mx.hanning(512)),
                                       512, 128, window=mx.hanning(512)),
            None, work=("bytes", sig * 4 * 8), note="stft then istft (round trip)"),
        Workload(
            "to_fp8", f"to_fp8 {n / 1e6:g}M f32",
            lambda rng: [(rng.standard_normal(n) * 50).astype(np.float32)],
            lambda mx, x: mx.to_fp8(x), None, work=("bytes", n * 5)),
        Workload(
            "from_fp8", f"from_fp8(to_fp8(x)) {n / 1e6:g}M f32 -> bf16",
            lambda rng: [(rng.standard_normal(n) * 50).astype(np.float32)],
            lambda mx, x: mx.from_fp8(mx.to_fp8(x)), None, work=("bytes", n * 7)),
        Workload(
            "cross_entropy", f"fast.cross_entropy {rows}x{vocab} f32",
            lambda rng: [rng.uniform(-4, 4, (rows, vocab)).astype(np.float32),
                         rng.integers(0, vocab, rows).astype(np.float32)],
            lambda mx, l, t: mx.fast.cross_entropy(l, t.astype(mx.int32)),
            lambda l, t: _np_ce(l, t), work=("bytes", rows * vocab * 4),
            note="targets passed as float32 data, cast to int32"),
    ]
    return w
