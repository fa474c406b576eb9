//! Flash attention for prompt processing and training-sized attention: half-precision
//! `q`, `k`, `v` with head size 64 or 128, no mask or a causal one. One block of four
//! warps takes 64 query rows of one head and walks the keys in tiles of 64: the scores
//! `Q Kᵀ` and the products `P V` run on tensor cores (`mma.sync` m16n8k16, float32
//! accumulators), the softmax is the online one (running row maximum and sum, the output
//! rescaled as the maximum grows), and the scores never leave registers. Each tile of `K`
//! and `V` is copied to shared memory with `cp.async` while the other one is used.
//!
//! Numerics follow the products path (`attention_gemm.rs`): scores in float32, the
//! probabilities rounded to the input dtype before they multiply `V`; the normalization by
//! the row sum happens once at the end instead of before the rounding. Causal alignment is
//! lower right; masked scores weigh zero. Other masks, dtypes, head sizes and more query
//! rows than keys (under a causal mask) take the products path.

use super::elementwise::{generated, Kernel};
use super::prelude::{tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::{ArrayData, Dtype, Result};

/// Query rows per block (16 per warp; 8 warps, 128 rows, measured no faster).
const BQ: usize = 64;
const THREADS: u32 = 128;

/// Fewest query rows per head that take this kernel: with fewer, most of a block's rows
/// are padding (a decode step's single row takes the products path).
const MIN_QUERY_ROWS: usize = 16;

fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("RMX_FLASH_ATTENTION").map_or(true, |v| v != "0"))
}

/// The kernel for head size `d` over `dtype` (bfloat16 or float16).
pub fn flash_kernel(dtype: Dtype, d: usize) -> Option<Kernel> {
    generated(format!("flash_kernel {:?}", (dtype, d)), || {
        let mma_type = match dtype {
            Dtype::Bfloat16 => "bf16",
            Dtype::Float16 => "f16",
            _ => return None,
        };
        if d != 64 && d != 128 {
            return None;
        }
        let name = format!("flash_attention_{}_d{d}", tag(dtype));
        let src = format!(
            r#"{PRELUDE}
__device__ __forceinline__ u32 smem_addr(const void* p) {{
  u32 a; asm("{{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }}" : "=r"(a) : "l"(p)); return a;
}}
// 16 bytes from global to shared memory, zeros where `bytes` is 0 (rows past the keys)
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int bytes) {{
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(smem_addr(dst)), "l"(src), "r"(bytes));
}}
__device__ __forceinline__ void ldm_x4(u32* r, const void* p) {{
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{%0,%1,%2,%3}}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}}
__device__ __forceinline__ void ldm_x4_trans(u32* r, const void* p) {{
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {{%0,%1,%2,%3}}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)));
}}
__device__ __forceinline__ void mma(float* c, const u32* a, u32 b0, u32 b1) {{
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.{mma_type}.{mma_type}.f32 {{%0,%1,%2,%3}}, {{%4,%5,%6,%7}}, {{%8,%9}}, {{%0,%1,%2,%3}};"
    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}}
