//! `x @ W.T` for a few rows of `x` and a float weight `W` whose rows are contiguous (a
//! `Linear` layer's layout): the matrix-vector product of decoding, where a cuBLAS GEMM
//! call cost 20 µs of host time per product against 7-8 µs for this kernel's launch
//! (H200 machines, Llama-1B decode). One warp per output feature, or 2-4 sharing it for
//! narrow weights; each lane reads 16-byte runs of its row, several issued before any is
//! used, so enough loads are in flight to stream the weight; f32 accumulation.

use super::elementwise::{generated, Kernel};
use super::norm_linear::Prologue;
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::{ArrayData, Dtype, Result};

/// Rows of `x` up to which the matrix-vector kernels run (their accumulators are registers).
pub const MAX_ROWS: usize = 8;
/// Warps per block of the 4-bit matrix-vector kernels (qmm.rs).
pub const WARPS: u32 = 4;

/// The dense kernel's shape: warps per block, 16-byte runs each lane loads before using
/// them, and the number of warps in all that narrow weights are split up to.
/// `RMX_GEMV_TUNING=warps,unroll,target` overrides it (for measuring variants).
#[derive(Clone, Copy, Debug)]
struct Tuning {
    warps: u32,
    unroll: usize,
    target: usize,
}

fn tuning() -> Tuning {
    static T: std::sync::OnceLock<Tuning> = std::sync::OnceLock::new();
    *T.get_or_init(|| {
        // measured on an H200 over a Llama-1B decode step's products (the graph's
        // replay: 1.539 ms at 4 runs per lane and 6144 warps, 1.456 here, 1.448 at 1 run;
        // 8 and 16 warps per block were no better)
        let default = Tuning {
            warps: 4,
            unroll: 2,
            target: 24576,
        };
        let Ok(v) = std::env::var("RMX_GEMV_TUNING") else {
            return default;
        };
        let f: Vec<usize> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
        match f[..] {
            [w, u, t] if w.is_power_of_two() && w <= 16 && (1..=16).contains(&u) => Tuning {
                warps: w as u32,
                unroll: u,
                target: t,
            },
            _ => default,
        }
    })
}

/// `a` (`[..., R, C]`) as one matrix when every batch axis is broadcast (stride 0) or 1.
pub fn as_matrix(a: &ArrayData) -> Option<ArrayData> {
    let n = a.ndim();
    if n < 2 || (0..n - 2).any(|d| a.shape[d] != 1 && a.strides[d] != 0) {
        return None;
    }
    Some(a.view(a.shape[n - 2..].into(), a.strides[n - 2..].into(), a.offset))
}

/// C statements unpacking the 16-byte run `src` (a `uint4`) into `float dst[16 / size]`.
pub fn unpack16(dtype: Dtype, src: &str, dst: &str) -> Option<String> {
    let t = ctype(dtype)?;
    Some(match dtype {
        Dtype::Float32 => format!(
            "{dst}[0] = __uint_as_float({src}.x); {dst}[1] = __uint_as_float({src}.y); {dst}[2] = __uint_as_float({src}.z); {dst}[3] = __uint_as_float({src}.w);"
        ),
        Dtype::Float16 | Dtype::Bfloat16 => {
            let mut s = format!("{{ const u32 ws_[4] = {{{src}.x, {src}.y, {src}.z, {src}.w}};\n#pragma unroll\n for (int j_ = 0; j_ < 4; ++j_) {{ ");
            s += &format!(
                "{dst}[2 * j_] = {}; {dst}[2 * j_ + 1] = {}; }} }}",
                t.load("(u16)(ws_[j_] & 0xffffu)"),
                t.load("(u16)(ws_[j_] >> 16)")
            );
            s
        }
        _ => return None,
    })
}

