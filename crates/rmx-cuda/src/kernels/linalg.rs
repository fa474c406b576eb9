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
use crate::memory::{alloc_output, device_ptr_mut};
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
    unsafe fn getrf_size(
        h: cusolverDnHandle_t,
        n: i32,
        a: u64,
        lwork: *mut i32,
    ) -> cusolverStatus_t;
    #[allow(clippy::too_many_arguments)]
    unsafe fn getrf(
        h: cusolverDnHandle_t,
        n: i32,
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
}

macro_rules! solver {
    ($t:ty, $dt:expr, $getrf_size:ident, $getrf:ident, $getrs:ident, $potrf_size:ident, $potrf:ident, $syevd_size:ident, $syevd:ident) => {
        impl Solver for $t {
            const DTYPE: Dtype = $dt;
            unsafe fn getrf_size(
                h: cusolverDnHandle_t,
                n: i32,
                a: u64,
                lwork: *mut i32,
            ) -> cusolverStatus_t {
                sys::$getrf_size(h, n, n, a as *mut $t, n, lwork)
            }
            unsafe fn getrf(
                h: cusolverDnHandle_t,
                n: i32,
                a: u64,
                ws: u64,
                piv: u64,
                info: u64,
            ) -> cusolverStatus_t {
                sys::$getrf(
                    h,
                    n,
                    n,
                    a as *mut $t,
                    n,
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
    cusolverDnSsyevd
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
    cusolverDnDsyevd
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
    let (mut shape, mut strides) = (x.shape.to_vec(), x.strides.to_vec());
    shape.swap(nd - 1, nd - 2);
    strides.swap(nd - 1, nd - 2);
    cast(
        gpu,
        &x.view(shape.into(), strides.into(), x.offset),
        x.dtype,
    )
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
    let supported = matches!(
        op,
        LinalgOp::Inv | LinalgOp::Solve | LinalgOp::Cholesky { .. } | LinalgOp::Eigh { .. }
    );
    if !supported || nd < 2 || crate::graph::is_capturing() {
        return Ok(None);
    }
    let n = a.shape[nd - 1];
    let count: usize = a.shape[..nd - 2].iter().product();
    if a.shape[nd - 2] != n || n == 0 || count == 0 || n > 1 << 15 {
        return Ok(None);
    }
    let Some(lock) = handle(gpu) else {
        return Ok(None);
    };
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
                T::getrf_size(h, ni, lu_ptr, &mut lwork)
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
                check("getrf", unsafe { T::getrf(h, ni, ab, ws, piv, ib) })?;
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
            words.buffer.make_resident(Device::CPU)?;
            let status = words.to_vec::<i32>();
            if status[count] != 0 {
                return Err(Error::Runtime(
                    "[linalg::eigh] The input contains NaN or infinite values.".into(),
                ));
            }
            if status[..count].iter().any(|&s| s != 0) {
                return Err(Error::Runtime(
                    "[linalg::eigh] Eigenvalue decomposition failed to converge.".into(),
                ));
            }
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

/// Identity matrices of `shape` (`[.., n, n]`).
fn identity(gpu: &'static Gpu, dtype: Dtype, shape: &[usize]) -> Result<ArrayData> {
    let (eye, p) = alloc_output(gpu, dtype, shape)?;
    let n = shape[shape.len() - 1] as i64;
    let total = eye.numel() as i64;
    launch_helper(gpu, dtype, "eye", &[&p, &n, &total], total as usize)?;
    Ok(eye)
}
