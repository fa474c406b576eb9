//! Dense linear algebra through cuSOLVER and cuBLAS (loaded at run time; MLX has none on
//! the GPU): every `LinalgOp` but the general eigensolver, in float32 and float64, one
//! matrix of the batch after another. Complex inputs and `eig` run on the host.
//!
//! cuSOLVER is column-major; a row-major matrix read column-major is its transpose. So the
//! inverse factors `Aᵀ` and solves `Aᵀ Y = I`, whose column-major `Y = A⁻ᵀ` is `A⁻¹` read
//! row-major; `solve` uses the transposed LU solve on `Aᵀ` (`A X = B`) with `B` and `X`
//! transposed by copies; Cholesky and `eigh` take the symmetric matrix as it is, with the
//! triangle named the other way round (row-major lower = column-major upper); the other
//! factorizations (`factorizations.rs`) say which way they go. Singular or
//! non-positive-definite matrices and non-finite inputs raise the CPU backend's errors,
//! after one read of the status words (which waits for the device).

mod factorizations;
mod helpers;
mod solver;

#[cfg(test)]
pub use helpers::helper_kernel;

use crate::device::Gpu;
use crate::memory::{alloc_output, device_ptr_mut};
use cudarc::cusolver::sys::{cublasFillMode_t, cublasOperation_t, cusolverEigMode_t};
use factorizations::{batched_lu, det, lu, qr, svd, triangular};
use helpers::{
    first_failure, identity, launch_helper, raise_status, scratch, status_words, work_copy,
};
use rmx_core::backend::LinalgOp;
use rmx_core::{ArrayData, Dtype, Error, Result};
use solver::{check, handle, Solver};

/// cuSOLVER's name for the row-major triangle `upper` reads: row-major lower is
/// column-major upper.
fn column_major_fill(upper: bool) -> cublasFillMode_t {
    if upper {
        cublasFillMode_t::CUBLAS_FILL_MODE_LOWER
    } else {
        cublasFillMode_t::CUBLAS_FILL_MODE_UPPER
    }
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
            let (_piv, piv, words, _) = batched_lu::<T>(gpu, &guard, lu_ptr, (n, n), count)?;
            // getrs's own words only report bad arguments
            let (_solve_words, solve_info) = status_words(gpu, count)?;
            let trans = if op == LinalgOp::Inv {
                cublasOperation_t::CUBLAS_OP_N
            } else {
                cublasOperation_t::CUBLAS_OP_T
            };
            for b in 0..count as u64 {
                let (ab, bb) = (lu_ptr + b * mat, rhs_ptr + b * (n * r) as u64 * size);
                let (pb, is) = (piv + b * n as u64 * 4, solve_info + b * 4);
                check("getrs", unsafe {
                    T::getrs(h, trans, ni, r as i32, ab, pb, bb, is)
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
            let fill = column_major_fill(upper);
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
            let fill = column_major_fill(upper);
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
