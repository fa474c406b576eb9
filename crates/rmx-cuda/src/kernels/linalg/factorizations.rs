//! det/slogdet, triangular solves and inverses, SVD, QR and LU.

use super::helpers::{
    first_failure, identity, launch_helper, raise_status, scratch, status_words, work_copy,
};
use super::solver::{check, Handle, Solver};
use crate::device::{driver_err, Gpu};
use crate::kernels::elementwise::cast;
use crate::memory::{alloc_output, device_ptr, device_ptr_mut};
use rmx_core::{ArrayData, Dtype, Error, Result};

/// `det` (or sign and log|det|): LU of `Aᵀ` (the same determinant), then one thread per
/// matrix over the diagonal and the pivots.
pub(super) fn det<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
    log: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let (nd, (_, n, count, _)) = (a.ndim(), sizes(a));
    let dt = T::DTYPE;
    let Some(lu) = work_copy(gpu, a, false)? else {
        return Ok(None);
    };
    let p = device_ptr_mut(gpu, &lu)?;
    // a zero pivot only makes the determinant 0: the status words are not read
    let (_piv, piv, _words, _) = batched_lu::<T>(gpu, h, p, (n, n), count)?;
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

/// Rows, columns, matrix count and `min(rows, cols)` of a batch of matrices.
fn sizes(a: &ArrayData) -> (usize, usize, usize, usize) {
    let nd = a.ndim();
    let (m, n) = (a.shape[nd - 2], a.shape[nd - 1]);
    (m, n, a.numel() / (m * n), m.min(n))
}

/// LU with partial pivoting, in place, of each of the `count` column-major `m x n`
/// matrices at `p`: their 1-based pivots (`[count, min(m, n)]` int32) and status words,
/// with the device addresses of both.
pub(super) fn batched_lu<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    p: u64,
    (m, n): (usize, usize),
    count: usize,
) -> Result<(ArrayData, u64, ArrayData, u64)> {
    let (dt, k, mn) = (T::DTYPE, m.min(n), (m as i32, n as i32));
    let mut lwork = 0i32;
    check("getrf_bufferSize", unsafe {
        T::getrf_size(h.0, mn, p, &mut lwork)
    })?;
    let (_ws, ws) = scratch(gpu, dt, lwork)?;
    let (piv, pp) = alloc_output(gpu, Dtype::Int32, &[count, k])?;
    let (words, info) = status_words(gpu, count)?;
    let mat = (m * n * dt.size()) as u64;
    for b in 0..count as u64 {
        let pb = pp + b * k as u64 * 4;
        check("getrf", unsafe {
            T::getrf(h.0, mn, p + b * mat, ws, pb, info + b * 4)
        })?;
    }
    Ok((piv, pp, words, info))
}

/// `solve_triangular` (`rhs`) or `tri_inv` (identity right-hand sides) with cuBLAS's
/// triangular solve. Row-major `A X = B` is column-major `Xᵀ Aᵀ = Bᵀ` with `Aᵀ` the
/// other triangle: a right-side solve in place on a copy of `B`.
pub(super) fn triangular<T: Solver>(
    gpu: &'static Gpu,
    a: &ArrayData,
    rhs: Option<&ArrayData>,
    upper: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let (_, n, count, _) = sizes(a);
    let dt = T::DTYPE;
    let Some(tri) = crate::kernels::elementwise::row_contiguous(gpu, a)? else {
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
pub(super) fn svd<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
    uv: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let (nd, (m, n, count, k)) = (a.ndim(), sizes(a));
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
pub(super) fn qr<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
) -> Result<Option<Vec<ArrayData>>> {
    let (nd, (m, n, count, k)) = (a.ndim(), sizes(a));
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
pub(super) fn lu<T: Solver>(
    gpu: &'static Gpu,
    h: &Handle,
    a: &ArrayData,
    parts: bool,
) -> Result<Option<Vec<ArrayData>>> {
    let (nd, (m, n, count, k)) = (a.ndim(), sizes(a));
    let dt = T::DTYPE;
    let Some(work) = work_copy(gpu, a, true)? else {
        return Ok(None);
    };
    let p = device_ptr_mut(gpu, &work)?;
    // zero pivots are not errors here (LAPACK's getrf goes on): the words are not read
    let (_piv, piv, _words, _) = batched_lu::<T>(gpu, h, p, (m, n), count)?;
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
