//! Row kernels over the last axis: the RMS / layer norms (softmax: `softmax.rs`). One block per row;
//! statistics in float (double for float64), combined with warp shuffles.

use super::elementwise::{generated, row_contiguous, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use super::softmax::{rows_loop_head, spread, vector_read, vector_write, Spread, ROW_REDUCE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::NormKind;
use rmx_core::{ArrayData, Dtype, Result};

pub(super) const BLOCK: u32 = 256;

pub const BLOCK_REDUCE: &str = r#"
template <typename C, typename F> __device__ __forceinline__ C block_reduce(C v, F f, C* sh, C ident) {
  for (int s = 16; s > 0; s >>= 1) v = f(v, __shfl_down_sync(0xffffffff, v, s));
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < (blockDim.x >> 5) ? sh[threadIdx.x] : ident;
    for (int s = 16; s > 0; s >>= 1) v = f(v, __shfl_down_sync(0xffffffff, v, s));
    if (threadIdx.x == 0) sh[0] = v;
  }
  __syncthreads();
  v = sh[0];
  __syncthreads();
  return v;
}
"#;

/// A row kernel's launch: the fresh output, device addresses of the dense-row input and the
/// output, the row length and the number of rows.
pub(super) struct RowJob {
    /// The dense-row input (a fresh copy when `x` was strided). Held until the launch:
    /// dropped earlier, its device memory went back to the pool, and an upload queued
    /// before the kernel (a norm's weight) could reuse it: the first row then read the
    /// weight (`test_fast.py::test_vmap_vs_loop[rms_x]` on the GPU).
    _input: ArrayData,
    pub out: ArrayData,
    pub optr: u64,
    pub xptr: u64,
    pub n: usize,
    pub rows: usize,
}

/// `None` when `x` cannot be put in dense rows.
pub(super) fn row_job(gpu: &'static Gpu, x: &ArrayData) -> Result<Option<RowJob>> {
    let Some(x) = row_contiguous(gpu, x)? else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, x.dtype, &x.shape)?;
    let n = *x.shape.last().unwrap_or(&1);
    let rows = x.numel().checked_div(n).unwrap_or(0);
    let xptr = if rows == 0 { 0 } else { device_ptr(gpu, &x)? };
    Ok(Some(RowJob {
        _input: x,
        out,
        optr,
        xptr,
        n,
        rows,
    }))
}

/// Elements per thread a norm holds in registers.
const CACHE: usize = 8;

/// Most threads per norm row: the kernel's registers do not fit 1024 threads in a block.
const MAX_NORM_THREADS: usize = 512;

/// The launch of `norm_kernel` (residual norms, strided weights): wider rows get more
/// threads, so rows up to 4096 stay in its registers instead of being read three times.
fn norm_config(rows: usize, n: usize) -> LaunchConfig {
    let threads = n
        .div_ceil(CACHE)
        .next_power_of_two()
        .clamp(BLOCK as usize, MAX_NORM_THREADS);
    LaunchConfig {
        block_dim: (threads as u32, 1, 1),
        ..row_config(rows)
    }
}

