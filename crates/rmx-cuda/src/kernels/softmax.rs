//! Softmax over the last axis. Rows of up to 32 values per thread (16 for float64) are read
//! once into registers, by 16-byte vectors where the row allows it: short rows by a group of
//! 1 to 32 lanes of a warp, rows up to 1024 elements by a warp, up to 8192 by a block; longer
//! rows take three passes over the row in a block. Statistics in float (double for float64),
//! the same `exp(x - max) / sum` arithmetic in every variant.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, CType, PRELUDE};
use super::rows::{row_config, row_job, BLOCK, BLOCK_REDUCE};
use crate::device::{driver_err, Gpu};
use cudarc::driver::LaunchConfig;
use rmx_core::{ArrayData, Dtype, Result};

/// Reduction over a row's threads: a butterfly within the row's lanes of a warp, then (a
/// block per row) the warps' partials; `sh` is the caller's own buffer per statistic, so one barrier per reduction
/// suffices.
pub const ROW_REDUCE: &str = r#"
template <int TPR, typename C, typename F> __device__ __forceinline__ C row_reduce(C v, F f, C* sh) {
  for (int s = (TPR < 32 ? TPR : 32) >> 1; s > 0; s >>= 1) v = f(v, __shfl_xor_sync(0xffffffff, v, s));
  if (TPR > 32) {
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    v = sh[0];
    for (int k = 1; k < TPR / 32; ++k) v = f(v, sh[k]);
  }
  return v;
}
"#;

/// Most values one thread holds, in bytes of the compute type (32 floats, 16 doubles).
const HELD_BYTES: usize = 128;

/// How a row is spread over threads: `tpr` threads per row, `e` values per thread, read
/// and written `w` at a time (1, or a 16-byte vector).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    pub tpr: u32,
    pub e: usize,
    pub w: usize,
}

/// The spread for rows of `n` elements of `dtype`; `None` when a row does not fit in the
/// threads' registers. `vector`: rows start 16-byte aligned, so whole vectors can be read
/// when `n` is a multiple of one. Rows shorter than a warp's share take part of a warp
/// (each lane then holds at most 8 values, or one vector), so a warp works on several
/// rows at once.
pub fn spread(dtype: Dtype, n: usize, vector: bool) -> Option<Spread> {
    let compute = if dtype == Dtype::Float64 { 8 } else { 4 };
    let most = HELD_BYTES / compute;
    let lanes = 16 / dtype.size();
    let w = if vector && n.is_multiple_of(lanes) {
        lanes
    } else {
        1
    };
    [1u32, 2, 4, 8, 16, 32, BLOCK].into_iter().find_map(|tpr| {
        let per = n.div_ceil(tpr as usize).max(w).next_power_of_two();
        let limit = if tpr < 32 { w.max(8) } else { most };
        (per <= limit).then_some(Spread { tpr, e: per, w })
    })
}

