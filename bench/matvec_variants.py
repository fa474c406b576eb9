"""Kernel-time of matrix-vector variants (bf16 dense and 4-bit affine) on the GPU machine,
timed with CUDA events through CuPy, beside torch's bf16 gemv: a tuning aid for
`crates/rmx-cuda/src/kernels/gemv.rs` and `qmm.rs` (no Rust build needed).

    python3 bench/matvec_variants.py
"""

import cupy as cp
import numpy as np
import torch

HEAD = r"""
typedef unsigned short u16; typedef unsigned int u32; typedef long long i64;
__device__ __forceinline__ float b2f(u16 h) { return __uint_as_float(((u32)h) << 16); }
__device__ __forceinline__ u16 f2b(float f) { u16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ void unpack(const uint4 v, float* f) {
  const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) { f[2 * j] = b2f((u16)(w[j] & 0xffffu)); f[2 * j + 1] = b2f((u16)(w[j] >> 16)); }
}
"""

# Dense: R output features per warp, U 16-byte runs per feature in flight, W warps/block.
DENSE = r"""
extern "C" __global__ void dense(const u16* __restrict__ w, const u16* __restrict__ x, u16* __restrict__ out, i64 n, i64 k) {
  const int lane = threadIdx.x & 31;
  const i64 col0 = ((i64)blockIdx.x * W + (threadIdx.x >> 5)) * R;
  const i64 vecs = k / 8;
  float acc[R] = {};
  for (i64 base = lane; base < vecs; base += 32 * U) {
    uint4 wv[R][U];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const i64 i = base + 32 * u;
        if (i < vecs && col0 + r < n) wv[r][u] = reinterpret_cast<const uint4*>(w + (col0 + r) * k)[i];
      }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const i64 i = base + 32 * u;
      if (i < vecs) {
        float xf[8]; unpack(reinterpret_cast<const uint4*>(x)[i], xf);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float wf[8]; unpack(wv[r][u], wf);
          float d = 0.f;
#pragma unroll
          for (int e = 0; e < 8; ++e) d = __fmaf_rn(wf[e], xf[e], d);
          acc[r] += d;
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float a = acc[r];
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
    if (lane == 0 && col0 + r < n) out[col0 + r] = f2b(a);
  }
}
"""

# 4-bit, group 64: R features per warp, U runs in flight, X in shared memory when XS.
QMV = r"""
extern "C" __global__ void qmv(const u32* __restrict__ w, const u16* __restrict__ scales, const u16* __restrict__ biases, const u16* __restrict__ x, u16* __restrict__ out, i64 n, i64 k) {
  const int lane = threadIdx.x & 31;
  const i64 col0 = ((i64)blockIdx.x * W + (threadIdx.x >> 5)) * R;
  const i64 vecs = k / 32, groups = k / 64;
#if XS
  extern __shared__ float xs_[];
  for (i64 i = threadIdx.x; i < k; i += blockDim.x) xs_[i] = b2f(x[i]);
  __syncthreads();
#endif
  float acc[R] = {};
  for (i64 base = lane; base < vecs; base += 32 * U) {
    uint4 wv[R][U]; float sv[R][U], bv[R][U];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const i64 i = base + 32 * u, c = col0 + r;
        if (i < vecs && c < n) {
          wv[r][u] = reinterpret_cast<const uint4*>(w + c * (k / 8))[i];
          sv[r][u] = b2f(scales[c * groups + i / 2]); bv[r][u] = b2f(biases[c * groups + i / 2]);
        }
      }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const i64 i = base + 32 * u;
      if (i < vecs) {
        float xf[32];
#if XS
#pragma unroll
        for (int e = 0; e < 32; ++e) xf[e] = xs_[i * 32 + e];
#else
#pragma unroll
        for (int h = 0; h < 4; ++h) unpack(reinterpret_cast<const uint4*>(x + i * 32)[h], xf + 8 * h);
#endif
        float xsum = 0.f;
#pragma unroll
        for (int e = 0; e < 32; ++e) xsum += xf[e];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const u32 q[4] = {wv[r][u].x, wv[r][u].y, wv[r][u].z, wv[r][u].w};
          float d = 0.f;
#pragma unroll
#if MAGIC
          for (int e = 0; e < 32; ++e) {
            const int pos = e % 8, chunk = pos / 5, j = pos % 5;
            const u32 v = ((q[e / 8] >> (chunk * 20)) & (15u << (j * 4))) | 0x4B000000u;
            d = __fmaf_rn(xf[e] * __int_as_float((127 - j * 4) << 23), __uint_as_float(v) - 8388608.f, d);
          }
#else
          for (int e = 0; e < 32; ++e) d = __fmaf_rn(xf[e], (float)((q[e / 8] >> ((e % 8) * 4)) & 15u), d);
#endif
          acc[r] += sv[r][u] * d + bv[r][u] * xsum;
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    float a = acc[r];
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
    if (lane == 0 && col0 + r < n) out[col0 + r] = f2b(a);
  }
}
"""


