//! Attention for many query rows (prompt processing, training) through cuBLAS: the scores
//! `S = scale · Q Kᵀ` in float32 (float64 for float64 inputs), the mask and the softmax in
//! one row kernel writing `P` in the input dtype, then `O = P V`. The one-row-per-block
//! kernel of `fast.rs` walks the keys of each query row with CUDA cores; a decoder layer
//! with a causal 2048-token prompt over 32 heads of 128 took 37.1 ms with it, 2.24 ms
//! with this path, whose attention alone takes 0.69 ms on an H200 (torch's flash
//! attention: 0.09 ms). A decode step's 32 query heads take it too: it
//! measured faster there than the row kernel (docs/BENCHMARKS.md, session 18). Masked
//! scores are the dtype's lowest finite value and causal alignment is lower right, as in
//! `fast.rs` and on the CPU. Grouped-query attention views each key head's `rep` query
//! heads as one matrix of `rep · Lq` rows.

use super::elementwise::{generated, row_contiguous as dense, Kernel};
use super::fast::{ADD_MASK, BOOL_MASK, CAUSAL, NO_MASK};
use super::matmul::product;
use super::prelude::{ctype, tag, PRELUDE};
use super::softmax::ROW_REDUCE;
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::AttnMask;
use rmx_core::dtype::finfo;
use rmx_core::{ArrayData, Dtype, Result};

/// Fewest query rows (over all heads of a batch element) that take the products; the
/// environment variable `RMX_ATTN_GEMM_MIN_ROWS` overrides it (for A/B runs).
const MIN_QUERY_ROWS: usize = 16;

fn min_query_rows() -> usize {
    static MIN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| {
        std::env::var("RMX_ATTN_GEMM_MIN_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MIN_QUERY_ROWS)
    })
}
/// Most bytes of scores one call may hold; longer attention keeps `fast.rs`'s kernel.
const MAX_SCORE_BYTES: usize = 1 << 30;
const THREADS: u32 = 256;
/// Scores one thread holds in registers (rows of up to THREADS · HELD keys are read once).
const HELD: usize = 32;

