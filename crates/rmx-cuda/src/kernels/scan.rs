//! Scans (cumsum, cumprod, cummax, cummin, logcumsumexp) along one axis, forward or
//! reversed, inclusive or exclusive. Two kernels over the same combine step:
//! - `lines`: one thread walks one line, in order, as the CPU does. Neighbouring threads
//!   take neighbouring columns, so a scan along a non-last axis reads and writes
//!   coalesced. Half types always take it: their running value is rounded to the element
//!   type after every step (MLX's and the CPU's semantics), which only a serial walk gives.
//! - `block`: one block per line, a block-wide scan over tiles of `BLOCK` elements with a
//!   running carry, for long lines that are too few to fill the GPU one thread each.
//!   Integer and max/min results equal the serial ones; float sums and products differ by
//!   the order of rounding only.

use super::elementwise::{generated, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use super::reduce::combine;
use crate::device::{driver_err, Gpu};
use crate::layout::without_axis;
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::{ReduceOp, ScanOp};
use rmx_core::{ArrayData, Dtype, Result};

const BLOCK: u32 = 256;

/// The scan kernel for `op` on `dtype` (`block`: one block per line); `None` without one.
pub fn scan_kernel(op: ScanOp, dtype: Dtype, block: bool) -> Option<Kernel> {
    generated(format!("scan_kernel {:?}", (op, dtype, block)), || {
        let t = ctype(dtype)?;
        if dtype == Dtype::Bool || matches!(op, ScanOp::Reduce(ReduceOp::All | ReduceOp::Any)) {
            return None;
        }
        // what warp shuffles move (narrow integers wrap the same way in the wider type)
        let c = match t.compute {
            "i8" | "i16" | "i32" => "int",
            "u8" | "u16" | "u32" => "u32",
            other => other,
        };
        let (init, comb) = match op {
            ScanOp::Reduce(r) => {
                let (init, comb) = combine(r, c, t.float);
                // max/min of a narrow signed type start from its own bounds (what an
                // exclusive scan stores first), not the wider shuffle type's
                let init = match (r, t.compute) {
                    (ReduceOp::Max, "i8") => "-128".to_string(),
                    (ReduceOp::Min, "i8") => "127".to_string(),
                    (ReduceOp::Max, "i16") => "-32768".to_string(),
                    (ReduceOp::Min, "i16") => "32767".to_string(),
                    (ReduceOp::Min, "u8") => "255u".to_string(),
                    (ReduceOp::Min, "u16") => "65535u".to_string(),
                    _ => init,
                };
                (init, comb.to_string())
            }
            ScanOp::LogAddExp if t.float => {
                ("-INFINITY".to_string(), "lae_NAME(acc, v)".to_string())
            }
            ScanOp::LogAddExp => return None,
        };
        let half = t.store == "u16" && t.float;
        let name = format!(
            "scan_{}_{}{}",
            format!("{op:?}").replace(['(', ')'], ""),
            tag(dtype),
            if block { "_block" } else { "" }
        );
        // the running value as the element type holds it (see the module doc)
        let round = if half {
            format!("acc = {};", t.load(&t.store("acc")))
        } else {
            String::new()
        };
        let load = t.load("row[i * sa]");
        let store = |e: &str| t.store(e);
        let lae = if op == ScanOp::LogAddExp {
            let nan = if c == "double" {
                "__longlong_as_double(0x7ff8000000000000ll)"
            } else {
                "__int_as_float(0x7fc00000)"
            };
            // as the CPU's: the larger plus log1p(exp(smaller - larger)), NaN in, NaN out
            format!(
                "__device__ __forceinline__ {c} lae_{name}({c} a, {c} b) {{\n      if (is_nan(a) || is_nan(b)) return {nan};\n      const {c} m = a > b ? a : b, o = a > b ? b : a;\n      if (m == -INFINITY || m == INFINITY) return m;\n      return m + {}({}(o - m));\n    }}\n",
                t.math("log1p"),
                t.math("exp")
            )
        } else {
            String::new()
        };
        let helpers = format!(
            r#"{PRELUDE}
    {lae}__device__ __forceinline__ {c} comb_{name}({c} acc, {c} v) {{ return {comb}; }}
"#,
            comb = comb.replace("NAME", &name)
        );
        let body = if !block {
            format!(
                r#"extern "C" __global__ void {name}(const {s}* x, Layout lo, i64 sa, i64 len, i64 inner, {s}* out, i64 lines, int reverse, int inclusive) {{
      for (i64 l = (i64)blockIdx.x * blockDim.x + threadIdx.x; l < lines; l += (i64)gridDim.x * blockDim.x) {{
        const {s}* row = x + loc(lo, l);
        {s}* orow = out + (l / inner) * len * inner + (l % inner);
        {c} acc = {init};
        for (i64 k = 0; k < len; ++k) {{
          const i64 i = reverse ? len - 1 - k : k;
          const {c} v = ({c})({load});
          if (inclusive) {{ acc = comb_{name}(acc, v); {round} orow[i * inner] = {st}; }}
          else {{ orow[i * inner] = {st}; acc = comb_{name}(acc, v); {round} }}
        }}
      }}
    }}
"#,
                s = t.store,
                st = store("acc"),
            )
        } else {
            format!(
                r#"extern "C" __global__ void {name}(const {s}* x, Layout lo, i64 sa, i64 len, i64 inner, {s}* out, i64 lines, int reverse, int inclusive) {{
      __shared__ {c} totals[32];
      const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
      for (i64 l = blockIdx.x; l < lines; l += gridDim.x) {{
        const {s}* row = x + loc(lo, l);
        {s}* orow = out + (l / inner) * len * inner + (l % inner);
        {c} carry = {init};
        for (i64 k0 = 0; k0 < len; k0 += blockDim.x) {{
          const i64 k = k0 + threadIdx.x;
          const i64 i = reverse ? len - 1 - k : k;
          const {c} v = k < len ? ({c})({load}) : ({c})({init});
          {c} s = v;
          for (int d = 1; d < 32; d <<= 1) {{ const {c} u = __shfl_up_sync(0xffffffff, s, d); if (lane >= d) s = comb_{name}(u, s); }}
          if (lane == 31) totals[w] = s;
          __syncthreads();
          if (w == 0) {{
            {c} u = lane < nw ? totals[lane] : ({c})({init});
            for (int d = 1; d < 32; d <<= 1) {{ const {c} p = __shfl_up_sync(0xffffffff, u, d); if (lane >= d) u = comb_{name}(p, u); }}
            if (lane < nw) totals[lane] = u;
          }}
          __syncthreads();
          const {c} before = w > 0 ? comb_{name}(carry, totals[w - 1]) : carry;
          const {c} prev = __shfl_up_sync(0xffffffff, s, 1);
          const {c} acc = inclusive ? comb_{name}(before, s) : (lane > 0 ? comb_{name}(before, prev) : before);
          if (k < len) orow[i * inner] = {st};
          carry = comb_{name}(carry, totals[nw - 1]);
          __syncthreads();
        }}
      }}
    }}
"#,
                s = t.store,
                st = store("acc"),
            )
        };
        Some(Kernel {
            name,
            src: format!("{helpers}{body}"),
        })
    })
}