pub(super) fn row_config(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// RMS (`rms`) or layer norm over rows of a floating dtype, with optional weight and bias.
pub fn norm_kernel(rms: bool, dtype: Dtype) -> Option<Kernel> {
    generated(format!("norm_kernel {:?}", (rms, dtype)), || {
        let t = ctype(dtype).filter(|t| t.float)?;
        let name = format!("norm_{}_{}", if rms { "rms" } else { "layer" }, tag(dtype));
        let src = {
            let c = t.compute;
            let ld = t.load("xr[j]");
            let round = |e: &str| t.load(&t.store(e));
            let y = "((v - mu) * rstd)";
            let with_w = format!("{} * {}", round(y), t.load("w[j * ws]"));
            let with_wb = format!("{} + {}", round(&with_w), t.load("bb[j * bs]"));
            let with_b = format!("{} + {}", round(y), t.load("bb[j * bs]"));
            let sqrt = t.math("sqrt");
            // rows of up to CACHE elements per thread are read once, into registers, all
            // loads issued together: a decode step's 2048-wide norm is one memory round
            // trip instead of a dependent load per loop turn (same sums, same order)
            let cached_stats = if rms {
                format!("{c} mu = 0; {c} ss = 0;\n    for (int i = 0; i < CACHE; ++i) ss += xc[i] * xc[i];\n    ss = block_reduce(ss, add, sh, ({c})0);\n    {c} rstd = 1 / {sqrt}(ss / ({c})n + ({c})eps);")
            } else {
                format!("{c} s1 = 0;\n    for (int i = 0; i < CACHE; ++i) s1 += xc[i];\n    {c} mu = block_reduce(s1, add, sh, ({c})0) / ({c})n;\n    {c} ss = 0;\n    for (int i = 0; i < CACHE; ++i) if (threadIdx.x + (i64)i * blockDim.x < n) {{ {c} v = xc[i] - mu; ss += v * v; }}\n    ss = block_reduce(ss, add, sh, ({c})0);\n    {c} rstd = 1 / {sqrt}(ss / ({c})n + ({c})eps);")
            };
            // element j of the output from its (normalized-to-be) value v
            let write = format!(
                "{c} o;\n    if ((flags & 3) == 0) o = {y};\n    else if ((flags & 3) == 1) o = {with_w};\n    else if ((flags & 3) == 2) o = {with_b};\n    else o = {with_wb};\n    orow[j] = {};",
                t.store("o")
            );
            let stats = if rms {
                format!("{c} mu = 0; {c} ss = 0;\n    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {{ {c} v = {ld}; ss += v * v; }}\n    ss = block_reduce(ss, add, sh, ({c})0);\n    {c} rstd = 1 / {sqrt}(ss / ({c})n + ({c})eps);")
            } else {
                format!("{c} s1 = 0;\n    for (i64 j = threadIdx.x; j < n; j += blockDim.x) s1 += {ld};\n    {c} mu = block_reduce(s1, add, sh, ({c})0) / ({c})n;\n    {c} ss = 0;\n    for (i64 j = threadIdx.x; j < n; j += blockDim.x) {{ {c} v = {ld} - mu; ss += v * v; }}\n    ss = block_reduce(ss, add, sh, ({c})0);\n    {c} rstd = 1 / {sqrt}(ss / ({c})n + ({c})eps);")
            };
            format!(
                r#"{PRELUDE}{BLOCK_REDUCE}
    // flags: 1 weight, 2 bias, 4 residual: the row normalized is h = x + res (rounded to
    // the dtype as `add` rounds), also written to hout
    extern "C" __global__ void {name}(const {s}* x, const {s}* w, i64 ws, const {s}* bb, i64 bs, {s}* out, i64 rows, i64 n, float eps, int flags, const {s}* res, {s}* hout) {{
      // the weight (a model's constant, evicted from L2 by a decode step's weight stream)
      // heads for L2 while the kernel before this one finishes (launch.rs)
      if (blockIdx.x == 0 && threadIdx.x == 0 && (flags & 1) && ws == 1 && ((u64)w & 15) == 0 && (n * sizeof({s})) % 16 == 0)
        RMX_PREFETCH_L2(w, n * sizeof({s}));
      RMX_GRID_WAIT();
      __shared__ {c} sh[32];
      auto add = []({c} a, {c} b) {{ return a + b; }};
      constexpr int CACHE = {cache};
      const bool cached = n <= (i64)CACHE * blockDim.x;
      for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {{
        const {s}* xr = x + r * n; {s}* orow = out + r * n;
        const {s}* rr = res + r * n; {s}* hrow = hout + r * n;
        if (cached) {{
          // the weight is read with x, not after the statistics: one memory round trip
          {c} xc[CACHE], wc[CACHE];
    #pragma unroll
          for (int i = 0; i < CACHE; ++i) {{
            const i64 j = threadIdx.x + (i64)i * blockDim.x;
            if (j >= n) {{ xc[i] = 0; continue; }}
            wc[i] = (flags & 1) ? {lw} : ({c})0;
            if (flags & 4) {{ const {s} hs = {sum}; hrow[j] = hs; xc[i] = {lhs}; }}
            else xc[i] = {ld};
          }}
          {cached_stats}
    #pragma unroll
          for (int i = 0; i < CACHE; ++i) {{
            const i64 j = threadIdx.x + (i64)i * blockDim.x;
            if (j >= n) continue;
            {c} v = xc[i];
            {write_cached}
          }}
          continue;
        }}
        if (flags & 4) {{
          for (i64 j = threadIdx.x; j < n; j += blockDim.x) hrow[j] = {sum};
          // the block's writes of h are visible to all its threads after the barrier
          __syncthreads();
          xr = hrow;
        }}
        {stats}
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) {{
          {c} v = {ld};
          {write}
        }}
      }}
    }}
    "#,
                s = t.store,
                sum = t.store(&format!("{} + {}", t.load("xr[j]"), t.load("rr[j]"))),
                lhs = t.load("hs"),
                lw = t.load("w[j * ws]"),
                write_cached = write.replace(&t.load("w[j * ws]"), "wc[i]"),
                cache = CACHE,
            )
        };
        Some(Kernel { name, src })
    })
}

