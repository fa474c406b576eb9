//! Dense linear algebra through cuSOLVER (loaded at run time; MLX has none on the GPU):
//! the inverse and `solve` (LU with partial pivoting), Cholesky and the symmetric
//! eigensolver, in float32 and float64, one matrix of the batch after another. The other
//! decompositions and dtypes run on the host.
//!
//! cuSOLVER is column-major; a row-major matrix read column-major is its transpose. So the
//! inverse factors `Aᵀ` and solves `Aᵀ Y = I`, whose column-major `Y = A⁻ᵀ` is `A⁻¹` read
//! row-major; `solve` uses the transposed LU solve on `Aᵀ` (`A X = B`) with `B` and `X`
//! transposed by copies; Cholesky and `eigh` take the symmetric matrix as it is, with the
//! triangle named the other way round (row-major lower = column-major upper). Singular or
//! non-positive-definite matrices and non-finite `eigh` inputs raise the CPU backend's
//! errors, after one read of the status words (which waits for the device).

use super::elementwise::{cast, launch_config, Kernel};
use super::prelude::{ctype, tag, PRELUDE};
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr, device_ptr_mut};
use cudarc::cusolver::sys::{
    self, cublasFillMode_t, cublasOperation_t, cusolverDnHandle_t, cusolverEigMode_t,
    cusolverStatus_t,
};
use parking_lot::Mutex;
use rmx_core::backend::LinalgOp;
use rmx_core::{ArrayData, Device, Dtype, Error, Result};
use std::sync::OnceLock;