/// The masked softmax from scores of `score` dtype to probabilities of `dtype`; `held`
/// scores per thread in registers, read `w` at a time (16-byte vectors of scores when rows
/// allow), or `held == 0` for rows read three times.
pub fn masked_softmax_kernel(
    score: Dtype,
    dtype: Dtype,
    mask_dtype: Option<Dtype>,
    held: usize,
    w: usize,
) -> Option<Kernel> {
    generated(
        format!(
            "masked_softmax_kernel {:?}",
            (score, dtype, mask_dtype, held, w)
        ),
        || {
            let (ts, t) = (ctype(score)?, ctype(dtype).filter(|t| t.float)?);
            let mt = ctype(mask_dtype.unwrap_or(dtype))?;
            let name = format!(
                "masked_softmax_{}_{}_{}_e{held}_w{w}",
                tag(score),
                tag(dtype),
                mask_dtype.map_or("none", tag)
            );
            let (c, ms, ps) = (ts.compute, mt.store, t.store);
            let exp = ts.math("exp");
            // W probabilities are stored as one word of W · size bytes
            let word = match w * dtype.size() {
                16 => "uint4",
                8 => "uint2",
                4 => "u32",
                2 => "u16",
                _ => "u8",
            };
            let src = format!(
                r#"{PRELUDE}{ROW_REDUCE}
extern "C" __global__ void {name}(const {c}* __restrict__ s, {ps}* __restrict__ p, const {ms}* __restrict__ mask,
    i64 rows, i64 lq, i64 lk, i64 hq, i64 ms0, i64 ms1, i64 ms2, i64 ms3, int mask_kind, {c} lowest) {{
  constexpr int E = {held}, W = {w};
  __shared__ {c} sh[2][32];
  auto mx = []({c} a, {c} b) {{ return (is_nan(a) || a > b) ? a : b; }};
  auto add = []({c} a, {c} b) {{ return a + b; }};
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {{
    const i64 qi = rem_of(r, lq), rh = quot_of(r, lq), h = rem_of(rh, hq), bi = quot_of(rh, hq);
    const i64 last = qi + lk - lq;  // causal: the last visible key
    const {c}* sr = s + r * lk; {ps}* pr = p + r * lk;
    const {ms}* mr = mask ? mask + bi * ms0 + h * ms1 + qi * ms2 : mask;
    auto masked = [&]({c} v, i64 j) {{
      if (mask_kind == {CAUSAL}) {{ if (j > last) v = lowest; }}
      else if (mask_kind == {BOOL_MASK}) {{ if (!mr[j * ms3]) v = lowest; }}
      else if (mask_kind == {ADD_MASK}) v += ({c}){lmask};
      return v;
    }};
    auto score = [&](i64 j) {{ return masked(sr[j], j); }};
    {c} m = -INFINITY, sum = 0;
    if (E > 0) {{
      // every score's load issued before any masking: mixed with the mask's branches,
      // each load waited for the one before it
      {c} v[E > 0 ? E : 1];
#pragma unroll
      for (int k = 0; k < E / W; ++k) {{
        const i64 j = ((i64)k * blockDim.x + threadIdx.x) * W;
        if (j < lk) {{
          union {{ {vin} u; {c} e[W]; }} t;
          t.u = *(const {vin}*)(sr + j);
#pragma unroll
          for (int q = 0; q < W; ++q) v[k * W + q] = t.e[q];
        }} else {{
#pragma unroll
          for (int q = 0; q < W; ++q) v[k * W + q] = -INFINITY;
        }}
      }}
#pragma unroll
      for (int k = 0; k < E / W; ++k) {{
        const i64 j = ((i64)k * blockDim.x + threadIdx.x) * W;
#pragma unroll
        for (int q = 0; q < W; ++q) {{
          if (j < lk && mask_kind != {NO_MASK}) v[k * W + q] = masked(v[k * W + q], j + q);
          m = mx(m, v[k * W + q]);
        }}
      }}
      m = row_reduce<{THREADS}>(m, mx, sh[0]);
#pragma unroll
      for (int k = 0; k < E / W; ++k) {{
        if (((i64)k * blockDim.x + threadIdx.x) * W >= lk) continue;
#pragma unroll
        for (int q = 0; q < W; ++q) {{ v[k * W + q] = {exp}(v[k * W + q] - m); sum += v[k * W + q]; }}
      }}
      sum = row_reduce<{THREADS}>(sum, add, sh[1]);
      const {c} inv = 1 / sum;
#pragma unroll
      for (int k = 0; k < E / W; ++k) {{
        const i64 j = ((i64)k * blockDim.x + threadIdx.x) * W;
        if (j < lk) {{
          union {{ {word} u; {ps} e[W]; }} t;
#pragma unroll
          for (int q = 0; q < W; ++q) t.e[q] = {store_v};
          *({word}*)(pr + j) = t.u;
        }}
      }}
    }} else {{
      for (i64 j = threadIdx.x; j < lk; j += blockDim.x) m = mx(m, score(j));
      m = row_reduce<{THREADS}>(m, mx, sh[0]);
      for (i64 j = threadIdx.x; j < lk; j += blockDim.x) sum += {exp}(score(j) - m);
      sum = row_reduce<{THREADS}>(sum, add, sh[1]);
      const {c} inv = 1 / sum;
      for (i64 j = threadIdx.x; j < lk; j += blockDim.x) pr[j] = {store_s};
    }}
    // the next row's reductions reuse `sh`
    __syncthreads();
  }}
}}
"#,
                vin = if w == 1 { c } else { "uint4" },
                lmask = mt.load("mr[j * ms3]"),
                store_v = t.store("v[k * W + q] * inv"),
                store_s = t.store(&format!("{exp}(score(j) - m) * inv")),
            );
            Some(Kernel { name, src })
        },
    )
}

/// `x` (4-d) seen with new shape and strides over the same memory.
fn view(x: &ArrayData, shape: [usize; 4], strides: [isize; 4]) -> ArrayData {
    x.view(shape.as_slice().into(), strides.as_slice().into(), x.offset)
}