/// The dense kernel for `dtype` (f32, f16 or bf16) with `warps` warps per block
/// (`tuning().warps`; `_norm` entries use larger blocks).
fn gemv_kernel_with(dtype: Dtype, warps: u32) -> Option<Kernel> {
    let unroll = tuning().unroll;
    generated(format!("gemv_kernel {dtype:?} {warps} {unroll}"), || {
        let t = ctype(dtype)?;
        let vec = 16 / dtype.size();
        let name = format!("gemv_{}_w{warps}u{unroll}", tag(dtype));
        let src = format!(
            r#"{PRELUDE}
// out[m, c] = sum_k x[m, k] w[c * ldw + k] for m < rows (x contiguous [rows, k]); k and ldw
// multiples of {vec}, w and x 16-byte aligned. `split` warps (a power of two up to the
// block's {warps}) share a row, each
// summing every split-th run, so narrow matrices with long rows still have enough warps
// (and loads in flight) to stream the weight; their sums meet in shared memory.
// GATED (`_1_gated`, swiglu_linear): the block's first half of warps take gate rows, the
// second half the up rows n / 2 after them (each row `split` warps, as the plain kernel
// splits it), and it writes silu(gate) * up.
// NORM (`_norm` entries, rms_norm_linear; one row): x is the row before its RMS norm; the
// block stages the normalized row in shared memory (norm_linear.rs) and reads it there.
{swiglu}
{stage}
template <int ROWS, bool GATED = false, bool NORM = false>
__device__ __forceinline__ void {name}_body(const {s}* __restrict__ w, const {s}* x, {s}* __restrict__ out, i64 n, i64 k, i64 ldw, int rows, int split, const {s}* r = nullptr, const {s}* nw = nullptr, {s}* hout = nullptr, float eps = 0.f) {{
  __shared__ float part[{warps}][ROWS];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  // gated: feature f's gate row in the first half of the warps, its up row in the second
  const int half = warp % ({warps} / 2);
  const i64 f = (i64)blockIdx.x * ({warps} / 2 / split) + half / split;
  const i64 col = !GATED ? (i64)blockIdx.x * ({warps} / split) + warp / split
                         : (f < n / 2 ? (warp < {warps} / 2 ? f : n / 2 + f) : n);
  const int piece = warp % split;
  const i64 vecs = k / {vec};
  // this warp's runs of the weight row stream into L2 while the kernel producing x
  // finishes (launch.rs)
  if (lane == 0 && col < n) {{
    const i64 per = vecs / split, first = piece * per, count = piece == split - 1 ? vecs - first : per;
    RMX_PREFETCH_L2(w + col * ldw + first * {vec}, count * 16);
  }}
  if (NORM && blockIdx.x == 0 && threadIdx.x == 32) RMX_PREFETCH_L2(nw, k * sizeof({s}));
  RMX_GRID_WAIT();
  if (NORM) {{
    extern __shared__ uint4 {name}_staged[];
    {name}_stage(x, r, nw, hout, reinterpret_cast<{s}*>({name}_staged), k, eps);
    x = reinterpret_cast<const {s}*>({name}_staged);
  }}
  const uint4* wr = reinterpret_cast<const uint4*>(w + col * ldw);
  float acc[ROWS] = {{}};
  const i64 stride = 32 * split;
  for (i64 base = piece * 32 + lane; col < n && base < vecs; base += stride * {unroll}) {{
    uint4 wv[{unroll}];
#pragma unroll
    for (int u = 0; u < {unroll}; ++u) {{
      const i64 i = base + stride * u;
      if (i < vecs) wv[u] = wr[i];
    }}
#pragma unroll
    for (int u = 0; u < {unroll}; ++u) {{
      const i64 i = base + stride * u;
      if (i < vecs) {{
        float wf[{vec}];
        {unpack_w}
#pragma unroll
        for (int m = 0; m < ROWS; ++m) {{
          if (m < rows) {{
            const uint4 xv = reinterpret_cast<const uint4*>(x + m * k)[i];
            float xf[{vec}];
            {unpack_x}
            float d = 0.f;
#pragma unroll
            for (int e = 0; e < {vec}; ++e) d = __fmaf_rn(wf[e], xf[e], d);
            acc[m] += d;
          }}
        }}
      }}
    }}
  }}
#pragma unroll
  for (int m = 0; m < ROWS; ++m) {{
    float a = acc[m];
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffff, a, o);
    acc[m] = a;
  }}
  if (GATED) {{
    __shared__ float gv[{warps}][ROWS];
    if (lane == 0)
#pragma unroll
      for (int m = 0; m < ROWS; ++m) gv[warp][m] = acc[m];
    __syncthreads();
    if (lane != 0 || warp >= {warps} / 2 || piece != 0 || f >= n / 2) return;
#pragma unroll
    for (int m = 0; m < ROWS; ++m) {{
      if (m >= rows) continue;
      // each row's pieces added in the plain kernel's order
      float g = 0.f, u = 0.f;
      for (int p = 0; p < split; ++p) {{ g += gv[warp + p][m]; u += gv[warp + {warps} / 2 + p][m]; }}
      out[m * (n / 2) + f] = {name}_swiglu(split > 1 ? g : gv[warp][m], split > 1 ? u : gv[warp + {warps} / 2][m]);
    }}
    return;
  }}
  if (split > 1) {{
    if (lane == 0)
#pragma unroll
      for (int m = 0; m < ROWS; ++m) part[warp][m] = acc[m];
    __syncthreads();
    if (piece != 0) return;
#pragma unroll
    for (int m = 0; m < ROWS; ++m) {{
      float a = 0.f;
      for (int p = 0; p < split; ++p) a += part[warp + p][m];
      acc[m] = a;
    }}
  }}
  if (lane != 0 || col >= n) return;
#pragma unroll
  for (int m = 0; m < ROWS; ++m) {{
    if (m < rows) {{
      const float a = acc[m];
      out[m * n + col] = {st};
    }}
  }}
}}
// both entries wait in the body, after its prefetch (RMX_GRID_WAIT)
extern "C" __global__ void {name}(const {s}* w, const {s}* x, {s}* out, i64 n, i64 k, i64 ldw, int rows, int split) {{
  {name}_body<{MAX_ROWS}>(w, x, out, n, k, ldw, rows, split);  // RMX_GRID_WAIT inside
}}
extern "C" __global__ void {name}_1_gated(const {s}* w, const {s}* x, {s}* out, i64 n, i64 k, i64 ldw, int rows, int split) {{
  {name}_body<1, true>(w, x, out, n, k, ldw, rows, split);  // RMX_GRID_WAIT inside
}}
// one row of x (decode): fewer registers, more warps resident
extern "C" __global__ void {name}_1(const {s}* w, const {s}* x, {s}* out, i64 n, i64 k, i64 ldw, int rows, int split) {{
  {name}_body<1>(w, x, out, n, k, ldw, rows, split);  // RMX_GRID_WAIT inside
}}
extern "C" __global__ void {name}_1_norm(const {s}* w, const {s}* x, {s}* out, i64 n, i64 k, i64 ldw, int rows, int split, const {s}* r, const {s}* nw, {s}* hout, float eps) {{
  {name}_body<1, false, true>(w, x, out, n, k, ldw, rows, split, r, nw, hout, eps);  // RMX_GRID_WAIT inside
}}
extern "C" __global__ void {name}_1_gated_norm(const {s}* w, const {s}* x, {s}* out, i64 n, i64 k, i64 ldw, int rows, int split, const {s}* r, const {s}* nw, {s}* hout, float eps) {{
  {name}_body<1, true, true>(w, x, out, n, k, ldw, rows, split, r, nw, hout, eps);  // RMX_GRID_WAIT inside
}}
"#,
            s = t.store,
            unpack_w = unpack16(dtype, "wv[u]", "wf")?,
            unpack_x = unpack16(dtype, "xv", "xf")?,
            st = t.store("a"),
            swiglu = super::ops_c::swiglu_fn(&format!("{name}_swiglu"), &t)?,
            stage = super::norm_linear::stage_fn(&format!("{name}_stage"), &t),
        );
        Some(Kernel { name, src })
    })
}