// two floats rounded to the dtype in one word, `lo` in the low half
__device__ __forceinline__ u32 pack2(float lo, float hi) {{
  u32 r; asm("cvt.rn.{mma_type}x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r;
}}

constexpr int D = {d}, BQ = {BQ}, BK = 64, LD = D + 8;  // shared rows padded by 16 bytes: no bank conflicts
constexpr int NT = {THREADS};

// keys k0 .. k0 + BK of one head into `sm` (row-major, LD apart)
__device__ __forceinline__ void load_tile(u16* sm, const u16* base, i64 stride, i64 k0, i64 lk) {{
  constexpr int CH = D / 8;
#pragma unroll
  for (int c = threadIdx.x; c < BK * CH; c += NT) {{
    const int r = c / CH, cc = c % CH;
    const i64 key = k0 + r;
    cp_async16(sm + r * LD + cc * 8, base + (key < lk ? key : 0) * stride + cc * 8, key < lk ? 16 : 0);
  }}
  asm volatile("cp.async.commit_group;");
}}

extern "C" __global__ void __launch_bounds__(NT) {name}(
    const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v, u16* __restrict__ o,
    i64 hq, i64 rep, i64 lq, i64 lk, i64 qs0, i64 qs1, i64 qs2, i64 ks0, i64 ks1, i64 ks2,
    i64 vs0, i64 vs1, i64 vs2, float scale_log2, int causal) {{
  __shared__ __align__(16) u16 ksm[BK * LD];
  __shared__ __align__(16) u16 vsm[BK * LD];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const i64 h = blockIdx.y, b = blockIdx.z, kh = h / rep;
  // the longest causal blocks first: the last ones then fill the tail
  const i64 q0 = (i64)(gridDim.x - 1 - blockIdx.x) * BQ;
  const u16* qb = q + b * qs0 + h * qs1;
  const u16* kb = k + b * ks0 + kh * ks1;
  const u16* vb = v + b * vs0 + kh * vs1;
  const i64 diag = lk - lq;  // causal: row r sees the keys j <= r + diag
  const i64 last_row = q0 + BQ < lq ? q0 + BQ : lq;  // one past the block's last row
  const i64 kend = causal && last_row + diag < lk ? last_row + diag : lk;
  const int tiles = (int)((kend + BK - 1) / BK);
  load_tile(ksm, kb, ks2, 0, lk);
  // this thread's rows r0 and r0 + 8 of the warp's 16; Q as mma A fragments
  const i64 r0 = q0 + warp * 16 + g, r1 = r0 + 8;
  u32 qf[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {{
    const int col = kk * 16 + 2 * t;
    qf[kk][0] = r0 < lq ? *(const u32*)(qb + r0 * qs2 + col) : 0u;
    qf[kk][1] = r1 < lq ? *(const u32*)(qb + r1 * qs2 + col) : 0u;
    qf[kk][2] = r0 < lq ? *(const u32*)(qb + r0 * qs2 + col + 8) : 0u;
    qf[kk][3] = r1 < lq ? *(const u32*)(qb + r1 * qs2 + col + 8) : 0u;
  }}
  float acc[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
  for (int it = 0; it < tiles; ++it) {{
    const i64 k0 = (i64)it * BK;
    // K(it) has landed, and every warp is done with V(it - 1)
    asm volatile("cp.async.wait_all;");
    __syncthreads();
    load_tile(vsm, vb, vs2, k0, lk);
    float s[BK / 8][4];
#pragma unroll
    for (int n = 0; n < BK / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {{
#pragma unroll
      for (int nn = 0; nn < BK / 16; ++nn) {{
        const int m = lane >> 3;
        u32 bf[4];
        ldm_x4(bf, ksm + (nn * 16 + (lane & 7) + (m >> 1) * 8) * LD + kk * 16 + (m & 1) * 8);
        mma(s[2 * nn], qf[kk], bf[0], bf[1]);
        mma(s[2 * nn + 1], qf[kk], bf[2], bf[3]);
      }}
    }}
    // scale (into log2 units) and mask; the row maximum over the quad sharing a row. Only
    // tiles crossing the keys' end or the block's causal edge have masked scores.
    const bool edge = k0 + BK > lk || (causal && k0 + BK - 1 > q0 + diag);
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int n = 0; n < BK / 8; ++n) {{
#pragma unroll
      for (int e = 0; e < 4; ++e) {{
        float x = s[n][e] * scale_log2;
        if (edge) {{
          const i64 key = k0 + n * 8 + 2 * t + (e & 1), row = e < 2 ? r0 : r1;
          if (key >= lk || (causal && key > row + diag)) x = -3.0e38f;
        }}
        s[n][e] = x;
      }}
      mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
      mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
    }}
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffff, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffff, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffff, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffff, mx1, 2));
    const float a0 = exp2f(m0 - mx0), a1 = exp2f(m1 - mx1);
    m0 = mx0; m1 = mx1;
    float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
    for (int n = 0; n < BK / 8; ++n) {{
      s[n][0] = exp2f(s[n][0] - m0); s[n][1] = exp2f(s[n][1] - m0);
      s[n][2] = exp2f(s[n][2] - m1); s[n][3] = exp2f(s[n][3] - m1);
      sum0 += s[n][0] + s[n][1]; sum1 += s[n][2] + s[n][3];
    }}
    l0 = l0 * a0 + sum0; l1 = l1 * a1 + sum1;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {{ acc[n][0] *= a0; acc[n][1] *= a0; acc[n][2] *= a1; acc[n][3] *= a1; }}
    // V(it) has landed, and every warp is done with K(it): the next K loads under P V
    asm volatile("cp.async.wait_all;");
    __syncthreads();
    if (it + 1 < tiles) load_tile(ksm, kb, ks2, k0 + BK, lk);
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {{
      // the accumulators of two score tiles are one A fragment of P
      const u32 pa[4] = {{pack2(s[2 * kk][0], s[2 * kk][1]), pack2(s[2 * kk][2], s[2 * kk][3]),
                         pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2(s[2 * kk + 1][2], s[2 * kk + 1][3])}};
#pragma unroll
      for (int nd = 0; nd < D / 16; ++nd) {{
        const int m = lane >> 3;
        u32 bf[4];
        ldm_x4_trans(bf, vsm + (kk * 16 + (lane & 7) + (m & 1) * 8) * LD + nd * 16 + (m >> 1) * 8);
        mma(acc[2 * nd], pa, bf[0], bf[1]);
        mma(acc[2 * nd + 1], pa, bf[2], bf[3]);
      }}
    }}
  }}
  l0 += __shfl_xor_sync(0xffffffff, l0, 1);
  l0 += __shfl_xor_sync(0xffffffff, l0, 2);
  l1 += __shfl_xor_sync(0xffffffff, l1, 1);
  l1 += __shfl_xor_sync(0xffffffff, l1, 2);
  const float inv0 = 1.f / l0, inv1 = 1.f / l1;
  u16* ob = o + (b * hq + h) * lq * D;
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {{
    const int col = n * 8 + 2 * t;
    if (r0 < lq) *(u32*)(ob + r0 * D + col) = pack2(acc[n][0] * inv0, acc[n][1] * inv0);
    if (r1 < lq) *(u32*)(ob + r1 * D + col) = pack2(acc[n][2] * inv1, acc[n][3] * inv1);
  }}
}}
"#
        );
        Some(Kernel { name, src })
    })
}

