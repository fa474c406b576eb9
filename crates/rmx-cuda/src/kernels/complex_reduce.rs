//! complex64 reductions other than `sum` (reduce.rs sums the real and imaginary parts as
//! two float32 reductions): `prod`, `max` and `min` to complex64, `all` and `any` to bool.
//! The reduced axes are moved last (a copy when that is not already the layout); one block
//! per output element combines its row with the CPU backend's rules: `max`/`min` order by
//! (real, imaginary) and a NaN (either part) wins; `all`/`any` test for nonzero.

use super::complex::COMPLEX;
use super::elementwise::{generated, row_contiguous, Kernel};
use super::prelude::PRELUDE;
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::ReduceOp;
use rmx_core::{ArrayData, Dtype, Result};

const BLOCK: u32 = 256;

/// (identity, combine, element map) as C expressions over `c64 a, b` / `c64 v`.
fn parts(op: ReduceOp) -> (&'static str, &'static str, &'static str) {
    // all/any: 1 or 0 in the real part, combined as min/max
    const NONZERO: &str = "mkc((v.re != 0.f || v.im != 0.f) ? 1.f : 0.f, 0.f)";
    match op {
        ReduceOp::Prod => ("mkc(1.f, 0.f)", "cmul(a, b)", "v"),
        ReduceOp::Max => (
            "mkc(-INFINITY, -INFINITY)",
            "(cnan(a) || (!cnan(b) && !clt(a, b))) ? a : b",
            "v",
        ),
        ReduceOp::Min => (
            "mkc(INFINITY, INFINITY)",
            "(cnan(a) || (!cnan(b) && !clt(b, a))) ? a : b",
            "v",
        ),
        ReduceOp::All => ("mkc(1.f, 0.f)", "mkc(fminf(a.re, b.re), 0.f)", NONZERO),
        ReduceOp::Any => ("mkc(0.f, 0.f)", "mkc(fmaxf(a.re, b.re), 0.f)", NONZERO),
        ReduceOp::Sum => ("mkc(0.f, 0.f)", "mkc(a.re + b.re, a.im + b.im)", "v"),
    }
}

pub fn complex_reduce_kernel(op: ReduceOp) -> Option<Kernel> {
    generated(format!("complex_reduce_kernel {op:?}"), || {
        let (init, combine, map) = parts(op);
        let boolean = matches!(op, ReduceOp::All | ReduceOp::Any);
        let (ot, store) = if boolean {
            ("bool", "a.re != 0.f")
        } else {
            ("c64", "a")
        };
        let name = format!("complex_reduce_{op:?}");
        let src = format!(
            r#"{PRELUDE}{COMPLEX}
__device__ __forceinline__ c64 {name}_combine(c64 a, c64 b) {{ return {combine}; }}
__device__ __forceinline__ c64 {name}_map(c64 v) {{ return {map}; }}
// one block per row of `n` reduced elements (rows contiguous)
extern "C" __global__ void {name}(const c64* x, {ot}* out, i64 rows, i64 n) {{
  __shared__ c64 sh[{BLOCK}];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {{
    const c64* xr = x + r * n;
    c64 a = {init};
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) a = {name}_combine(a, {name}_map(xr[j]));
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int s = {BLOCK} / 2; s > 0; s >>= 1) {{
      if (threadIdx.x < s) sh[threadIdx.x] = {name}_combine(sh[threadIdx.x], sh[threadIdx.x + s]);
      __syncthreads();
    }}
    if (threadIdx.x == 0) {{ const c64 a = sh[0]; out[r] = {store}; }}
    __syncthreads();
  }}
}}
"#
        );
        Some(Kernel { name, src })
    })
}

/// `op` of complex64 `x` over `axes` (kept as size-1 axes), or `None` for an output
/// dtype this kernel does not make.
pub fn complex_reduce(
    gpu: &'static Gpu,
    op: ReduceOp,
    x: &ArrayData,
    axes: &[usize],
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    let boolean = matches!(op, ReduceOp::All | ReduceOp::Any);
    let wanted = if boolean {
        Dtype::Bool
    } else {
        Dtype::Complex64
    };
    if x.dtype != Dtype::Complex64 || out_dtype != wanted {
        return Ok(None);
    }
    let Some(Kernel { name, src }) = complex_reduce_kernel(op) else {
        return Ok(None);
    };
    let (kept, red): (Vec<usize>, Vec<usize>) = (0..x.ndim()).partition(|d| !axes.contains(d));
    let perm: Vec<usize> = kept.iter().chain(&red).copied().collect();
    let Some(lines) = row_contiguous(gpu, &x.permuted(&perm))? else {
        return Ok(None);
    };
    let mut out_shape = x.shape.to_vec();
    for &a in axes {
        out_shape[a] = 1;
    }
    let (out, optr) = alloc_output(gpu, out_dtype, &out_shape)?;
    let rows = out.numel();
    if rows == 0 {
        return Ok(Some(out));
    }
    let n = red.iter().map(|&d| x.shape[d]).product::<usize>();
    // an empty reduction still writes the identity; its input pointer is never read
    let xptr = if n == 0 { 0 } else { device_ptr(gpu, &lines)? };
    let f = gpu.kernel(&name, || src)?;
    let (rows64, n64) = (rows as i64, n as i64);
    let mut b = gpu.launch(&f);
    b.arg(&xptr).arg(&optr).arg(&rows64).arg(&n64);
    let cfg = LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    unsafe { b.launch(cfg) }.map_err(|e| driver_err("launching complex_reduce", e))?;
    Ok(Some(out))
}

#[cfg(test)]
pub fn all_kernels() -> Vec<Kernel> {
    use ReduceOp::*;
    [Prod, Max, Min, All, Any]
        .into_iter()
        .filter_map(complex_reduce_kernel)
        .collect()
}