/// Warps per output feature (a power of two up to a block's warps): enough warps in all
/// (~190 per H200 SM: several waves) to keep the weight streaming, while each lane still
/// reads at least two of the row's `runs` 16-byte runs.
fn split_for(n: usize, runs: usize) -> usize {
    let t = tuning();
    let mut split = 1;
    while split < t.warps as usize && n * split < t.target && runs >= 32 * 2 * (split * 2) {
        split *= 2;
    }
    split
}

/// `a @ b` by the matrix-vector kernel when `a` has at most `MAX_ROWS` rows in all and `b`
/// is one transposed matrix with contiguous rows (`W.T` of a row-major `W`), aligned for
/// 16-byte loads; `Ok(None)` otherwise (cuBLAS takes it).
pub fn gemv(gpu: &'static Gpu, a: &ArrayData, b: &ArrayData) -> Result<Option<ArrayData>> {
    launch_gemv(gpu, a, b, false, None)
}

/// `silu(x W_g^T) * (x W_u^T)` for one row of `x` and `W = [W_g; W_u]` (`[2F, K]`, rows
/// contiguous; `swiglu_linear`) by the `_1_gated` entry; `None` where it does not apply.
pub fn gemv_swiglu(gpu: &'static Gpu, x: &ArrayData, w: &ArrayData) -> Result<Option<ArrayData>> {
    if w.ndim() != 2 {
        return Ok(None);
    }
    launch_gemv(gpu, x, &w.permuted(&[1, 0]), true, None)
}

