"""4-bit affine matrix-vector products on tensor cores, against the SIMT kernel rmx ran before
(qmm.rs `_vec1_narrow` / `_vec1`): kernel times with CUDA events through CuPy, and the error
of each against a float64 reference. A tuning aid for `crates/rmx-cuda/src/kernels/qmv_mma.rs`
(no Rust build needed); runs on the GPU machine.

    python3 bench/qmv_mma.py
"""

import sys

import cupy as cp
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from matvec_variants import HEAD, QMV, kernel  # noqa: E402


def time_ms(launch, reps=100):
    """Device milliseconds per launch: `reps` launches captured as one CUDA graph (kernels
    this small are otherwise bound by CuPy's per-launch host time)."""
    launch()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        for _ in range(reps):
            launch()
        graph = stream.end_capture()
    graph.launch(stream)
    s, e = cp.cuda.Event(), cp.cuda.Event()
    s.record(stream)
    for _ in range(3):
        graph.launch(stream)
    e.record(stream)
    e.synchronize()
    return cp.cuda.get_elapsed_time(s, e) / reps / 3

MMA = r"""
// out[m, c] = sum_g s[c,g] (x[m,g] . q[c,g]) + b[c,g] sum(x[m,g]) on m16n8k16 tensor-core
// products: A = 16 rows of x (the rows past `rows` are zeros), B = the codes of 8 output
// features as exact small integers in bf16, f32 accumulation; one group per product chain,
// scaled after it. A block owns 8 features; its warps split the groups.
__device__ __forceinline__ void mma(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// nibbles i and i + 4 of q as the bf16 pair {n_i, n_i+4}: or-ed into 128's mantissa, minus 128
__device__ __forceinline__ u32 codes2(u32 q, int i) {
  const u32 v = ((q >> (4 * i)) & 0x000F000Fu) | 0x43004300u;
  u32 r;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(r) : "r"(v), "r"(0x3F803F80u), "r"(0xC300C300u));
  return r;
}
template <int N_> struct alignas(4 * N_) Words { u32 w[N_]; };
extern "C" __global__ void qmv_mma(const u32* __restrict__ w, const u16* __restrict__ scales, const u16* __restrict__ biases, const u16* __restrict__ x, u16* __restrict__ out, i64 n, i64 k, int rows) {
  constexpr int GS = 32 * L;   // codes per group: one group per piece
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g4 = lane >> 2, t = lane & 3;
  const i64 fb = (i64)blockIdx.x * 8 + g4;      // the feature whose codes this lane loads
  const i64 fc = (i64)blockIdx.x * 8 + 2 * t;   // the features of this lane's results
  const i64 words = k / 8, groups = k / GS;
  const u32* wr = w + (fb < n ? fb : n - 1) * words + t * L;
  const bool r0 = g4 < rows, r1 = g4 + 8 < rows;
  const uint4* x0 = reinterpret_cast<const uint4*>(x + (i64)g4 * k) + t * L;
  const uint4* x1 = reinterpret_cast<const uint4*>(x + (i64)(g4 + 8) * k) + t * L;
  // the scales' rows of this lane's result features (clamped: their results are not stored)
  const i64 f0 = fc < n ? fc : n - 1, f1 = fc + 1 < n ? fc + 1 : n - 1;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (i64 g0 = (i64)warp * U; g0 < groups; g0 += (i64)W * U) {
    // everything the U groups need is requested before any of it is used
    Words<L> q[U];
    uint4 xa[U][L];
    float s0[U], s1[U], c0[U], c1[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const i64 g = g0 + u < groups ? g0 + u : groups - 1;
      q[u] = *reinterpret_cast<const Words<L>*>(wr + g * (GS / 8));
#pragma unroll
      for (int l = 0; l < L; ++l) xa[u][l] = r0 ? x0[g * (GS / 8) + l] : make_uint4(0, 0, 0, 0);
      s0[u] = b2f(scales[f0 * groups + g]); s1[u] = b2f(scales[f1 * groups + g]);
      c0[u] = b2f(biases[f0 * groups + g]); c1[u] = b2f(biases[f1 * groups + g]);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (g0 + u >= groups) break;
      float d[4] = {0.f, 0.f, 0.f, 0.f}, s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int l = 0; l < L; ++l) {
        const uint4 xb = r1 ? x1[(g0 + u) * (GS / 8) + l] : make_uint4(0, 0, 0, 0);
        // x pairs {x_i, x_i+4}, matching codes2's pairs
        const uint4 xv = xa[u][l];
        const u32 a[4] = {__byte_perm(xv.x, xv.z, 0x5410), __byte_perm(xv.x, xv.z, 0x7632),
                          __byte_perm(xv.y, xv.w, 0x5410), __byte_perm(xv.y, xv.w, 0x7632)};
        const u32 b[4] = {__byte_perm(xb.x, xb.z, 0x5410), __byte_perm(xb.x, xb.z, 0x7632),
                          __byte_perm(xb.y, xb.w, 0x5410), __byte_perm(xb.y, xb.w, 0x7632)};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          mma(d, a[2 * h], b[2 * h], a[2 * h + 1], b[2 * h + 1], codes2(q[u].w[l], 2 * h), codes2(q[u].w[l], 2 * h + 1));
          mma(s, a[2 * h], b[2 * h], a[2 * h + 1], b[2 * h + 1], 0x3F803F80u, 0x3F803F80u);
        }
      }
      acc[0] += s0[u] * d[0] + c0[u] * s[0];
      acc[1] += s1[u] * d[1] + c1[u] * s[1];
      acc[2] += s0[u] * d[2] + c0[u] * s[2];
      acc[3] += s1[u] * d[3] + c1[u] * s[3];
    }
  }
  __shared__ float red[W][32][4];
  if (W > 1) {
#pragma unroll
    for (int j = 0; j < 4; ++j) red[warp][lane][j] = acc[j];
    __syncthreads();
    if (warp != 0) return;
    for (int v = 1; v < W; ++v)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[j] += red[v][lane][j];
  }
  if (r0 && fc < n) out[(i64)g4 * n + fc] = f2b(acc[0]);
  if (r0 && fc + 1 < n) out[(i64)g4 * n + fc + 1] = f2b(acc[1]);
  if (r1 && fc < n) out[(i64)(g4 + 8) * n + fc] = f2b(acc[2]);
  if (r1 && fc + 1 < n) out[(i64)(g4 + 8) * n + fc + 1] = f2b(acc[3]);
}
"""


