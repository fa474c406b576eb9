//! What the linear algebra ops share: the small kernels (triangle masking, identity,
//! determinant, pivots, checks), work copies, and the status words cuSOLVER reports into.

use crate::device::{driver_err, Gpu};
use crate::kernels::elementwise::{cast, launch_config, Kernel};
use crate::kernels::prelude::{ctype, tag, PRELUDE};
use crate::memory::alloc_output;
use rmx_core::{ArrayData, Device, Dtype, Error, Result};

/// Zeroes the triangle a Cholesky factor leaves with the input's values, writes identity
/// matrices, and flags any non-finite value (the `eigh` input check).
fn helper_source(name: &str, t: &str) -> String {
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}_keep_triangle(T_* p, i64 n, i64 total, int lower) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {{
    const i64 r = (i % (n * n)) / n, c = i % n;
    if (lower ? c > r : c < r) p[i] = 0;
  }}
}}
extern "C" __global__ void {name}_eye(T_* p, i64 n, i64 total) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    p[i] = (i % (n * n)) % (n + 1) == 0 ? 1 : 0;
}}
// det (or sign and log|det|) of each LU-factored matrix (column-major, 1-based pivots),
// in double as the CPU computes it
extern "C" __global__ void {name}_det(const T_* lu, const int* piv, i64 n, i64 count, T_* out0, T_* out1, int want_log) {{
  const i64 b = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= count) return;
  const T_* c = lu + b * n * n;
  int swaps = 0;
  for (i64 i = 0; i < n; ++i) swaps += piv[b * n + i] != i + 1;
  double sign = swaps % 2 ? -1.0 : 1.0, det = sign, logabs = 0.0;
  for (i64 i = 0; i < n; ++i) {{
    const double d = (double)c[i * n + i];
    det *= d;
    sign *= (d == 0.0 || d != d) ? d : (d > 0 ? 1.0 : -1.0);
    logabs += log(fabs(d));
  }}
  if (want_log) {{ out0[b] = (T_)sign; out1[b] = (T_)logabs; }} else out0[b] = (T_)det;
}}
// the 1-based position of each matrix's first zero diagonal element (0: none)
extern "C" __global__ void {name}_zero_diagonal(const T_* a, i64 n, i64 count, int* pos) {{
  const i64 b = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= count) return;
  int at = 0;
  for (i64 i = n - 1; i >= 0; --i) if (a[b * n * n + i * n + i] == 0) at = (int)i + 1;
  pos[b] = at;
}}
// R (row-major [k, n]) from the column-major QR factorization (m x n) of each matrix
extern "C" __global__ void {name}_qr_r(const T_* a, T_* r, i64 m, i64 n, i64 k, i64 total) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {{
    const i64 b = i / (k * n), row = (i / n) % k, col = i % n;
    r[i] = col >= row ? a[b * m * n + row + col * m] : 0;
  }}
}}
// unit-lower L ([m, k]) and upper U ([k, n]) from the row-major compact LU ([m, n])
extern "C" __global__ void {name}_lu_l(const T_* c, T_* l, i64 m, i64 n, i64 k, i64 total) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {{
    const i64 b = i / (m * k), row = (i / k) % m, col = i % k;
    l[i] = row > col ? c[b * m * n + row * n + col] : (row == col ? 1 : 0);
  }}
}}
extern "C" __global__ void {name}_lu_u(const T_* c, T_* u, i64 m, i64 n, i64 k, i64 total) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {{
    const i64 b = i / (k * n), row = (i / n) % k, col = i % n;
    u[i] = col >= row ? c[b * m * n + row * n + col] : 0;
  }}
}}
// per matrix: LAPACK's 1-based pivots as 0-based ones, and (with `perm`) the row order p
// with A = L[p] U (the swaps applied to 0..m give the row at each position; p inverts it)
extern "C" __global__ void {name}_pivots(const int* piv, u32* pivots, u32* order, u32* perm, i64 m, i64 k, i64 count) {{
  const i64 b = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= count) return;
  for (i64 i = 0; i < k; ++i) pivots[b * k + i] = (u32)(piv[b * k + i] - 1);
  if (!perm) return;
  u32* o = order + b * m;
  for (i64 i = 0; i < m; ++i) o[i] = (u32)i;
  for (i64 i = 0; i < k; ++i) {{ const u32 j = pivots[b * k + i], t = o[i]; o[i] = o[j]; o[j] = t; }}
  for (i64 i = 0; i < m; ++i) perm[b * m + o[i]] = (u32)i;
}}
extern "C" __global__ void {name}_nonfinite(const T_* p, i64 total, int* flag) {{
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x)
    if (!isfinite(p[i])) *flag = 1;
}}
"#
    )
    .replace("T_", t)
}