/// `a @ b` (or its gated form) by the kernel, `None` where it does not apply; with a
/// `norm` (`rms_norm_linear`, one row) `a` is the row before its norm.
pub(crate) fn launch_gemv(
    gpu: &'static Gpu,
    a: &ArrayData,
    b: &ArrayData,
    gated: bool,
    norm: Option<Prologue>,
) -> Result<Option<ArrayData>> {
    if !matches!(a.dtype, Dtype::Float32 | Dtype::Float16 | Dtype::Bfloat16) || b.dtype != a.dtype {
        return Ok(None);
    }
    let nd = a.ndim();
    let k = a.shape[nd - 1];
    let rows = a.numel().checked_div(k).unwrap_or(0);
    let vec = 16 / a.dtype.size();
    if rows == 0 || rows > MAX_ROWS || k == 0 || !k.is_multiple_of(vec) || !a.is_row_contiguous() {
        return Ok(None);
    }
    let Some(bm) = as_matrix(b) else {
        return Ok(None);
    };
    // b is [k, n] with unit stride along k: W's rows, ldw apart
    let (n, ldw) = (bm.shape[1], bm.strides[1]);
    if bm.strides[0] != 1 || ldw < k as isize || !(ldw as usize).is_multiple_of(vec) || n == 0 {
        return Ok(None);
    }
    // rows split over warps as the plain kernel splits them (gated: the gate/up rows, so
    // the gated value is the separate product's, gated), except the gated `_norm` entry:
    // every block stages the normalized row, and a Llama-1B gate/up product took 33.6 us
    // at 2 warps per row (8192 blocks) against 26.4 at 1; without the norm 2 warps are
    // faster (781 against 750-760 tok/s for the decode step). A `_norm` entry's block
    // size may differ (norm_linear.rs).
    let warps = norm.map_or(tuning().warps, |_| super::norm_linear::norm_warps().0);
    let split = if gated && norm.is_some() {
        1
    } else {
        split_for(n, k / vec).min(warps as usize / (1 + gated as usize))
    };
    if (gated || norm.is_some()) && rows != 1 {
        return Ok(None);
    }
    if gated && (!n.is_multiple_of(2) || warps < 2) {
        return Ok(None);
    }
    let (xp, wp) = (device_ptr(gpu, a)?, device_ptr(gpu, &bm)?);
    if !xp.is_multiple_of(16) || !wp.is_multiple_of(16) {
        return Ok(None);
    }
    let Some(kern) = gemv_kernel_with(a.dtype, warps) else {
        return Ok(None);
    };
    let mut shape = a.shape.to_vec();
    shape[nd - 1] = if gated { n / 2 } else { n };
    let (out, optr) = alloc_output(gpu, a.dtype, &shape)?;
    let entry = match (rows, gated) {
        (_, true) => format!("{}_1_gated", kern.name),
        (1, false) => format!("{}_1", kern.name),
        _ => kern.name.clone(),
    } + if norm.is_some() { "_norm" } else { "" };
    let f = gpu.kernel_in(&kern.name, &entry, || kern.src)?;
    let (n64, k64, ld64, r32, s32) = (n as i64, k as i64, ldw as i64, rows as i32, split as i32);
    let mut bl = gpu.launch(&f);
    bl.arg(&wp)
        .arg(&xp)
        .arg(&optr)
        .arg(&n64)
        .arg(&k64)
        .arg(&ld64)
        .arg(&r32)
        .arg(&s32);
    if let Some(p) = &norm {
        bl.arg(&p.residual).arg(&p.weight).arg(&p.h_out).arg(&p.eps);
    }
    let warps = warps as usize;
    let blocks = if gated {
        (n / 2).div_ceil(warps / 2 / split)
    } else {
        n.div_ceil(warps / split)
    };
    let cfg = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (32 * warps as u32, 1, 1),
        shared_mem_bytes: norm.map_or(0, |p| p.smem),
    };
    unsafe { bl.launch(cfg) }.map_err(|e| driver_err("launching gemv", e))?;
    Ok(Some(out))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    // the `_norm` entries' block size when it differs from the plain kernel's
    let mut warps = vec![tuning().warps];
    warps.extend(Some(super::norm_linear::norm_warps().0).filter(|w| !warps.contains(w)));
    [Dtype::Float32, Dtype::Float16, Dtype::Bfloat16]
        .into_iter()
        .flat_map(|d| warps.iter().map(move |&w| gemv_kernel_with(d, w)))
        .flatten()
        .collect()
}