/// The register-resident softmax of `dtype` rows for spread `s`.
pub fn softmax_rows_kernel(dtype: Dtype, s: Spread) -> Option<Kernel> {
    generated(format!("softmax_rows_kernel {:?}", (dtype, s)), || {
        let t = ctype(dtype).filter(|t| t.float)?;
        let Spread { tpr, e, w } = s;
        let name = format!("softmax_{}_t{tpr}_e{e}_w{w}", tag(dtype));
        let (c, st) = (t.compute, t.store);
        let exp = t.math("exp");
        let (load, store) = if w == 1 {
            (
                format!("v[k] = {};", t.load("xr[j]")),
                format!("orow[j] = {};", t.store("v[k] * inv")),
            )
        } else {
            (
                vector_read(&t, "xr", "v[k * W + q]"),
                vector_write(&t, "v[k * W + q] * inv"),
            )
        };
        let head = rows_loop_head(c, st, &load, "-INFINITY");
        let src = format!(
            r#"{PRELUDE}{ROW_REDUCE}
extern "C" __global__ void {name}(const {st}* __restrict__ x, {st}* __restrict__ out, i64 rows, i64 n) {{
  constexpr int TPR = {tpr}, E = {e}, W = {w};
  __shared__ {c} sh[2][32];
  auto mx = []({c} a, {c} b) {{ return (is_nan(a) || a > b) ? a : b; }};
  auto add = []({c} a, {c} b) {{ return a + b; }};
{head}    {c} m = v[0];
#pragma unroll
    for (int k = 1; k < E; ++k) m = mx(m, v[k]);
    m = row_reduce<TPR>(m, mx, sh[0]);
    {c} sum = 0;
#pragma unroll
    for (int k = 0; k < E / W; ++k) {{
      if (((i64)k * TPR + lane) * W >= len) continue;
#pragma unroll
      for (int q = 0; q < W; ++q) {{ v[k * W + q] = {exp}(v[k * W + q] - m); sum += v[k * W + q]; }}
    }}
    sum = row_reduce<TPR>(sum, add, sh[1]);
    const {c} inv = 1 / sum;
#pragma unroll
    for (int k = 0; k < E / W; ++k) {{
      const i64 j = ((i64)k * TPR + lane) * W;
      if (j < len) {{
        {store}
      }}
    }}
  }}
}}
"#
        );
        Some(Kernel { name, src })
    })
}

/// A 16-byte vector of the row `src` at `j` into `dst` (indexed by `q`), converted to the
/// compute type.
pub(super) fn vector_read(t: &CType, src: &str, dst: &str) -> String {
    format!(
        "{{ union {{ uint4 u; {} s[W]; }} t; t.u = *(const uint4*)({src} + j);\n#pragma unroll\n        for (int q = 0; q < W; ++q) {dst} = {}; }}",
        t.store,
        t.load("t.s[q]")
    )
}

/// `value` (of element `q`) for the 16-byte vector of `orow` at `j`, rounded to the dtype.
pub(super) fn vector_write(t: &CType, value: &str) -> String {
    format!(
        "union {{ uint4 u; {} s[W]; }} t;\n#pragma unroll\n        for (int q = 0; q < W; ++q) t.s[q] = {};\n        *(uint4*)(orow + j) = t.u;",
        t.store,
        t.store(value)
    )
}

/// The opening of a register-resident row kernel (spread `TPR`, `E`, `W` as constants):
/// the block-uniform loop over rows (every lane of a warp reaches the shuffles; rows past
/// the end, a warp's last groups, read and write nothing) defining `lane`, `r`, `len`,
/// `xr`, `orow`, and the row's values read into `v[E]` by `load` at `j`, `pad` past the
/// end. The caller closes the loop.
pub(super) fn rows_loop_head(c: &str, st: &str, load: &str, pad: &str) -> String {
    format!(
        r#"  const int lane = threadIdx.x % TPR, per_block = blockDim.x / TPR;
  for (i64 first = (i64)blockIdx.x * per_block; first < rows; first += (i64)gridDim.x * per_block) {{
    const i64 r = first + threadIdx.x / TPR;
    const i64 len = r < rows ? n : 0;
    const {st}* xr = x + r * n; {st}* orow = out + r * n;
    {c} v[E];
#pragma unroll
    for (int k = 0; k < E / W; ++k) {{
      const i64 j = ((i64)k * TPR + lane) * W;
      if (j < len) {{
        {load}
      }} else {{
#pragma unroll
        for (int q = 0; q < W; ++q) v[k * W + q] = {pad};
      }}
    }}
"#
    )
}

/// Softmax over rows too long for registers: three passes over the row in a block (the
/// second and third read it from cache).
pub fn softmax_kernel(dtype: Dtype) -> Option<Kernel> {
    generated(format!("softmax_kernel {:?}", (dtype,)), || {
        let t = ctype(dtype).filter(|t| t.float)?;
        let name = format!("softmax_{}", tag(dtype));
        let src = {
            let c = t.compute;
            let exp = t.math("exp");
            let ld = t.load("xr[j]");
            format!(
                r#"{PRELUDE}{BLOCK_REDUCE}
        extern "C" __global__ void {name}(const {s}* x, {s}* out, i64 rows, i64 n) {{
          __shared__ {c} sh[32];
          auto mx = [](C_ a, C_ b) {{ return (is_nan(a) || a > b) ? a : b; }};
          auto add = [](C_ a, C_ b) {{ return a + b; }};
          for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {{
        const {s}* xr = x + r * n; {s}* orow = out + r * n;
        {c} m = -INFINITY;
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) m = mx(m, {ld});
        m = block_reduce(m, mx, sh, ({c})-INFINITY);
        {c} sum = 0;
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) sum += {exp}({ld} - m);
        sum = block_reduce(sum, add, sh, ({c})0);
        {c} inv = 1 / sum;
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) orow[j] = {st};
          }}
        }}
        "#,
                s = t.store,
                st = t.store(&format!("{exp}({ld} - m) * inv")),
            )
            .replace("C_", c)
        };
        Some(Kernel { name, src })
    })
}

