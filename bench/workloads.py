"""The benchmark workloads (from the project issue).

Each workload has NumPy float32 inputs, one function written against the
mlx.core API (used for both rmx and MLX, which share it) and optionally a
NumPy function. `work` is what one run moves or computes, for the derived
rate column: ("bytes", n) -> GB/s, ("flops", n) -> GFLOP/s,
("ops", n) -> microseconds per op.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


@dataclass
class Workload:
    key: str
    name: str
    inputs: Callable  # rng -> list of float32 NumPy arrays
    mx_fn: Optional[Callable]  # (mx module, *inputs) -> lazy output
    np_fn: Optional[Callable]  # (*inputs) -> NumPy output
    work: tuple = None
    dtype: str = "float32"  # dtype the mx libraries cast their inputs to
    note: str = ""
    tol: float = 1e-3  # max |rmx - ref| / max |ref| allowed by the check


def _uniform(*shape):
    return lambda rng: [rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)]


def _np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gelu(lib, x):
    return x * (1 + lib.erf(x / 1.4142135623730951)) / 2


def _norm(lib, x, w, b):
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / (lib.sqrt(var + 1e-5) if lib is not np else np.sqrt(var + 1e-5)) * w + b


def np_conv2d_im2col(x, w, pad):
    """conv2d reference (NHWC, OHWI weight): pad, gather the patches (a strided view),
    one BLAS matmul."""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    s = xp.strides
    cols = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (s[0], s[1], s[2], s[1], s[2], s[3]))
    cols = np.ascontiguousarray(cols).reshape(n * oh * ow, kh * kw * c)
    return (cols @ w.reshape(o, -1).T).reshape(n, oh, ow, o)


def _conv_inputs(b):
    return lambda rng: [rng.uniform(-1, 1, (b, 56, 56, 64)).astype(np.float32),
                        rng.uniform(-0.05, 0.05, (64, 3, 3, 64)).astype(np.float32)]


def _conv_grads(mx, x, w):
    gx, gw = mx.grad(lambda a, b: mx.conv2d(a, b, padding=1).sum(), argnums=(0, 1))(x, w)
    return mx.concatenate([gx.reshape(-1), gw.reshape(-1)])


_COMPILED = {}


def _compiled(mx, key, fn):
    """One compiled function per library, made on first use (compile caches its trace)."""
    k = (mx.__name__, key)
    if k not in _COMPILED:
        _COMPILED[k] = mx.compile(fn)
    return _COMPILED[k]


def _overhead_graph(mx, iters):
    x = mx.array(1.0)
    for _ in range(iters):
        x = x * 1.0001 + 0.0001
    return x


def build(quick):
    n = 1_000_000 if quick else 10_000_000  # 1-D element count
    m = 1024 if quick else 4096  # square side for 2-D workloads
    mm_sizes = [128, 256, 512] if quick else [512, 1024, 2048]
    half = 256 if quick else 1024
    copy_n = 1 << 24  # 16.8M f32 = 67 MB, far bigger than any cache
    iters = 1000
    f4 = 4  # bytes per float32

    w = [
        Workload(
            "copy", f"memcpy NumPy copyto {copy_n / 1e6:.1f}M f32",
            lambda rng: [rng.uniform(-1, 1, copy_n).astype(np.float32),
                         np.empty(copy_n, np.float32)],
            None, lambda src, dst: np.copyto(dst, src),
            work=("bytes", 2 * copy_n * f4),
            note="machine copy bandwidth (read+write bytes)"),
        Workload(
            "add", f"add {n / 1e6:g}M f32",
            lambda rng: _uniform(n)(rng) + _uniform(n)(rng),
            lambda mx, a, b: a + b, lambda a, b: a + b,
            work=("bytes", 3 * n * f4), note="3 x n x 4 bytes moved"),
        Workload(
            "chain", f"exp(sin(x)*2+1)*x {n / 1e6:g}M f32",
            _uniform(n),
            lambda mx, x: mx.exp(mx.sin(x) * 2 + 1) * x,
            lambda x: np.exp(np.sin(x) * 2 + 1) * x,
            work=("bytes", 2 * n * f4), note="rate counts 1 read + 1 write"),
        Workload(
            "chain_compiled", f"compile(exp(sin(x)*2+1)*x) {n / 1e6:g}M f32",
            _uniform(n),
            lambda mx, x: _compiled(mx, "chain", lambda t: mx.exp(mx.sin(t) * 2 + 1) * t)(x),
            lambda x: np.exp(np.sin(x) * 2 + 1) * x,
            work=("bytes", 2 * n * f4), note="mx.compile: one fused kernel (rmx), MLX's compile"),
        Workload(
            "gelu", f"gelu (MLX nn.gelu formula) {n / 1e6:g}M f32", _uniform(n),
            lambda mx, x: _gelu(mx, x), None,
            work=("bytes", 2 * n * f4), note="x * (1 + erf(x / sqrt 2)) / 2"),
        Workload(
            "gelu_compiled", f"compile(gelu) {n / 1e6:g}M f32", _uniform(n),
            lambda mx, x: _compiled(mx, "gelu", lambda t: _gelu(mx, t))(x), None,
            work=("bytes", 2 * n * f4)),
        Workload(
            "layernorm", f"normalize-scale-shift {m}x{m} f32",
            lambda rng: _uniform(m, m)(rng) + _uniform(m)(rng) + _uniform(m)(rng),
            lambda mx, x, w, b: _norm(mx, x, w, b), lambda x, w, b: _norm(np, x, w, b),
            work=("bytes", 2 * m * m * f4)),
        Workload(
            "layernorm_compiled", f"compile(normalize-scale-shift) {m}x{m} f32",
            lambda rng: _uniform(m, m)(rng) + _uniform(m)(rng) + _uniform(m)(rng),
            lambda mx, x, w, b: _compiled(mx, "norm", lambda *t: _norm(mx, *t))(x, w, b),
            lambda x, w, b: _norm(np, x, w, b),
            work=("bytes", 2 * m * m * f4)),
        Workload(
            "sum", f"sum {n / 1e6:g}M f32", _uniform(n),
            lambda mx, x: mx.sum(x), lambda x: x.sum(),
            work=("bytes", n * f4)),
        Workload(
            "rowsum", f"sum(axis=1) {m}x{m} f32", _uniform(m, m),
            lambda mx, x: mx.sum(x, axis=1), lambda x: x.sum(axis=1),
            work=("bytes", m * m * f4)),
        Workload(
            "softmax", f"softmax(axis=-1) {m}x{m} f32", _uniform(m, m),
            lambda mx, x: mx.softmax(x, axis=-1), _np_softmax,
            work=("bytes", 2 * m * m * f4), note="rate counts 1 read + 1 write"),
        Workload(
            "transpose", f"contiguous(x.T) {m}x{m} f32", _uniform(m, m),
            lambda mx, x: mx.contiguous(x.T), lambda x: np.ascontiguousarray(x.T),
            work=("bytes", 2 * m * m * f4), note="NumPy: ascontiguousarray(x.T)"),
    ]
    for s in mm_sizes:
        w.append(Workload(
            f"matmul_f32_{s}", f"matmul f32 {s}",
            lambda rng, s=s: _uniform(s, s)(rng) + _uniform(s, s)(rng),
            lambda mx, a, b: mx.matmul(a, b), lambda a, b: a @ b,
            work=("flops", 2 * s ** 3)))
    for dt in ("bfloat16", "float16"):
        w.append(Workload(
            f"matmul_{dt}_{half}", f"matmul {dt} {half}",
            lambda rng: _uniform(half, half)(rng) + _uniform(half, half)(rng),
            lambda mx, a, b: mx.matmul(a, b), lambda a, b: a @ b,
            work=("flops", 2 * half ** 3), dtype=dt, tol=3e-2,
            note="NumPy column: f32 at the same size (reference)"))
    cb = 2 if quick else 8
    conv_flops = 2 * cb * 56 * 56 * 64 * 64 * 9
    w.append(Workload(
        "conv2d", f"conv2d {cb}x56x56x64 * 64x3x3x64 pad 1 f32", _conv_inputs(cb),
        lambda mx, x, k: mx.conv2d(x, k, padding=1), lambda x, k: np_conv2d_im2col(x, k, 1),
        work=("flops", conv_flops), note="NumPy: im2col (strided view copy) + OpenBLAS matmul"))
    w.append(Workload(
        "conv2d_grad", f"conv2d {cb}x56x56x64 forward+backward (d input, d weight) f32",
        _conv_inputs(cb), _conv_grads, None, work=("flops", 3 * conv_flops),
        note="both gradients of conv2d(...).sum(), concatenated"))
    w.append(Workload(
        "overhead", f"per-op overhead, {iters}-op scalar graph",
        lambda rng: [], lambda mx: _overhead_graph(mx, iters), None,
        work=("ops", 2 * iters),
        note="x = x*1.0001 + 0.0001 x1000 then eval: 2,000 array ops; us per op"))
    from misc_workloads import build as _misc  # noqa: E402 - unique, stft, fp8, ...

    w.extend(_misc(quick))
    w.extend(_einsum_gather_workloads(quick))
    w.extend(_sort_scan_fft_workloads(quick))
    w.extend(_linalg_workloads(256 if quick else 512))
    return w


def _np_gather_mm(x, w, idx):
    """MoE reference: x [T, 1, 1, D] times expert idx[t, j] of w [E, D, H]."""
    return np.matmul(x, w[idx.astype(np.int64)])


def _einsum_gather_workloads(quick):
    """einsum (batched matmul, attention scores) and gather_mm (mixture of experts)."""
    b, s = (16, 128) if quick else (64, 256)
    bh, h, q, d = (1, 4, 128, 64) if quick else (4, 8, 256, 64)
    t, k, e, dm, hd = (8, 2, 8, 256, 512) if quick else (16, 2, 8, 512, 1024)

    def moe_inputs(rng):
        x = _uniform(t, 1, 1, dm)(rng)[0]
        wts = _uniform(e, dm, hd)(rng)[0]
        idx = rng.integers(0, e, size=(t, k)).astype(np.float32)  # cast to uint32 below
        return [x, wts, idx]

    return [
        Workload(
            "einsum_bmm", f"einsum bij,bjk->bik {b}x{s}x{s} f32",
            lambda rng: _uniform(b, s, s)(rng) + _uniform(b, s, s)(rng),
            lambda mx, x, y: mx.einsum("bij,bjk->bik", x, y),
            lambda x, y: np.einsum("bij,bjk->bik", x, y, optimize=True),
            work=("flops", 2 * b * s ** 3), note="NumPy: np.einsum(optimize=True)"),
        Workload(
            "einsum_attn", f"einsum bhqd,bhkd->bhqk {bh}x{h}x{q}x{d} f32",
            lambda rng: _uniform(bh, h, q, d)(rng) + _uniform(bh, h, q, d)(rng),
            lambda mx, x, y: mx.einsum("bhqd,bhkd->bhqk", x, y),
            lambda x, y: np.einsum("bhqd,bhkd->bhqk", x, y, optimize=True),
            work=("flops", 2 * bh * h * q * q * d), note="attention scores"),
        Workload(
            "gather_mm_moe", f"gather_mm MoE {t} tokens top-{k} of {e} experts {dm}->{hd} f32",
            moe_inputs,
            lambda mx, x, wts, idx: mx.gather_mm(x, wts, rhs_indices=idx.astype(mx.uint32)),
            _np_gather_mm, work=("flops", 2 * t * k * dm * hd),
            note="rmx: x times every expert (one GEMM each), then a pick; NumPy: w[idx] @ x"),
    ]


def _sort_scan_fft_workloads(quick):
    """Issue 4's sort, scan and FFT rows: sort of 1M f32, cumsum of 4096², rfft of 2^20."""
    n = 1 << (18 if quick else 20)
    m = 1024 if quick else 4096
    return [
        Workload(
            "sort", f"sort {n / 1e6:.2g}M f32", _uniform(n),
            lambda mx, x: mx.sort(x), np.sort, work=("bytes", 2 * n * 4)),
        Workload(
            "cumsum_rows", f"cumsum(axis=-1) {m}x{m} f32", _uniform(m, m),
            lambda mx, x: mx.cumsum(x, axis=-1), lambda x: np.cumsum(x, axis=-1),
            work=("bytes", 2 * m * m * 4), note="rate counts 1 read + 1 write"),
        Workload(
            "cumsum_cols", f"cumsum(axis=0) {m}x{m} f32", _uniform(m, m),
            lambda mx, x: mx.cumsum(x, axis=0), lambda x: np.cumsum(x, axis=0),
            work=("bytes", 2 * m * m * 4), note="rate counts 1 read + 1 write"),
        Workload(
            "rfft", f"fft.rfft {n / 1e6:.2g}M f32", _uniform(n),
            lambda mx, x: mx.fft.rfft(x), np.fft.rfft,
            work=("flops", int(2.5 * n * np.log2(n))), note="rate: 2.5 n log2 n"),
    ]


