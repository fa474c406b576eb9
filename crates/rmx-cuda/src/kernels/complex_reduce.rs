//! complex64 reductions other than `sum` (reduce.rs sums the real and imaginary parts as
//! two float32 reductions): `prod`, `max` and `min`. (`all` and `any` cast to bool first,
//! complex.rs's `to_real_kernel`.) The reduced axes are moved last (a copy when that is not
//! already the layout); one block per output element combines its row with the CPU
//! backend's rules: `max`/`min` order by (real, imaginary) and a NaN (either part) wins.

use super::complex::COMPLEX;
use super::elementwise::{generated, row_contiguous, Kernel};
use super::prelude::PRELUDE;
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::driver::LaunchConfig;
use rmx_core::backend::ReduceOp;
use rmx_core::{ArrayData, Dtype, Result};

const BLOCK: u32 = 256;

/// (identity, combine) as C expressions over `c64 a, b`; `None` for the ops not made here.
fn parts(op: ReduceOp) -> Option<(&'static str, &'static str)> {
    Some(match op {
        ReduceOp::Prod => ("mkc(1.f, 0.f)", "cmul(a, b)"),
        ReduceOp::Max => (
            "mkc(-INFINITY, -INFINITY)",
            "(cnan(a) || (!cnan(b) && !clt(a, b))) ? a : b",
        ),
        ReduceOp::Min => (
            "mkc(INFINITY, INFINITY)",
            "(cnan(a) || (!cnan(b) && !clt(b, a))) ? a : b",
        ),
        _ => return None,
    })
}

pub fn complex_reduce_kernel(op: ReduceOp) -> Option<Kernel> {
    generated(format!("complex_reduce_kernel {op:?}"), || {
        let (init, combine) = parts(op)?;
        let name = format!("complex_reduce_{op:?}");
        let src = format!(
            r#"{PRELUDE}{COMPLEX}
__device__ __forceinline__ c64 {name}_combine(c64 a, c64 b) {{ return {combine}; }}
// one block per row of `n` reduced elements (rows contiguous)
extern "C" __global__ void {name}(const c64* x, c64* out, i64 rows, i64 n) {{
  __shared__ c64 sh[{BLOCK}];
  for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {{
    const c64* xr = x + r * n;
    c64 a = {init};
    for (i64 j = threadIdx.x; j < n; j += blockDim.x) a = {name}_combine(a, xr[j]);
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int s = {BLOCK} / 2; s > 0; s >>= 1) {{
      if (threadIdx.x < s) sh[threadIdx.x] = {name}_combine(sh[threadIdx.x], sh[threadIdx.x + s]);
      __syncthreads();
    }}
    if (threadIdx.x == 0) out[r] = sh[0];
    __syncthreads();
  }}
}}
"#
        );
        Some(Kernel { name, src })
    })
}

/// `op` of complex64 `x` over `axes` (kept as size-1 axes) to complex64, or `None` for
/// the ops and output dtypes not made here.
pub fn complex_reduce(
    gpu: &'static Gpu,
    op: ReduceOp,
    x: &ArrayData,
    axes: &[usize],
    out_dtype: Dtype,
) -> Result<Option<ArrayData>> {
    if x.dtype != Dtype::Complex64 || out_dtype != Dtype::Complex64 {
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
    [Prod, Max, Min]
        .into_iter()
        .filter_map(complex_reduce_kernel)
        .collect()
}