pub fn scan(
    gpu: &'static Gpu,
    op: ScanOp,
    x: &ArrayData,
    axis: usize,
    reverse: bool,
    inclusive: bool,
) -> Result<Option<ArrayData>> {
    let len = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    let lines = x.numel().checked_div(len).unwrap_or(0);
    let half = matches!(x.dtype, Dtype::Float16 | Dtype::Bfloat16);
    let block = !half && len >= 128 && (inner == 1 || lines < 2048);
    let Some(Kernel { name, src }) = scan_kernel(op, x.dtype, block) else {
        return Ok(None);
    };
    let Some(lo) = without_axis(x, axis) else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, x.dtype, &x.shape)?;
    if x.numel() == 0 {
        return Ok(Some(out));
    }
    let xptr = device_ptr(gpu, x)?;
    let f = gpu.kernel(&name, || src)?;
    let (sa, len, inner, nl) = (
        x.strides[axis] as i64,
        len as i64,
        inner.max(1) as i64,
        lines as i64,
    );
    let (rev, inc) = (reverse as i32, inclusive as i32);
    let mut b = gpu.launch(&f);
    b.arg(&xptr)
        .arg(&lo)
        .arg(&sa)
        .arg(&len)
        .arg(&inner)
        .arg(&optr)
        .arg(&nl)
        .arg(&rev)
        .arg(&inc);
    let grid = if block {
        lines.min(1 << 16)
    } else {
        lines.div_ceil(BLOCK as usize).min(1 << 16)
    };
    let cfg = LaunchConfig {
        grid_dim: (grid as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(|e| driver_err(&format!("launching {name}"), e))?;
    Ok(Some(out))
}
