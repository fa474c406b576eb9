//! The cuSOLVER and cuBLAS entry points the linear algebra uses, per element type
//! (float32, float64), and the process's cuSOLVER handle.

use crate::device::{driver_err, Gpu};
use cudarc::cusolver::sys::{
    self, cublasFillMode_t, cublasOperation_t, cusolverDnHandle_t, cusolverEigMode_t,
    cusolverStatus_t,
};
use parking_lot::Mutex;
use rmx_core::{Dtype, Result};
use std::sync::OnceLock;

/// The float32 and float64 entry points, by element type.
pub(super) trait Solver: Copy {
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
pub(super) fn handle(gpu: &'static Gpu) -> Option<&'static Mutex<Handle>> {
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

pub(super) struct Handle(pub(super) cusolverDnHandle_t);
// SAFETY: cuSOLVER handles may be used from any thread; the mutex serializes their use.
unsafe impl Send for Handle {}

pub(super) fn check(what: &str, s: cusolverStatus_t) -> Result<()> {
    if s == cusolverStatus_t::CUSOLVER_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(driver_err(what, s))
    }
}
