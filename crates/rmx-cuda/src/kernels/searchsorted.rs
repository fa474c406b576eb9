//! `searchsorted`: one thread per value, a binary search of the sorted 1-d sequence in the
//! CPU kernel's order (NaN after every number), so the insertion indices are identical.

use super::elementwise::{launch_config, row_contiguous, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use rmx_core::{ArrayData, Dtype, Result};

/// The CPU's sort order: NaN after every number.
pub const NAN_LESS: &str = r#"
template <typename T> __device__ __forceinline__ bool nan_less(T a, T b) {
  if (is_nan(a)) return false;
  return is_nan(b) || a < b;
}
"#;

/// The kernel for sequences and values of `dtype` (`None` for complex64).
pub fn kernel(dtype: Dtype) -> Option<Kernel> {
    let t = ctype(dtype)?;
    let name = format!("searchsorted_{}", tag(dtype));
    let src = source(&name, t.store, &t.load("E"));
    Some(Kernel { name, src })
}

fn source(name: &str, store: &str, load: &str) -> String {
    format!(
        r#"{PRELUDE}{NAN_LESS}
extern "C" __global__ void {name}(const {store}* __restrict__ seq, i64 len,
    const {store}* __restrict__ values, u32* __restrict__ out, i64 n, int right) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {{
    const auto v = {load_v};
    i64 lo = 0, hi = len;
    while (lo < hi) {{
      const i64 mid = lo + (hi - lo) / 2;
      const auto s = {load_s};
      // the first element not before v (left) / after v (right) in sort order
      const bool before = right ? !nan_less(v, s) : nan_less(s, v);
      if (before) lo = mid + 1; else hi = mid;
    }}
    out[i] = (u32)lo;
  }}
}}
"#,
        load_v = load.replace("E", "values[i]"),
        load_s = load.replace("E", "seq[mid]"),
    )
}

pub fn searchsorted(
    gpu: &'static Gpu,
    seq: &ArrayData,
    values: &ArrayData,
    right: bool,
) -> Result<Option<ArrayData>> {
    let Some(k) = kernel(seq.dtype) else {
        return Ok(None);
    };
    let (Some(seq), Some(values)) = (row_contiguous(gpu, seq)?, row_contiguous(gpu, values)?)
    else {
        return Ok(None);
    };
    let (out, out_ptr) = alloc_output(gpu, Dtype::Uint32, &values.shape)?;
    let n = values.numel();
    if n == 0 {
        return Ok(Some(out));
    }
    let name = k.name;
    let f = gpu.kernel(&name, || k.src)?;
    let (sp, vp) = (device_ptr(gpu, &seq)?, device_ptr(gpu, &values)?);
    let (len, n64, right) = (seq.numel() as i64, n as i64, i32::from(right));
    let mut b = gpu.launch(&f);
    b.arg(&sp)
        .arg(&len)
        .arg(&vp)
        .arg(&out_ptr)
        .arg(&n64)
        .arg(&right);
    unsafe { b.launch(launch_config(n)) }
        .map_err(|e| driver_err(&format!("launching {name}"), e))?;
    Ok(Some(out))
}