/// The register-resident RMS (`rms`) or layer norm of `dtype` rows for spread `s` (as
/// softmax's: a row's values read once, by 16-byte vectors where `s.w` > 1), with an
/// optional contiguous weight and bias read the same way. `norm_kernel` uses 85 registers,
/// so a 4096-wide row's 512-thread block ran alone on its SM: 2048 such rows took 0.106
/// ms under ncu, 0.017 ms here.
pub fn norm_rows_kernel(rms: bool, dtype: Dtype, s: Spread) -> Option<Kernel> {
    generated(format!("norm_rows_kernel {:?}", (rms, dtype, s)), || {
        let t = ctype(dtype).filter(|t| t.float)?;
        let Spread { tpr, e, w } = s;
        let name = format!(
            "norm_{}_{}_t{tpr}_e{e}_w{w}",
            if rms { "rms" } else { "layer" },
            tag(dtype)
        );
        let (c, st) = (t.compute, t.store);
        let sqrt = t.math("sqrt");
        let round = |e: &str| t.load(&t.store(e));
        // element q of this vector: value v[k * W + q], weight wv[q], bias bv[q]
        let y = "((v[k * W + q] - mu) * rstd)";
        let with_w = format!("{} * wv[q]", round(y));
        let value = format!(
            "((flags & 3) == 0 ? {y} : (flags & 3) == 1 ? {with_w} : (flags & 3) == 2 ? {} + bv[q] : {} + bv[q])",
            round(y),
            round(&with_w)
        );
        let (load_x, load_wb, store) = if w == 1 {
            (
                format!("v[k] = {};", t.load("xr[j]")),
                format!(
                    "wv[0] = (flags & 1) ? {} : 0; bv[0] = (flags & 2) ? {} : 0;",
                    t.load("wt[j]"),
                    t.load("bb[j]")
                ),
                format!("{{ const int q = 0; orow[j] = {}; }}", t.store(&value)),
            )
        } else {
            (
                vector_read(&t, "xr", "v[k * W + q]"),
                format!(
                    "if (flags & 1) {} if (flags & 2) {}",
                    vector_read(&t, "wt", "wv[q]"),
                    vector_read(&t, "bb", "bv[q]")
                ),
                vector_write(&t, &value),
            )
        };
        let stats = if rms {
            format!(
                "const {c} mu = 0;
    {c} ss = 0;
#pragma unroll
    for (int k = 0; k < E; ++k) ss += v[k] * v[k];
    ss = row_reduce<TPR>(ss, add, sh[0]);"
            )
        } else {
            format!("{c} s1 = 0;
#pragma unroll
    for (int k = 0; k < E; ++k) s1 += v[k];
    const {c} mu = row_reduce<TPR>(s1, add, sh[0]) / ({c})n;
    {c} ss = 0;
#pragma unroll
    for (int k = 0; k < E; ++k) if (((i64)(k / W) * TPR + lane) * W < len) {{ const {c} d = v[k] - mu; ss += d * d; }}
    ss = row_reduce<TPR>(ss, add, sh[1]);")
        };
        let head = rows_loop_head(c, st, &load_x, "0");
        let src = format!(
            r#"{PRELUDE}{ROW_REDUCE}
// flags: 1 weight, 2 bias (both contiguous)
extern "C" __global__ void {name}(const {st}* __restrict__ x, const {st}* __restrict__ wt, const {st}* __restrict__ bb, {st}* __restrict__ out, i64 rows, i64 n, float eps, int flags) {{
  constexpr int TPR = {tpr}, E = {e}, W = {w};
  __shared__ {c} sh[2][32];
  auto add = []({c} a, {c} b) {{ return a + b; }};
{head}    {stats}
    const {c} rstd = 1 / {sqrt}(ss / ({c})n + ({c})eps);
#pragma unroll
    for (int k = 0; k < E / W; ++k) {{
      const i64 j = ((i64)k * TPR + lane) * W;
      if (j < len) {{
        {c} wv[W], bv[W];
        {load_wb}
        {store}
      }}
    }}
    // the next row's reductions reuse `sh`
    if (TPR > 32) __syncthreads();
  }}
}}
"#
        );
        Some(Kernel { name, src })
    })
}

/// RMS or layer norm with optional weight and bias (1-d, any stride), rounding to the
/// dtype before the weight and before the bias as the CPU kernel (and MLX) does.
pub fn norm(
    gpu: &'static Gpu,
    kind: NormKind,
    x: &ArrayData,
    weight: Option<&ArrayData>,
    bias: Option<&ArrayData>,
    eps: f32,
) -> Result<Option<ArrayData>> {
    Ok(norm_launch(gpu, kind, x, None, weight, bias, eps)?.map(|(y, _)| y))
}