/// The float32 and float64 entry points, by element type.
trait Solver: Copy {
    const DTYPE: Dtype;
    /// Column-major `m x n` LU (`lda = m`).
    unsafe fn getrf_size(
        h: cusolverDnHandle_t,
        mn: (i32, i32),
        a: u64,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn getrf(
        h: cusolverDnHandle_t,
        mn: (i32, i32),
        a: u64,
        ws: u64,
        piv: u64,
        info: u64,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn getrs(
        h: cusolverDnHandle_t,
        t: cublasOperation_t,
        n: i32,
        r: i32,
        a: u64,
        piv: u64,
        b: u64,
        info: u64,
    ) -> cusolverStatus_t;
    unsafe fn potrf_size(
        h: cusolverDnHandle_t,
        up: cublasFillMode_t,
        n: i32,
        a: u64,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn potrf(
        h: cusolverDnHandle_t,
        up: cublasFillMode_t,
        n: i32,
        a: u64,
        ws: u64,
        lwork: i32,
        info: u64,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn syevd_size(
        h: cusolverDnHandle_t,
        job: cusolverEigMode_t,
        up: cublasFillMode_t,
        n: i32,
        a: u64,
        w: u64,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn syevd(
        h: cusolverDnHandle_t,
        job: cusolverEigMode_t,
        up: cublasFillMode_t,
        n: i32,
        a: u64,
        w: u64,
        ws: u64,
        lwork: i32,
        info: u64,
    ) -> cusolverStatus_t;
    unsafe fn gesvd_size(
        h: cusolverDnHandle_t,
        m: i32,
        n: i32,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    /// Column-major `m x n` (`m >= n`), all of U (`m x m`) and Vᵀ (`n x n`) or neither.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gesvd(
        h: cusolverDnHandle_t,
        uv: bool,
        m: i32,
        n: i32,
        a: u64,
        s: u64,
        u: u64,
        vt: u64,
        ws: u64,
        lwork: i32,
        info: u64,
    ) -> cusolverStatus_t;
    /// Column-major `B (m x n) := B A⁻¹` for the `n x n` triangle `A` (`lower` in
    /// column-major terms).
    #[allow(clippy::too_many_arguments)]
    unsafe fn trsm_right(
        h: cudarc::cublas::sys::cublasHandle_t,
        lower: bool,
        m: i32,
        n: i32,
        a: u64,
        b: u64,
    ) -> cudarc::cublas::sys::cublasStatus_t;
    /// Column-major `m x n` Householder QR (`lda = m`) and the generation of its first
    /// `k` columns of Q.
    unsafe fn geqrf_size(
        h: cusolverDnHandle_t,
        m: i32,
        n: i32,
        a: u64,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn geqrf(
        h: cusolverDnHandle_t,
        m: i32,
        n: i32,
        a: u64,
        tau: u64,
        ws: u64,
        lwork: i32,
        info: u64,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn orgqr_size(
        h: cusolverDnHandle_t,
        m: i32,
        k: i32,
        a: u64,
        tau: u64,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn orgqr(
        h: cusolverDnHandle_t,
        m: i32,
        k: i32,
        a: u64,
        tau: u64,
        ws: u64,
        lwork: i32,
        info: u64,
    ) -> cusolverStatus_t;
}

macro_rules! solver {
    ($t:ty, $dt:expr, $getrf_size:ident, $getrf:ident, $getrs:ident, $potrf_size:ident, $potrf:ident, $syevd_size:ident, $syevd:ident, $gesvd_size:ident, $gesvd:ident, $trsm:ident, $geqrf_size:ident, $geqrf:ident, $orgqr_size:ident, $orgqr:ident) => {
        impl Solver for $t {
            const DTYPE: Dtype = $dt;
            unsafe fn geqrf_size(
                h: cusolverDnHandle_t,
                m: i32,
                n: i32,
                a: u64,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$geqrf_size(h, m, n, a as *mut $t, m, lwork)
            }
            unsafe fn geqrf(
                h: cusolverDnHandle_t,
                m: i32,
                n: i32,
                a: u64,
                tau: u64,
                ws: u64,
                lwork: i32,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$geqrf(
                    h,
                    m,
                    n,
                    a as *mut $t,
                    m,
                    tau as *mut $t,
                    ws as *mut $t,
                    lwork,
                    info as *mut i32,
                )
            }
            unsafe fn orgqr_size(
                h: cusolverDnHandle_t,
                m: i32,
                k: i32,
                a: u64,
                tau: u64,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$orgqr_size(h, m, k, k, a as *const $t, m, tau as *const $t, lwork)
            }
            unsafe fn orgqr(
                h: cusolverDnHandle_t,
                m: i32,
                k: i32,
                a: u64,
                tau: u64,
                ws: u64,
                lwork: i32,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$orgqr(
                    h,
                    m,
                    k,
                    k,
                    a as *mut $t,
                    m,
                    tau as *const $t,
                    ws as *mut $t,
                    lwork,
                    info as *mut i32,
                )
            }
            unsafe fn gesvd_size(
                h: cusolverDnHandle_t,
                m: i32,
                n: i32,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$gesvd_size(h, m, n, lwork)
            }
            unsafe fn gesvd(
                h: cusolverDnHandle_t,
                uv: bool,
                m: i32,
                n: i32,
                a: u64,
                s: u64,
                u: u64,
                vt: u64,
                ws: u64,
                lwork: i32,
                info: u64,
            ) -> cusolverStatus_t {
                let job = if uv { b'A' } else { b'N' } as i8;
                let null = std::ptr::null_mut();
                sys::$gesvd(
                    h,
                    job,
                    job,
                    m,
                    n,
                    a as *mut $t,
                    m,
                    s as *mut $t,
                    u as *mut $t,
                    m,
                    vt as *mut $t,
                    n,
                    ws as *mut $t,
                    lwork,
                    null,
                    info as *mut i32,
                )
            }
            unsafe fn trsm_right(
                h: cudarc::cublas::sys::cublasHandle_t,
                lower: bool,
                m: i32,
                n: i32,
                a: u64,
                b: u64,
            ) -> cudarc::cublas::sys::cublasStatus_t {
                use cudarc::cublas::sys as blas;
                let one: $t = 1.0;
                let fill = if lower {
                    blas::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER
                } else {
                    blas::cublasFillMode_t::CUBLAS_FILL_MODE_UPPER
                };
                blas::$trsm(
                    h,
                    blas::cublasSideMode_t::CUBLAS_SIDE_RIGHT,
                    fill,
                    blas::cublasOperation_t::CUBLAS_OP_N,
                    blas::cublasDiagType_t::CUBLAS_DIAG_NON_UNIT,
                    m,
                    n,
                    &one,
                    a as *const $t,
                    n,
                    b as *mut $t,
                    m,
                )
            }
            unsafe fn getrf_size(
                h: cusolverDnHandle_t,
                (m, n): (i32, i32),
                a: u64,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$getrf_size(h, m, n, a as *mut $t, m, lwork)
            }
            unsafe fn getrf(
                h: cusolverDnHandle_t,
                (m, n): (i32, i32),
                a: u64,
                ws: u64,
                piv: u64,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$getrf(
                    h,
                    m,
                    n,
                    a as *mut $t,
                    m,
                    ws as *mut $t,
                    piv as *mut i32,
                    info as *mut i32,
                )
            }
            unsafe fn getrs(
                h: cusolverDnHandle_t,
                t: cublasOperation_t,
                n: i32,
                r: i32,
                a: u64,
                piv: u64,
                b: u64,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$getrs(
                    h,
                    t,
                    n,
                    r,
                    a as *const $t,
                    n,
                    piv as *const i32,
                    b as *mut $t,
                    n,
                    info as *mut i32,
                )
            }
            unsafe fn potrf_size(
                h: cusolverDnHandle_t,
                up: cublasFillMode_t,
                n: i32,
                a: u64,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$potrf_size(h, up, n, a as *mut $t, n, lwork)
            }
            unsafe fn potrf(
                h: cusolverDnHandle_t,
                up: cublasFillMode_t,
                n: i32,
                a: u64,
                ws: u64,
                lwork: i32,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$potrf(
                    h,
                    up,
                    n,
                    a as *mut $t,
                    n,
                    ws as *mut $t,
                    lwork,
                    info as *mut i32,
                )
            }
            unsafe fn syevd_size(
                h: cusolverDnHandle_t,
                job: cusolverEigMode_t,
                up: cublasFillMode_t,
                n: i32,
                a: u64,
                w: u64,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$syevd_size(h, job, up, n, a as *const $t, n, w as *const $t, lwork)
            }
            unsafe fn syevd(
                h: cusolverDnHandle_t,
                job: cusolverEigMode_t,
                up: cublasFillMode_t,
                n: i32,
                a: u64,
                w: u64,
                ws: u64,
                lwork: i32,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$syevd(
                    h,
                    job,
                    up,
                    n,
                    a as *mut $t,
                    n,
                    w as *mut $t,
                    ws as *mut $t,
                    lwork,
                    info as *mut i32,
                )
            }
        }
    };
}

solver!(
    f32,
    Dtype::Float32,
    cusolverDnSgetrf_bufferSize,
    cusolverDnSgetrf,
    cusolverDnSgetrs,
    cusolverDnSpotrf_bufferSize,
    cusolverDnSpotrf,
    cusolverDnSsyevd_bufferSize,
    cusolverDnSsyevd,
    cusolverDnSgesvd_bufferSize,
    cusolverDnSgesvd,
    cublasStrsm_v2,
    cusolverDnSgeqrf_bufferSize,
    cusolverDnSgeqrf,
    cusolverDnSorgqr_bufferSize,
    cusolverDnSorgqr
);
solver!(
    f64,
    Dtype::Float64,
    cusolverDnDgetrf_bufferSize,
    cusolverDnDgetrf,
    cusolverDnDgetrs,
    cusolverDnDpotrf_bufferSize,
    cusolverDnDpotrf,
    cusolverDnDsyevd_bufferSize,
    cusolverDnDsyevd,
    cusolverDnDgesvd_bufferSize,
    cusolverDnDgesvd,
    cublasDtrsm_v2,
    cusolverDnDgeqrf_bufferSize,
    cusolverDnDgeqrf,
    cusolverDnDorgqr_bufferSize,
    cusolverDnDorgqr
);

/// The process's cuSOLVER handle (on rmx's stream), or `None` without the library.
fn handle(gpu: &'static Gpu) -> Option<&'static Mutex<Handle>> {
    static HANDLE: OnceLock<Option<Mutex<Handle>>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            if !unsafe { sys::is_culib_present() } || gpu.bind().is_err() {
                return None;
            }
            let h = cudarc::cusolver::result::dn_create().ok()?;
            unsafe { cudarc::cusolver::result::dn_set_stream(h, gpu.stream.cu_stream() as _) }
                .ok()?;
            Some(Mutex::new(Handle(h)))
        })
        .as_ref()
}

struct Handle(cusolverDnHandle_t);
// SAFETY: cuSOLVER handles may be used from any thread; the mutex serializes their use.
unsafe impl Send for Handle {}

fn check(what: &str, s: cusolverStatus_t) -> Result<()> {
    if s == cusolverStatus_t::CUSOLVER_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(driver_err(what, s))
    }
}

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

fn launch_helper(
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
trait ArgRef {
    fn push<'a>(&'a self, b: &mut crate::launch::Launch<'a>);
}
impl<T: cudarc::driver::DeviceRepr> ArgRef for T {
    fn push<'a>(&'a self, b: &mut crate::launch::Launch<'a>) {
        b.arg(self);
    }
}

/// A fresh row-contiguous copy of `x` (the factorizations overwrite it), or of its
/// transpose in the last two axes.
fn work_copy(gpu: &'static Gpu, x: &ArrayData, transpose: bool) -> Result<Option<ArrayData>> {
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
fn raise_status(words: &ArrayData, count: usize, name: &str, failure: &str) -> Result<()> {
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
fn status_words(gpu: &'static Gpu, count: usize) -> Result<(ArrayData, u64)> {
    let (words, ptr) = alloc_output(gpu, Dtype::Int32, &[count.max(1)])?;
    unsafe {
        cudarc::driver::result::memset_d8_async(ptr, 0, count.max(1) * 4, gpu.stream.cu_stream())
    }
    .map_err(|e| driver_err("cuMemsetD8", e))?;
    Ok((words, ptr))
}

/// The first nonzero status word (waits for the device).
fn first_failure(words: &ArrayData) -> Result<Option<i32>> {
    words.buffer.make_resident(Device::CPU)?;
    Ok(words.to_vec::<i32>().into_iter().find(|&v| v != 0))
}

fn scratch(gpu: &'static Gpu, dtype: Dtype, elems: i32) -> Result<(ArrayData, u64)> {
    alloc_output(gpu, dtype, &[elems.max(1) as usize])
}

pub fn linalg(
    gpu: &'static Gpu,
    op: LinalgOp,
    inputs: &[ArrayData],
) -> Result<Option<Vec<ArrayData>>> {
    match inputs[0].dtype {
        Dtype::Float32 => run::<f32>(gpu, op, inputs),
        Dtype::Float64 => run::<f64>(gpu, op, inputs),
        _ => Ok(None),
    }
}

fn run<T: Solver>(
    gpu: &'static Gpu,
    op: LinalgOp,
    inputs: &[ArrayData],
) -> Result<Option<Vec<ArrayData>>> {
    let a = &inputs[0];
    let nd = a.ndim();
    // the general eigensolver (complex results) stays on the host
    if matches!(op, LinalgOp::Eig { .. }) || nd < 2 || crate::graph::is_capturing() {
        return Ok(None);
    }
    let (m, n) = (a.shape[nd - 2], a.shape[nd - 1]);
    let count: usize = a.shape[..nd - 2].iter().product();
    let square = m == n
        || matches!(
            op,
            LinalgOp::Svd { .. } | LinalgOp::Qr | LinalgOp::Lu | LinalgOp::LuFactor
        );
    if !square || m == 0 || n == 0 || count == 0 || m.max(n) > 1 << 15 {
        return Ok(None);
    }
    let Some(lock) = handle(gpu) else {
        return Ok(None);
    };
    match op {
        LinalgOp::Svd { compute_uv } => return svd::<T>(gpu, &lock.lock(), a, compute_uv),
        LinalgOp::Qr => return qr::<T>(gpu, &lock.lock(), a),
        LinalgOp::Lu | LinalgOp::LuFactor => {
            return lu::<T>(gpu, &lock.lock(), a, op == LinalgOp::Lu)
        }
        LinalgOp::Det { log } => return det::<T>(gpu, &lock.lock(), a, log),
        LinalgOp::SolveTriangular { upper } => {
            return triangular::<T>(gpu, a, Some(&inputs[1]), upper)
        }
        LinalgOp::TriInv { upper } => return triangular::<T>(gpu, a, None, upper),
        _ => {}
    }
    let dt = T::DTYPE;
    let size = dt.size() as u64;
    let mat = (n * n) as u64 * size;
    let ni = n as i32;
    let guard = lock.lock();
    let h = guard.0;
    gpu.bind()?;
    match op {
        LinalgOp::Inv | LinalgOp::Solve => {
            // LU of Aᵀ (A read column-major), one matrix at a time
            let Some(lu) = work_copy(gpu, a, false)? else {
                return Ok(None);
            };
            let (rhs, r) = if op == LinalgOp::Inv {
                (identity(gpu, dt, &a.shape)?, n)
            } else {
                let b = &inputs[1];
                let r = b.shape[b.ndim() - 1];
                if r == 0 {
                    return Ok(None);
                }
                let Some(bt) = work_copy(gpu, b, true)? else {
                    return Ok(None);
                };
                (bt, r)
            };
            let lu_ptr = device_ptr_mut(gpu, &lu)?;
            let rhs_ptr = device_ptr_mut(gpu, &rhs)?;
            let mut lwork = 0i32;
            check("getrf_bufferSize", unsafe {
                T::getrf_size(h, (ni, ni), lu_ptr, &mut lwork)
            })?;
            let (_ws, ws) = scratch(gpu, dt, lwork)?;
            let (_piv, piv) = alloc_output(gpu, Dtype::Int32, &[n])?;
            // getrf's words, then getrs's (which only report bad arguments)
            let (words, info) = status_words(gpu, 2 * count)?;
            let trans = if op == LinalgOp::Inv {
                cublasOperation_t::CUBLAS_OP_N
            } else {
                cublasOperation_t::CUBLAS_OP_T
            };
            for b in 0..count as u64 {
                let (ab, bb) = (lu_ptr + b * mat, rhs_ptr + b * (n * r) as u64 * size);
                let (ib, is) = (info + b * 4, info + (count as u64 + b) * 4);
                check("getrf", unsafe { T::getrf(h, (ni, ni), ab, ws, piv, ib) })?;
                check("getrs", unsafe {
                    T::getrs(h, trans, ni, r as i32, ab, piv, bb, is)
                })?;
            }
            let name = if op == LinalgOp::Inv { "inv" } else { "solve" };
            if let Some(i) = first_failure(&words)? {
                return Err(Error::Runtime(format!(
                    "[linalg::{name}] The matrix is singular (zero pivot at position {i})."
                )));
            }
            if op == LinalgOp::Inv {
                return Ok(Some(vec![rhs]));
            }
            // X was solved column-major ([r, n] row-major): back to [.., n, r]
            Ok(work_copy(gpu, &rhs, true)?.map(|x| vec![x]))
        }
        LinalgOp::Cholesky { upper } => {
            let Some(f) = work_copy(gpu, a, false)? else {
                return Ok(None);
            };
            let p = device_ptr_mut(gpu, &f)?;
            // row-major lower is column-major upper
            let fill = if upper {
                cublasFillMode_t::CUBLAS_FILL_MODE_LOWER
            } else {
                cublasFillMode_t::CUBLAS_FILL_MODE_UPPER
            };
            let mut lwork = 0i32;
            check("potrf_bufferSize", unsafe {
                T::potrf_size(h, fill, ni, p, &mut lwork)
            })?;
            let (_ws, ws) = scratch(gpu, dt, lwork)?;
            let (words, info) = status_words(gpu, count)?;
            for b in 0..count as u64 {
                check("potrf", unsafe {
                    T::potrf(h, fill, ni, p + b * mat, ws, lwork, info + b * 4)
                })?;
            }
            let total = (count * n * n) as i64;
            let (n64, lower) = (n as i64, i32::from(!upper));
            launch_helper(
                gpu,
                dt,
                "keep_triangle",
                &[&p, &n64, &total, &lower],
                total as usize,
            )?;
            if first_failure(&words)?.is_some() {
                return Err(Error::Runtime(
                    "[linalg::cholesky] Cholesky decomposition failed: the matrix is not positive definite."
                        .into(),
                ));
            }
            Ok(Some(vec![f]))
        }
        LinalgOp::Eigh { upper, vectors } => {
            let Some(v) = work_copy(gpu, a, false)? else {
                return Ok(None);
            };
            let p = device_ptr_mut(gpu, &v)?;
            let (w, wp) = alloc_output(gpu, dt, &a.shape[..nd - 1])?;
            let (words, info) = status_words(gpu, count + 1)?;
            let total = (count * n * n) as i64;
            let flag = info + count as u64 * 4;
            launch_helper(gpu, dt, "nonfinite", &[&p, &total, &flag], total as usize)?;
            let fill = if upper {
                cublasFillMode_t::CUBLAS_FILL_MODE_LOWER
            } else {
                cublasFillMode_t::CUBLAS_FILL_MODE_UPPER
            };
            let job = if vectors {
                cusolverEigMode_t::CUSOLVER_EIG_MODE_VECTOR
            } else {
                cusolverEigMode_t::CUSOLVER_EIG_MODE_NOVECTOR
            };
            let mut lwork = 0i32;
            check("syevd_bufferSize", unsafe {
                T::syevd_size(h, job, fill, ni, p, wp, &mut lwork)
            })?;
            let (_ws, ws) = scratch(gpu, dt, lwork)?;
            for b in 0..count as u64 {
                let (ab, wb) = (p + b * mat, wp + b * n as u64 * size);
                check("syevd", unsafe {
                    T::syevd(h, job, fill, ni, ab, wb, ws, lwork, info + b * 4)
                })?;
            }
            raise_status(
                &words,
                count,
                "eigh",
                "Eigenvalue decomposition failed to converge.",
            )?;
            if !vectors {
                return Ok(Some(vec![w]));
            }
            // eigenvectors are the columns of the column-major result: transpose
            let Some(vt) = work_copy(gpu, &v, true)? else {
                return Ok(None);
            };
            Ok(Some(vec![w, vt]))
        }
        _ => Ok(None),
    }
}

/// `det` (or sign and log|det|): LU of `Aᵀ` (the same determinant), then one thread per
/// matrix over the diagonal and the pivots.
fn det<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
    log: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let nd = a.ndim();
    let (n, count) = (
        a.shape[nd - 1],
        a.numel() / (a.shape[nd - 1] * a.shape[nd - 1]),
    );
    let (dt, ni) = (T::DTYPE, n as i32);
    let Some(lu) = work_copy(gpu, a, false)? else {
        return Ok(None);
    };
    let p = device_ptr_mut(gpu, &lu)?;
    let mut lwork = 0i32;
    check("getrf_bufferSize", unsafe {
        T::getrf_size(h.0, (ni, ni), p, &mut lwork)
    })?;
    let (_ws, ws) = scratch(gpu, dt, lwork)?;
    let (_piv, piv) = alloc_output(gpu, Dtype::Int32, &[count, n])?;
    // a zero pivot only makes the determinant 0: the status words are not read
    let (_words, info) = status_words(gpu, count)?;
    let mat = (n * n * dt.size()) as u64;
    for b in 0..count as u64 {
        let pb = piv + b * n as u64 * 4;
        check("getrf", unsafe {
            T::getrf(h.0, (ni, ni), p + b * mat, ws, pb, info + b * 4)
        })?;
    }
    let batch = &a.shape[..nd - 2];
    let (out0, p0) = alloc_output(gpu, dt, batch)?;
    let (out1, p1) = alloc_output(gpu, dt, batch)?;
    let (n64, c64, want) = (n as i64, count as i64, i32::from(log));
    launch_helper(
        gpu,
        dt,
        "det",
        &[&p, &piv, &n64, &c64, &p0, &p1, &want],
        count,
    )?;
    Ok(Some(if log { vec![out0, out1] } else { vec![out0] }))
}

/// `solve_triangular` (`rhs`) or `tri_inv` (identity right-hand sides) with cuBLAS's
/// triangular solve. Row-major `A X = B` is column-major `Xᵀ Aᵀ = Bᵀ` with `Aᵀ` the
/// other triangle: a right-side solve in place on a copy of `B`.
fn triangular<T: Solver>(
    gpu: &'static Gpu,
    a: &ArrayData,
    rhs: Option<&ArrayData>,
    upper: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let nd = a.ndim();
    let n = a.shape[nd - 1];
    let count = a.numel() / (n * n);
    let dt = T::DTYPE;
    let Some(tri) = super::elementwise::row_contiguous(gpu, a)? else {
        return Ok(None);
    };
    let ap = device_ptr(gpu, &tri)?;
    let (x, r) = match rhs {
        Some(b) => {
            let r = b.shape[b.ndim() - 1];
            match work_copy(gpu, b, false)? {
                Some(x) if r > 0 => (x, r),
                _ => return Ok(None),
            }
        }
        None => (identity(gpu, dt, &a.shape)?, n),
    };
    let xp = device_ptr_mut(gpu, &x)?;
    let (words, wp) = status_words(gpu, count)?;
    let (n64, c64) = (n as i64, count as i64);
    launch_helper(gpu, dt, "zero_diagonal", &[&ap, &n64, &c64, &wp], count)?;
    {
        let blas = gpu.blas.lock();
        let size = dt.size() as u64;
        for b in 0..count as u64 {
            let (ab, xb) = (
                ap + b * (n * n) as u64 * size,
                xp + b * (n * r) as u64 * size,
            );
            let s = unsafe { T::trsm_right(*blas.handle(), upper, r as i32, n as i32, ab, xb) };
            if s != cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
                return Err(driver_err("cublasTrsm", s));
            }
        }
    }
    if let Some(i) = first_failure(&words)? {
        return Err(Error::Runtime(match rhs {
            Some(_) => format!(
                "[linalg::solve_triangular] The matrix is singular (zero pivot at position {i})."
            ),
            None => format!(
                "[linalg::tri_inv] Triangular inversion failed with error code {i}: the matrix is singular."
            ),
        }));
    }
    Ok(Some(vec![x]))
}

/// Singular values (and vectors) with `gesvd`, which wants at least as many rows as
/// columns in column-major terms. Row-major `A` (`m x n`) read column-major is `Aᵀ`; for
/// `n >= m` its factors are the ones wanted as they lie (`Aᵀ = V S Uᵀ`: the column-major
/// U read row-major is `Vᴴ`, the column-major Vᵀ read row-major is `U`). Otherwise `A`
/// is copied column-major and both factors are transposed back.
fn svd<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
    uv: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let nd = a.ndim();
    let (m, n) = (a.shape[nd - 2], a.shape[nd - 1]);
    let (count, k) = (a.numel() / (m * n), m.min(n));
    let dt = T::DTYPE;
    let wide = n >= m;
    let Some(work) = work_copy(gpu, a, !wide)? else {
        return Ok(None);
    };
    // the column-major problem: rows >= cols
    let (rows, cols) = if wide { (n, m) } else { (m, n) };
    let p = device_ptr_mut(gpu, &work)?;
    let batch = &a.shape[..nd - 2];
    let with = |tail: &[usize]| [batch, tail].concat();
    let (s, sp) = alloc_output(gpu, dt, &with(&[k]))?;
    let (u, up) = alloc_output(gpu, dt, &with(&[rows, rows]))?;
    let (vt, vp) = alloc_output(gpu, dt, &with(&[cols, cols]))?;
    let (words, info) = status_words(gpu, count + 1)?;
    let total = a.numel() as i64;
    let flag = info + count as u64 * 4;
    launch_helper(gpu, dt, "nonfinite", &[&p, &total, &flag], total as usize)?;
    let mut lwork = 0i32;
    let (ri, ci) = (rows as i32, cols as i32);
    check("gesvd_bufferSize", unsafe {
        T::gesvd_size(h.0, ri, ci, &mut lwork)
    })?;
    let (_ws, ws) = scratch(gpu, dt, lwork)?;
    let size = dt.size() as u64;
    for b in 0..count as u64 {
        let (ab, sb) = (p + b * (m * n) as u64 * size, sp + b * k as u64 * size);
        let (ub, vb) = (
            up + b * (rows * rows) as u64 * size,
            vp + b * (cols * cols) as u64 * size,
        );
        check("gesvd", unsafe {
            T::gesvd(h.0, uv, ri, ci, ab, sb, ub, vb, ws, lwork, info + b * 4)
        })?;
    }
    raise_status(&words, count, "svd", "SVD failed to converge.")?;
    if !uv {
        return Ok(Some(vec![s]));
    }
    if wide {
        // U (row-major) is the column-major Vᵀ, Vᴴ the column-major U
        return Ok(Some(vec![vt, s, u]));
    }
    match (work_copy(gpu, &u, true)?, work_copy(gpu, &vt, true)?) {
        (Some(u), Some(vh)) => Ok(Some(vec![u, s, vh])),
        _ => Ok(None),
    }
}

/// Q (`[m, k]`) and R (`[k, n]`): Householder QR of the column-major copy of `A`, R read
/// off its upper triangle, then Q generated in place and transposed back.
fn qr<T: Solver>(gpu: &'static Gpu, h: &Handle, a: &ArrayData) -> Result<Option<Vec<ArrayData>>> {
    let nd = a.ndim();
    let (m, n) = (a.shape[nd - 2], a.shape[nd - 1]);
    let (count, k) = (a.numel() / (m * n), m.min(n));
    let dt = T::DTYPE;
    let Some(work) = work_copy(gpu, a, true)? else {
        return Ok(None);
    };
    let p = device_ptr_mut(gpu, &work)?;
    let batch = &a.shape[..nd - 2];
    let (r, rp) = alloc_output(gpu, dt, &[batch, &[k, n]].concat())?;
    let (_tau, tau) = alloc_output(gpu, dt, &[count, k])?;
    let (mi, ni, ki) = (m as i32, n as i32, k as i32);
    let (mut l1, mut l2) = (0i32, 0i32);
    check("geqrf_bufferSize", unsafe {
        T::geqrf_size(h.0, mi, ni, p, &mut l1)
    })?;
    check("orgqr_bufferSize", unsafe {
        T::orgqr_size(h.0, mi, ki, p, tau, &mut l2)
    })?;
    let lwork = l1.max(l2);
    let (_ws, ws) = scratch(gpu, dt, lwork)?;
    let (_words, info) = status_words(gpu, count)?;
    let size = dt.size() as u64;
    let mat = (m * n) as u64 * size;
    for b in 0..count as u64 {
        let tb = tau + b * k as u64 * size;
        check("geqrf", unsafe {
            T::geqrf(h.0, mi, ni, p + b * mat, tb, ws, lwork, info + b * 4)
        })?;
    }
    let (m64, n64, k64, total) = (m as i64, n as i64, k as i64, (count * k * n) as i64);
    launch_helper(
        gpu,
        dt,
        "qr_r",
        &[&p, &rp, &m64, &n64, &k64, &total],
        total as usize,
    )?;
    for b in 0..count as u64 {
        let tb = tau + b * k as u64 * size;
        check("orgqr", unsafe {
            T::orgqr(h.0, mi, ki, p + b * mat, tb, ws, lwork, info + b * 4)
        })?;
    }
    // Q's first k columns, column-major with `lda = m`: read row-major through strides
    let mut strides = work.strides.to_vec();
    let mut shape = work.shape.to_vec();
    (shape[nd - 2], shape[nd - 1]) = (m, k);
    (strides[nd - 2], strides[nd - 1]) = (1, m as isize);
    let Some(q) = cast(
        gpu,
        &work.view(shape.into(), strides.into(), work.offset),
        dt,
    )?
    else {
        return Ok(None);
    };
    Ok(Some(vec![q, r]))
}

/// `lu_factor` (compact LU and 0-based LAPACK pivots) or `lu` (row order, L, U): LU with
/// partial pivoting of the column-major copy of `A`, transposed back.
fn lu<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
    parts: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let nd = a.ndim();
    let (m, n) = (a.shape[nd - 2], a.shape[nd - 1]);
    let (count, k) = (a.numel() / (m * n), m.min(n));
    let dt = T::DTYPE;
    let Some(work) = work_copy(gpu, a, true)? else {
        return Ok(None);
    };
    let p = device_ptr_mut(gpu, &work)?;
    let mut lwork = 0i32;
    let mn = (m as i32, n as i32);
    check("getrf_bufferSize", unsafe {
        T::getrf_size(h.0, mn, p, &mut lwork)
    })?;
    let (_ws, ws) = scratch(gpu, dt, lwork)?;
    let (_piv, piv) = alloc_output(gpu, Dtype::Int32, &[count, k])?;
    // zero pivots are not errors here (LAPACK's getrf goes on): the words are not read
    let (_words, info) = status_words(gpu, count)?;
    let mat = (m * n * dt.size()) as u64;
    for b in 0..count as u64 {
        let pb = piv + b * k as u64 * 4;
        check("getrf", unsafe {
            T::getrf(h.0, mn, p + b * mat, ws, pb, info + b * 4)
        })?;
    }
    // back to row-major: the column-major result read transposed
    let Some(c) = work_copy(gpu, &work, true)? else {
        return Ok(None);
    };
    let batch = &a.shape[..nd - 2];
    let with = |tail: &[usize]| [batch, tail].concat();
    let (pivots, pp) = alloc_output(gpu, Dtype::Uint32, &with(&[k]))?;
    let (m64, n64, k64, c64) = (m as i64, n as i64, k as i64, count as i64);
    if !parts {
        let null = 0u64;
        launch_helper(
            gpu,
            dt,
            "pivots",
            &[&piv, &pp, &null, &null, &m64, &k64, &c64],
            count,
        )?;
        return Ok(Some(vec![c, pivots]));
    }
    let (_order, op) = alloc_output(gpu, Dtype::Uint32, &[count, m])?;
    let (perm, permp) = alloc_output(gpu, Dtype::Uint32, &with(&[m]))?;
    launch_helper(
        gpu,
        dt,
        "pivots",
        &[&piv, &pp, &op, &permp, &m64, &k64, &c64],
        count,
    )?;
    let cp = device_ptr(gpu, &c)?;
    let (l, lp) = alloc_output(gpu, dt, &with(&[m, k]))?;
    let (u, up) = alloc_output(gpu, dt, &with(&[k, n]))?;
    let (tl, tu) = ((count * m * k) as i64, (count * k * n) as i64);
    launch_helper(
        gpu,
        dt,
        "lu_l",
        &[&cp, &lp, &m64, &n64, &k64, &tl],
        tl as usize,
    )?;
    launch_helper(
        gpu,
        dt,
        "lu_u",
        &[&cp, &up, &m64, &n64, &k64, &tu],
        tu as usize,
    )?;
    Ok(Some(vec![perm, l, u]))
}

/// Identity matrices of `shape` (`[.., n, n]`).
fn identity(gpu: &'static Gpu, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
    let (eye, p) = alloc_output(gpu, dtype, shape)?;
    let n = shape[shape.len() - 1] as i64;
    let total = eye.numel() as i64;
    launch_helper(gpu, dtype, "eye", &[&p, &n, &total], total as usize)?;
    Ok(eye)
}