def _spd(s):
    def make(rng):
        a = rng.uniform(-1.0, 1.0, size=(s, s)).astype(np.float64)
        return [(a @ a.T + s * np.eye(s)).astype(np.float32)]
    return make


def _linalg_workloads(s):
    """mx.linalg: faer (rmx) vs LAPACK (MLX, NumPy), one matrix of side s."""
    flops = ("flops", 2 * s ** 3)  # nominal: one matmul's worth, for a comparable rate
    return [
        Workload(
            f"svd_{s}", f"svd {s}x{s} f32 (U, S, Vt)", _uniform(s, s),
            lambda mx, a: mx.linalg.svd(a)[1], lambda a: np.linalg.svd(a)[1],
            work=flops, note="check on S (vectors have free signs)"),
        Workload(
            f"inv_{s}", f"inv {s}x{s} f32", _spd(s),
            lambda mx, a: mx.linalg.inv(a), np.linalg.inv, work=flops),
        Workload(
            f"solve_{s}", f"solve {s}x{s} f32, 16 right-hand sides",
            lambda rng: _spd(s)(rng) + _uniform(s, 16)(rng),
            lambda mx, a, b: mx.linalg.solve(a, b), np.linalg.solve, work=flops),
        Workload(
            f"cholesky_{s}", f"cholesky {s}x{s} f32", _spd(s),
            lambda mx, a: mx.linalg.cholesky(a), np.linalg.cholesky, work=flops),
    ]