/// `(x + residual, rms_norm(x + residual) * weight)` in one kernel (`x` and `residual` of
/// one shape and dtype).
pub fn add_rms_norm(
    gpu: &'static Gpu,
    x: &ArrayData,
    residual: &ArrayData,
    weight: Option<&ArrayData>,
    eps: f32,
) -> Result<Option<(ArrayData, ArrayData)>> {
    if residual.shape != x.shape || residual.dtype != x.dtype {
        return Ok(None);
    }
    let out = norm_launch(gpu, NormKind::Rms, x, Some(residual), weight, None, eps)?;
    Ok(out.and_then(|(y, h)| Some((h?, y))))
}

/// The norm kernel's launch; with a residual, also returns the sum it normalized.
fn norm_launch(
    gpu: &'static Gpu,
    kind: NormKind,
    x: &ArrayData,
    residual: Option<&ArrayData>,
    weight: Option<&ArrayData>,
    bias: Option<&ArrayData>,
    eps: f32,
) -> Result<Option<(ArrayData, Option<ArrayData>)>> {
    if norm_kernel(true, x.dtype).is_none() {
        return Ok(None);
    }
    let Some(RowJob {
        _input,
        out,
        optr,
        xptr,
        n,
        rows,
    }) = row_job(gpu, x)?
    else {
        return Ok(None);
    };
    // the residual in dense rows and the sum's output
    let (res, sum) = match residual {
        Some(r) => {
            let Some(r) = row_contiguous(gpu, r)? else {
                return Ok(None);
            };
            let (h, hptr) = alloc_output(gpu, x.dtype, &x.shape)?;
            (Some(r), Some((h, hptr)))
        }
        None => (None, None),
    };
    if rows == 0 {
        return Ok(Some((out, sum.map(|(h, _)| h))));
    }
    let vec_arg = |v: Option<&ArrayData>| -> Result<(u64, i64)> {
        match v {
            Some(v) => Ok((
                device_ptr(gpu, v)?,
                v.strides.first().copied().unwrap_or(0) as i64,
            )),
            None => Ok((0, 0)),
        }
    };
    let (wptr, wstride) = vec_arg(weight)?;
    let (bptr, bstride) = vec_arg(bias)?;
    let (rptr, _) = vec_arg(res.as_ref())?;
    let hptr = sum.as_ref().map_or(0, |(_, p)| *p);
    let flags =
        weight.is_some() as i32 | (bias.is_some() as i32) << 1 | (res.is_some() as i32) << 2;
    let (r64, n64) = (rows as i64, n as i64);
    // without a residual, and with a contiguous weight and bias: the register-resident rows
    let unit = |v: Option<&ArrayData>, stride: i64| v.is_none() || stride == 1;
    if res.is_none() && unit(weight, wstride) && unit(bias, bstride) {
        let aligned = (xptr | optr | wptr | bptr).is_multiple_of(16);
        let rms = matches!(kind, NormKind::Rms);
        if let Some(sp) = spread(x.dtype, n, aligned) {
            let Some(Kernel { name, src }) = norm_rows_kernel(rms, x.dtype, sp) else {
                return Ok(None);
            };
            let f = gpu.kernel(&name, || src)?;
            let per_block = (BLOCK / sp.tpr) as usize;
            let config = LaunchConfig {
                grid_dim: (rows.div_ceil(per_block).clamp(1, 1 << 20) as u32, 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = gpu.launch(&f);
            b.arg(&xptr).arg(&wptr).arg(&bptr).arg(&optr);
            b.arg(&r64).arg(&n64).arg(&eps).arg(&flags);
            unsafe { b.launch(config) }.map_err(|e| driver_err("launching norm", e))?;
            return Ok(Some((out, None)));
        }
    }
    let Some(Kernel { name, src }) = norm_kernel(matches!(kind, NormKind::Rms), x.dtype) else {
        return Ok(None);
    };
    let f = gpu.kernel(&name, || src)?;
    let mut b = gpu.launch(&f);
    b.arg(&xptr)
        .arg(&wptr)
        .arg(&wstride)
        .arg(&bptr)
        .arg(&bstride)
        .arg(&optr)
        .arg(&r64)
        .arg(&n64)
        .arg(&eps)
        .arg(&flags)
        .arg(&rptr)
        .arg(&hptr);
    unsafe { b.launch(norm_config(rows, n)) }.map_err(|e| driver_err("launching norm", e))?;
    Ok(Some((out, sum.map(|(h, _)| h))))
}