pub fn softmax(gpu: &'static Gpu, x: &ArrayData) -> Result<Option<ArrayData>> {
    if softmax_kernel(x.dtype).is_none() {
        return Ok(None);
    }
    // the job holds the dense input until the launch (rows.rs)
    let Some(job) = row_job(gpu, x)? else {
        return Ok(None);
    };
    let (rows, n) = (job.rows, job.n);
    if rows == 0 {
        return Ok(Some(job.out));
    }
    let aligned = (job.xptr | job.optr).is_multiple_of(16);
    let (kernel, config) = match spread(x.dtype, n, aligned) {
        Some(s) => {
            let per_block = (BLOCK / s.tpr) as usize;
            let blocks = rows.div_ceil(per_block).clamp(1, 1 << 20) as u32;
            let config = LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            (softmax_rows_kernel(x.dtype, s), config)
        }
        None => (softmax_kernel(x.dtype), row_config(rows)),
    };
    let Some(Kernel { name, src }) = kernel else {
        return Ok(None);
    };
    let f = gpu.kernel(&name, || src)?;
    let (r64, n64) = (rows as i64, n as i64);
    let mut b = gpu.launch(&f);
    b.arg(&job.xptr).arg(&job.optr).arg(&r64).arg(&n64);
    unsafe { b.launch(config) }.map_err(|e| driver_err("launching softmax", e))?;
    Ok(Some(job.out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_spread_over_a_warp_or_a_block_or_fall_back() {
        let s = |d, n, v| spread(d, n, v).map(|s| (s.tpr, s.e, s.w));
        assert_eq!(s(Dtype::Bfloat16, 8192, true), Some((256, 32, 8)));
        assert_eq!(s(Dtype::Bfloat16, 8192, false), Some((256, 32, 1)));
        assert_eq!(s(Dtype::Float32, 1024, true), Some((32, 32, 4)));
        assert_eq!(s(Dtype::Float32, 1025, true), Some((256, 8, 1)));
        assert_eq!(s(Dtype::Float32, 3, true), Some((1, 4, 1)));
        assert_eq!(s(Dtype::Float16, 8, true), Some((1, 8, 8)));
        assert_eq!(s(Dtype::Bfloat16, 128, true), Some((16, 8, 8)));
        assert_eq!(s(Dtype::Float32, 130, false), Some((32, 8, 1)));
        assert_eq!(s(Dtype::Float32, 100, false), Some((16, 8, 1)));
        assert_eq!(s(Dtype::Float64, 512, true), Some((32, 16, 2)));
        assert_eq!(s(Dtype::Float64, 4097, true), None);
        assert_eq!(s(Dtype::Float32, 8193, true), None);
    }
}