/// `softmax(scale · q kᵀ + mask) v` for 4-d `q`, `k`, `v` (last axes contiguous); `None`
/// when the shapes are for the row kernel (few query rows, huge scores, no cuBLAS type).
pub fn attention_gemm(
    gpu: &'static Gpu,
    q: &ArrayData,
    k: &ArrayData,
    v: &ArrayData,
    mask: AttnMask<'_>,
    mask_kind: i32,
    scale: f32,
) -> Result<Option<ArrayData>> {
    let (b, hq, lq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
    let (hkv, lk, dv) = (k.shape[1], k.shape[2], v.shape[3]);
    let score = if q.dtype == Dtype::Float64 {
        Dtype::Float64
    } else {
        Dtype::Float32
    };
    if hq * lq < min_query_rows()
        || b * hq * lq * lk * score.size() > MAX_SCORE_BYTES
        || hkv == 0
        || !hq.is_multiple_of(hkv)
        || !matches!(
            q.dtype,
            Dtype::Float16 | Dtype::Bfloat16 | Dtype::Float32 | Dtype::Float64
        )
    {
        return Ok(None);
    }
    let mask_arr = match mask {
        AttnMask::Array(m) => Some(m),
        _ => None,
    };
    // rows of scores start 16-byte aligned when lk is a multiple of a vector
    let lanes = 16 / score.size();
    let w = if lk.is_multiple_of(lanes) { lanes } else { 1 };
    let held = match lk.div_ceil(THREADS as usize) {
        e if e <= HELD => e.max(w).next_power_of_two(),
        _ => 0,
    };
    let Some(Kernel { name, src }) =
        masked_softmax_kernel(score, q.dtype, mask_arr.map(|m| m.dtype), held, w)
    else {
        return Ok(None);
    };
    let rep = hq / hkv;
    let (d_, lq_, hq_) = (d as isize, lq as isize, hq as isize);
    // q as [b, hkv, rep · lq, d]: with several query heads per key head, made dense so
    // each key head's query heads are one matrix
    let qv = if rep == 1 {
        q.clone()
    } else {
        let Some(qd) = dense(gpu, q)? else {
            return Ok(None);
        };
        view(
            &qd,
            [b, hkv, rep * lq, d],
            [hq_ * lq_ * d_, rep as isize * lq_ * d_, d_, 1],
        )
    };
    let kt = view(
        k,
        [b, hkv, d, lk],
        [k.strides[0], k.strides[1], 1, k.strides[2]],
    );
    let Some(s) = product(gpu, &qv, &kt, score, scale)? else {
        return Ok(None);
    };
    let (p, pptr) = alloc_output(gpu, q.dtype, &[b, hkv, rep * lq, lk])?;
    let rows = b * hq * lq;
    let lowest = finfo(q.dtype).map_or(f64::MIN, |f| f.min);
    let ms: [i64; 4] = match mask_arr {
        Some(m) => [0, 1, 2, 3].map(|i| m.strides[i] as i64),
        None => [0; 4],
    };
    let mp = match mask_arr {
        Some(m) => device_ptr(gpu, m)?,
        None => 0,
    };
    let sptr = device_ptr(gpu, &s)?;
    let f = gpu.kernel(&name, || src)?;
    let dims = [rows, lq, lk, hq].map(|x| x as i64);
    let mut bld = gpu.launch(&f);
    bld.arg(&sptr).arg(&pptr).arg(&mp);
    for x in dims.iter().chain(&ms) {
        bld.arg(x);
    }
    let kind = if mask_arr.is_none() && mask_kind != CAUSAL {
        NO_MASK
    } else {
        mask_kind
    };
    bld.arg(&kind);
    let lowest32 = lowest as f32;
    if score == Dtype::Float64 {
        bld.arg(&lowest);
    } else {
        bld.arg(&lowest32);
    }
    let cfg = LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { bld.launch(cfg) }.map_err(|e| driver_err("launching masked softmax", e))?;
    drop(s); // stream-ordered free after the kernel
    let vv = view(
        v,
        [b, hkv, lk, dv],
        [v.strides[0], v.strides[1], v.strides[2], 1],
    );
    let Some(o) = product(gpu, &p, &vv, q.dtype, 1.0)? else {
        return Ok(None);
    };
    // [b, hkv, rep · lq, dv] is [b, hq, lq, dv], dense
    let dv_ = dv as isize;
    Ok(Some(view(
        &o,
        [b, hq, lq, dv],
        [hq_ * lq_ * dv_, lq_ * dv_, dv_, 1],
    )))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    let mut ks = Vec::new();
    for (score, dtype) in [
        (Dtype::Float32, Dtype::Bfloat16),
        (Dtype::Float32, Dtype::Float16),
        (Dtype::Float32, Dtype::Float32),
        (Dtype::Float64, Dtype::Float64),
    ] {
        let lanes = 16 / score.size();
        for mask in [None, Some(Dtype::Bool), Some(dtype)] {
            for (held, w) in [(0, 1), (8, 1), (8, lanes)] {
                ks.extend(masked_softmax_kernel(score, dtype, mask, held, w));
            }
        }
    }
    ks
}