def kernel(src, name, **defs):
    d = "".join(f"#define {k} {v}\n" for k, v in defs.items())
    return cp.RawModule(code=d + HEAD + src, options=("--std=c++17",)).get_function(name)


def time_ms(launch, reps=100):
    launch()
    s, e = cp.cuda.Event(), cp.cuda.Event()
    s.record()
    for _ in range(reps):
        launch()
    e.record()
    e.synchronize()
    return cp.cuda.get_elapsed_time(s, e) / reps


def torch_ms(f, reps=100):
    f()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(reps):
        f()
    e.record()
    torch.cuda.synchronize()
    return s.elapsed_time(e) / reps


def main():
    rng = np.random.default_rng(0)
    shapes = [(4096, 4096), (16384, 2048), (2048, 8192), (128256, 2048)]
    print(f"{'kernel':34s}" + "".join(f"{f'{n}x{k}':>16s}" for n, k in shapes))
    tw = {s: torch.randn(s, device="cuda", dtype=torch.bfloat16) for s in shapes}
    tx = {s: torch.randn((1, s[1]), device="cuda", dtype=torch.bfloat16) for s in shapes}
    row = "torch bf16 gemv (ms, TB/s)"
    cells = []
    for s in shapes:
        t = torch_ms(lambda: tx[s] @ tw[s].T)
        cells.append(f"{t:.4f} {s[0] * s[1] * 2 / t / 1e9:4.1f}")
    print(f"{row:34s}" + "".join(f"{c:>16s}" for c in cells))
    for R, U, W in [(1, 4, 4), (2, 4, 4)]:
        f = kernel(DENSE, "dense", R=R, U=U, W=W)
        cells = []
        for n, k in shapes:
            w = cp.asarray(tw[(n, k)].view(torch.int16).cpu().numpy()).view(cp.uint16)
            x = cp.asarray(tx[(n, k)].view(torch.int16).cpu().numpy()).view(cp.uint16)
            out = cp.empty(n, cp.uint16)
            grid = ((n + W * R - 1) // (W * R),)
            t = time_ms(lambda: f(grid, (32 * W,), (w, x, out, np.int64(n), np.int64(k))))
            ref = (tx[(n, k)].float() @ tw[(n, k)].float().T).cpu().numpy()[0]
            got = torch.from_numpy(out.get().view(np.int16)).view(torch.bfloat16).float().numpy()
            ok = np.allclose(got, ref, rtol=3e-2, atol=3e-1)
            cells.append(f"{t:.4f} {n * k * 2 / t / 1e9:4.1f}{'' if ok else '!'}")
        print(f"{f'dense R={R} U={U} W={W}':34s}" + "".join(f"{c:>16s}" for c in cells))
    for R, U, W, XS, MAGIC in [(1, 4, 4, 0, 0), (4, 2, 4, 0, 0), (4, 2, 4, 0, 1), (2, 4, 4, 0, 1),
                               (4, 4, 4, 0, 1), (8, 2, 4, 0, 1), (4, 2, 8, 0, 1)]:
        f = kernel(QMV, "qmv", R=R, U=U, W=W, XS=XS, MAGIC=MAGIC)
        cells = []
        for n, k in shapes:
            codes = rng.integers(0, 2**32, size=(n, k // 8), dtype=np.uint32)
            w = cp.asarray(codes)
            sc = cp.asarray(rng.standard_normal((n, k // 64)).astype(np.float32) * 0.01).astype(cp.float32)
            bi = cp.asarray(rng.standard_normal((n, k // 64)).astype(np.float32) * 0.01).astype(cp.float32)
            sc16 = (sc.view(cp.uint32) >> 16).astype(cp.uint16)
            bi16 = (bi.view(cp.uint32) >> 16).astype(cp.uint16)
            x = cp.asarray(tx[(n, k)].view(torch.int16).cpu().numpy()).view(cp.uint16)
            out = cp.empty(n, cp.uint16)
            grid = ((n + W * R - 1) // (W * R),)
            smem = k * 4 if XS else 0
            if smem > 48 * 1024:
                f.max_dynamic_shared_size_bytes = smem
            t = time_ms(lambda: f(grid, (32 * W,), (w, sc16, bi16, x, out, np.int64(n), np.int64(k)), shared_mem=smem))
            nbytes = n * k // 2 + 2 * n * (k // 64) * 2
            cells.append(f"{t:.4f} {nbytes / t / 1e9:4.1f}")
        print(f"{f'qmv4 R={R} U={U} W={W} XS={XS} MAGIC={MAGIC}':34s}" + "".join(f"{c:>16s}" for c in cells))


if __name__ == "__main__":
    main()