/// Whether `x` (4-d, last axis contiguous) can be read by 16-byte copies: its address and
/// the strides of its first three axes are multiples of 8 elements.
fn vector_aligned(gpu: &'static Gpu, x: &ArrayData) -> Result<Option<u64>> {
    let p = device_ptr(gpu, x)?;
    let strides_ok = x.strides[..3].iter().all(|&s| s >= 0 && s % 8 == 0);
    Ok((strides_ok && p % 16 == 0).then_some(p))
}

/// `softmax(scale · q kᵀ) v` (`causal`: lower-right causal mask) for 4-d `q`, `k`, `v` of
/// half dtypes with contiguous last axes; `None` when the kernel does not apply.
pub fn flash_attention(
    gpu: &'static Gpu,
    q: &ArrayData,
    k: &ArrayData,
    v: &ArrayData,
    causal: bool,
    scale: f32,
) -> Result<Option<ArrayData>> {
    let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
    let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3]);
    let same_dtype = k.dtype == q.dtype && v.dtype == q.dtype;
    if !enabled()
        || !same_dtype
        || d != dv
        || lq < MIN_QUERY_ROWS
        || lk == 0
        || hkv == 0
        || !hq.is_multiple_of(hkv)
        || (causal && lq > lk)
        || b > 65535
        || hq > 65535
    {
        return Ok(None);
    }
    let Some(Kernel { name, src }) = flash_kernel(q.dtype, d) else {
        return Ok(None);
    };
    let (Some(qp), Some(kp), Some(vp)) = (
        vector_aligned(gpu, q)?,
        vector_aligned(gpu, k)?,
        vector_aligned(gpu, v)?,
    ) else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, q.dtype, &[b, hq, lq, d])?;
    let f = gpu.kernel(&name, || src)?;
    let ints = [hq, hq / hkv, lq, lk].map(|x| x as i64);
    let strides = [q, k, v].map(|x| [0, 1, 2].map(|i| x.strides[i] as i64));
    let scale_log2 = scale * std::f32::consts::LOG2_E;
    let causal = causal as i32;
    let mut bld = gpu.launch(&f);
    bld.arg(&qp).arg(&kp).arg(&vp).arg(&optr);
    for x in ints.iter().chain(strides.iter().flatten()) {
        bld.arg(x);
    }
    bld.arg(&scale_log2).arg(&causal);
    let cfg = LaunchConfig {
        grid_dim: (lq.div_ceil(BQ) as u32, hq as u32, b as u32),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { bld.launch(cfg) }.map_err(|e| driver_err("launching flash attention", e))?;
    Ok(Some(out))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    [Dtype::Bfloat16, Dtype::Float16]
        .into_iter()
        .flat_map(|t| [64, 128].map(|d| flash_kernel(t, d).expect("a kernel")))
        .collect()
}