/// The triangle and finiteness helpers for `dtype` (float32 or float64).
pub fn helper_kernel(dtype: Dtype) -> Option<Kernel> {
    let t = ctype(dtype)?;
    let name = format!("linalg_{}", tag(dtype));
    let src = helper_source(&name, t.store);
    Some(Kernel { name, src })
}

pub(super) fn launch_helper(
    gpu: &'static Gpu,
    dtype: Dtype,
    entry: &str,
    args: &[&dyn ArgRef],
    n: usize,
) -> Result<()> {
    let k = helper_kernel(dtype).expect("float dtype");
    let f = gpu.kernel_in(&k.name, &format!("{}_{entry}", k.name), || k.src)?;
    let mut b = gpu.launch(&f);
    for a in args {
        a.push(&mut b);
    }
    unsafe { b.launch(launch_config(n)) }.map_err(|e| driver_err(&format!("launching {entry}"), e))
}

/// Kernel arguments of mixed types for `launch_helper`.
pub(super) trait ArgRef {
    fn push<'a>(&'a self, b: &mut crate::launch::Launch<'a>);
}
impl<T: cudarc::driver::DeviceRepr> ArgRef for T {
    fn push<'a>(&'a self, b: &mut crate::launch::Launch<'a>) {
        b.arg(self);
    }
}

/// A fresh row-contiguous copy of `x` (the factorizations overwrite it), or of its
/// transpose in the last two axes.
pub(super) fn work_copy(
    gpu: &'static Gpu,
    x: &ArrayData,
    transpose: bool,
) -> Result<Option<ArrayData>> {
    if !transpose {
        return cast(gpu, x, x.dtype);
    }
    let nd = x.ndim();
    let mut perm: Vec<usize> = (0..nd).collect();
    perm.swap(nd - 1, nd - 2);
    cast(gpu, &x.permuted(&perm), x.dtype)
}

/// The CPU's errors from the status words of `count` matrices followed by a non-finite
/// input flag (waits for the device).
pub(super) fn raise_status(
    words: &ArrayData,
    count: usize,
    name: &str,
    failure: &str,
) -> Result<()> {
    words.buffer.make_resident(Device::CPU)?;
    let status = words.to_vec::<i32>();
    if status[count] != 0 {
        return Err(Error::Runtime(format!(
            "[linalg::{name}] The input contains NaN or infinite values."
        )));
    }
    if status[..count].iter().any(|&v| v != 0) {
        return Err(Error::Runtime(format!("[linalg::{name}] {failure}")));
    }
    Ok(())
}

/// Per-matrix status words (`count` int32), read back after the calls.
pub(super) fn status_words(gpu: &'static Gpu, count: usize) -> Result<(ArrayData, u64)> {
    let (words, ptr) = alloc_output(gpu, Dtype::Int32, &[count.max(1)])?;
    unsafe {
        cudarc::driver::result::memset_d8_async(ptr, 0, count.max(1) * 4, gpu.stream.cu_stream())
    }
    .map_err(|e| driver_err("cuMemsetD8", e))?;
    Ok((words, ptr))
}

/// The first nonzero status word (waits for the device).
pub(super) fn first_failure(words: &ArrayData) -> Result<Option<i32>> {
    words.buffer.make_resident(Device::CPU)?;
    Ok(words.to_vec::<i32>().into_iter().find(|&v| v != 0))
}

pub(super) fn scratch(gpu: &'static Gpu, dtype: Dtype, elems: i32) -> Result<(ArrayData, u64)> {
    alloc_output(gpu, dtype, &[elems.max(1) as usize])
}

/// Identity matrices of `shape` (`[.., n, n]`).
pub(super) fn identity(gpu: &'static Gpu, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
    let (eye, p) = alloc_output(gpu, dtype, shape)?;
    let n = shape[shape.len() - 1] as i64;
    let total = eye.numel() as i64;
    launch_helper(gpu, dtype, "eye", &[&p, &n, &total], total as usize)?;
    Ok(eye)
}