def bf16(a):
    """float32 numpy -> (uint16 bits rounded to nearest even, the float32 values they hold)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r, (r.astype(np.uint32) << 16).view(np.float32)


def simt_sweep():
    """The SIMT kernel's shapes (features per warp R, runs in flight U, warps per block W)."""
    rng = np.random.default_rng(0)
    shapes = [(2048, 2048), (3072, 2048), (16384, 2048), (2048, 8192), (128256, 2048)]
    configs = [(R, U, W, 0) for R in (1, 2, 4) for U in (1, 2, 4) for W in (4, 8)]
    print(f"{'SIMT R U W XS':20s}" + "".join(f"{f'{n}x{k}':>14s}" for n, k in shapes))
    # Each shape gets enough copies of its weights (>= 256 MiB in all) that consecutive
    # launches read different ones: the weights stream from DRAM, as in a decode step,
    # instead of staying in the 50 MiB L2 (which flattered small shapes in the first sweep).
    data = {}
    for n, k in shapes:
        nbytes = n * k // 2 + 4 * n * (k // 64)
        copies = max(2, -(-(256 << 20) // nbytes))
        w = cp.asarray(rng.integers(0, 2**32, size=(n, k // 8), dtype=np.uint32))
        s = cp.asarray(bf16(rng.standard_normal((n, k // 64)).astype(np.float32) * 0.02)[0])
        b = cp.asarray(bf16(rng.standard_normal((n, k // 64)).astype(np.float32) * 0.02)[0])
        x = cp.asarray(bf16(rng.standard_normal((1, k)).astype(np.float32))[0])
        sets = [(w, s, b)] + [(w.copy(), s.copy(), b.copy()) for _ in range(copies - 1)]
        data[(n, k)] = (sets, x, cp.zeros(n, cp.uint16))
    for R, U, W, XS in configs:
        f = kernel(QMV, "qmv", R=R, U=U, W=W, XS=XS, MAGIC=1)
        cells = []
        for n, k in shapes:
            sets, x, out = data[(n, k)]
            smem = k * 4 if XS else 0
            if smem > 48 * 1024:
                f.max_dynamic_shared_size_bytes = smem
            grid = ((n + W * R - 1) // (W * R),)
            turn = [0]

            def launch():
                w, s, b = sets[turn[0] % len(sets)]
                turn[0] += 1
                f(grid, (32 * W,), (w, s, b, x, out, np.int64(n), np.int64(k)), shared_mem=smem)
            t = time_ms(launch)
            cells.append(f"{t * 1e3:14.2f}")
        print(f"{f'{R} {U} {W} {XS}':20s}" + "".join(cells))


def main():
    rng = np.random.default_rng(0)
    shapes = [(2048, 2048), (3072, 2048), (16384, 2048), (2048, 8192), (128256, 2048)]
    cases = [(n, k, 64, 1) for n, k in shapes] + [(2048, 2048, 32, 1), (2048, 2048, 128, 1), (3072, 2048, 64, 4), (1000, 2048, 64, 16)]
    old1 = kernel(QMV, "qmv", R=1, U=2, W=4, XS=0, MAGIC=1)
    old4 = kernel(QMV, "qmv", R=4, U=2, W=4, XS=0, MAGIC=1)
    configs = [(2, 4), (4, 2), (4, 4), (4, 8), (8, 2), (8, 4)]
    mods = {}
    print(f"{'n x k, group, rows':28s}{'old us':>10s}" + "".join(f"{f'W{w}U{u}':>12s}" for w, u in configs) + "   max rel err old / mma")
    for n, k, gs, rows in cases:
        L = gs // 32
        codes = rng.integers(0, 2**32, size=(n, k // 8), dtype=np.uint32)
        sc_bits, sc = bf16(rng.standard_normal((n, k // gs)).astype(np.float32) * 0.02)
        bi_bits, bi = bf16(rng.standard_normal((n, k // gs)).astype(np.float32) * 0.02)
        x_bits, xv = bf16(rng.standard_normal((rows, k)).astype(np.float32))
        q = ((codes[:, :, None] >> (4 * np.arange(8, dtype=np.uint32))) & 15).reshape(n, k).astype(np.float64)
        wf = q * np.repeat(sc, gs, 1).astype(np.float64) + np.repeat(bi, gs, 1).astype(np.float64)
        ref = xv.astype(np.float64) @ wf.T
        w, s, b, x = cp.asarray(codes), cp.asarray(sc_bits), cp.asarray(bi_bits), cp.asarray(x_bits)
        scale = np.abs(ref).max()

        def err(out):
            got = (out.get().astype(np.uint32) << 16).view(np.float32).reshape(rows, n)
            return np.abs(got - ref).max() / scale

        cells, errs = [], []
        if gs == 64 and rows == 1:
            f = old1 if n < 32768 else old4
            R = 1 if n < 32768 else 4
            out = cp.zeros(n, cp.uint16)
            grid = ((n + 4 * R - 1) // (4 * R),)
            t = time_ms(lambda: f(grid, (128,), (w, s, b, x, out, np.int64(n), np.int64(k))))
            cells.append(f"{t * 1e3:10.2f}")
            errs.append(err(out))
        else:
            cells.append(f"{'-':>10s}")
            errs.append(float("nan"))
        mma_errs = []
        for W, U in configs:
            key = (W, U, L)
            if key not in mods:
                mods[key] = kernel(MMA, "qmv_mma", W=W, U=U, L=L)
            f = mods[key]
            out = cp.zeros(rows * n, cp.uint16)
            grid = ((n + 7) // 8,)
            t = time_ms(lambda: f(grid, (32 * W,), (w, s, b, x, out, np.int64(n), np.int64(k), np.int32(rows))))
            cells.append(f"{t * 1e3:12.2f}")
            mma_errs.append(err(out))
        nbytes = n * k // 2 + 2 * 2 * n * (k // gs)
        best = min(float(c) for c in cells[1:])
        print(f"{f'{n}x{k} g{gs} r{rows}':28s}" + "".join(cells) + f"   {errs[0]:.1e} / {max(mma_errs):.1e}   best {nbytes / best / 1e6:.2f} TB/s")


if __name__ == "__main__":
    simt_sweep() if sys.argv[1:] == ["simt"] else main()
