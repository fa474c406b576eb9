//! Batched matmul through cuBLAS (`cublasGemmStridedBatchedEx`): float32 (full fp32),
//! float64, complex64, and float16/bfloat16 with float32 accumulation. Row-major `C = A B` is the
//! column-major `Cᵀ = Bᵀ Aᵀ`, so operands go in swapped and nothing is copied when each
//! matrix is row- or column-contiguous with one stride between batch elements. A few rows
//! against a weight's transpose go to the matrix-vector kernel (`gemv.rs`) instead.

use super::elementwise::cast;
use crate::device::{driver_err, Gpu};
use crate::memory::{alloc_output, device_ptr};
use cudarc::cublas::result::gemm_strided_batched_ex;
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType};
use rmx_core::{ArrayData, Dtype, Result};
use std::ffi::c_void;

/// One stride between consecutive batch elements over all batch dims, if there is one.
fn batch_stride(x: &ArrayData) -> Option<i64> {
    let nb = x.ndim() - 2;
    let mut stride: Option<i64> = None;
    let mut expect_next: Option<i64> = None;
    for d in (0..nb).rev() {
        if x.shape[d] == 1 {
            continue;
        }
        let s = x.strides[d] as i64;
        match (stride, expect_next) {
            (None, _) => {
                stride = Some(s);
                expect_next = Some(s * x.shape[d] as i64);
            }
            (Some(s0), Some(e)) => {
                if s != e && !(s0 == 0 && s == 0) {
                    return None;
                }
                expect_next = Some(s * x.shape[d] as i64);
            }
            _ => return None,
        }
    }
    Some(stride.unwrap_or(0))
}

/// `x` ([.., R, C]) as a cuBLAS operand, copying it row-contiguous when its strides do not fit.
fn operand(gpu: &'static Gpu, x: &ArrayData) -> Result<Option<(GemmOperand, Option<ArrayData>)>> {
    let n = x.ndim();
    let (r, c) = (x.shape[n - 2], x.shape[n - 1]);
    let (sr, sc) = (x.strides[n - 2] as i64, x.strides[n - 1] as i64);
    let fits_rows = (sc == 1 || c == 1) && sr >= c.max(1) as i64;
    let fits_cols = (sr == 1 || r == 1) && sc >= r.max(1) as i64;
    if let Some(bs) = batch_stride(x) {
        if fits_rows {
            let op = GemmOperand {
                ptr: device_ptr(gpu, x)?,
                trans: false,
                ld: sr.max(c as i64).max(1),
                batch_stride: bs,
            };
            return Ok(Some((op, None)));
        }
        if fits_cols {
            let op = GemmOperand {
                ptr: device_ptr(gpu, x)?,
                trans: true,
                ld: sc.max(r as i64).max(1),
                batch_stride: bs,
            };
            return Ok(Some((op, None)));
        }
    }
    let Some(copy) = cast(gpu, x, x.dtype)? else {
        return Ok(None);
    };
    let op = GemmOperand {
        ptr: device_ptr(gpu, &copy)?,
        trans: false,
        ld: (c as i64).max(1),
        batch_stride: (r * c) as i64,
    };
    Ok(Some((op, Some(copy))))
}

/// cuBLAS's element and compute types for `dtype` (halves accumulate in float32).
fn gemm_types(dtype: Dtype) -> Option<(cudaDataType, cublasComputeType_t)> {
    use cublasComputeType_t::{CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F};
    match dtype {
        Dtype::Float32 => Some((cudaDataType::CUDA_R_32F, CUBLAS_COMPUTE_32F)),
        Dtype::Float16 => Some((cudaDataType::CUDA_R_16F, CUBLAS_COMPUTE_32F)),
        Dtype::Bfloat16 => Some((cudaDataType::CUDA_R_16BF, CUBLAS_COMPUTE_32F)),
        Dtype::Float64 => Some((cudaDataType::CUDA_R_64F, CUBLAS_COMPUTE_64F)),
        Dtype::Complex64 => Some((cudaDataType::CUDA_C_32F, CUBLAS_COMPUTE_32F)),
        _ => None,
    }
}

/// One column-major operand of `gemm`: address, transposed?, leading dim, batch stride
/// (in elements).
pub struct GemmOperand {
    pub ptr: u64,
    pub trans: bool,
    pub ld: i64,
    pub batch_stride: i64,
}

/// `batch` column-major products `C (m x n) = op(A) (m x k) op(B) (k x n)` in `dtype`
/// (cuBLAS's `cublasGemmStridedBatchedEx`); `c` is never transposed. False when cuBLAS
/// has no such type or a size exceeds its 32-bit arguments.
pub fn gemm(
    gpu: &'static Gpu,
    dtype: Dtype,
    dims: (usize, usize, usize),
    a: &GemmOperand,
    b: &GemmOperand,
    c: &GemmOperand,
    batch: usize,
) -> Result<bool> {
    gemm_scaled(gpu, (dtype, dtype), dims, (a, b, c), batch, 1.0)
}

/// `gemm` computing `C = alpha op(A) op(B)`, with `C` of its own dtype (`dtypes`: the
/// operands', then `C`'s): halves with a float32 `C` keep the accumulator's precision.
pub fn gemm_scaled(
    gpu: &'static Gpu,
    (dtype, c_dtype): (Dtype, Dtype),
    (m, n, k): (usize, usize, usize),
    (a, b, c): (&GemmOperand, &GemmOperand, &GemmOperand),
    batch: usize,
    alpha: f32,
) -> Result<bool> {
    let (Some((dt, compute)), Some((ct, _))) = (gemm_types(dtype), gemm_types(c_dtype)) else {
        return Ok(false);
    };
    if dtype != c_dtype
        && (compute != cublasComputeType_t::CUBLAS_COMPUTE_32F || c_dtype != Dtype::Float32)
    {
        return Ok(false);
    }
    let fits = |v: i64| v >= 0 && v <= i32::MAX as i64;
    if ![m as i64, n as i64, k as i64, batch as i64, a.ld, b.ld, c.ld]
        .into_iter()
        .all(fits)
    {
        return Ok(false);
    }
    let op = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    // 1 and 0 in the scaling type: f64, complex (two f32) or f32
    let (alpha64, beta64) = (alpha as f64, 0f64);
    let (alpha_c, beta_c) = ([alpha, 0.0], [0f32, 0.0]);
    let (alpha, beta): (*const c_void, *const c_void) = match dtype {
        Dtype::Float64 => (&alpha64 as *const f64 as _, &beta64 as *const f64 as _),
        _ => (alpha_c.as_ptr() as _, beta_c.as_ptr() as _),
    };
    gpu.bind()?;
    let blas = gpu.blas.lock();
    unsafe {
        gemm_strided_batched_ex(
            *blas.handle(),
            op(a.trans),
            op(b.trans),
            m as i32,
            n as i32,
            k as i32,
            alpha,
            a.ptr as *const c_void,
            dt,
            a.ld as i32,
            a.batch_stride,
            b.ptr as *const c_void,
            dt,
            b.ld as i32,
            b.batch_stride,
            beta,
            c.ptr as *mut c_void,
            ct,
            c.ld as i32,
            c.batch_stride,
            batch as i32,
            compute,
            cublasGemmAlgo_t::CUBLAS_GEMM_DFALT,
        )
    }
    .map_err(|e| driver_err("cublasGemmStridedBatchedEx", e))?;
    Ok(true)
}

pub fn matmul(gpu: &'static Gpu, a: &ArrayData, b: &ArrayData) -> Result<Option<ArrayData>> {
    if gemm_types(a.dtype).is_none() {
        return Ok(None);
    }
    let nd = a.ndim();
    let (m, k, n) = (a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]);
    if m > 0 && n > 0 && k > 0 {
        // a few rows against a weight's transpose (decode): the matrix-vector kernel
        if let Some(out) = super::gemv::gemv(gpu, a, b)? {
            return Ok(Some(out));
        }
    }
    product(gpu, a, b, a.dtype, 1.0)
}

/// `alpha · a @ b` (same-shaped batch dims) through cuBLAS into a new array of
/// `out_dtype` (`a`'s dtype, or float32 from halves).
pub fn product(
    gpu: &'static Gpu,
    a: &ArrayData,
    b: &ArrayData,
    out_dtype: Dtype,
    alpha: f32,
) -> Result<Option<ArrayData>> {
    if gemm_types(a.dtype).is_none() {
        return Ok(None);
    }
    let nd = a.ndim();
    let (m, k, n) = (a.shape[nd - 2], a.shape[nd - 1], b.shape[nd - 1]);
    let mut out_shape = a.shape.to_vec();
    out_shape[nd - 1] = n;
    let batch: usize = a.shape[..nd - 2].iter().product();
    if m == 0 || n == 0 || batch == 0 {
        return Ok(Some(alloc_output(gpu, out_dtype, &out_shape)?.0));
    }
    if k == 0 {
        return Ok(Some(super::elementwise::fill_bits(
            gpu, 0, out_dtype, &out_shape,
        )?));
    }
    if [m, n, k, batch].iter().any(|&v| v > i32::MAX as usize) {
        return Ok(None);
    }
    let (Some((oa, _keep_a)), Some((ob, _keep_b))) = (operand(gpu, a)?, operand(gpu, b)?) else {
        return Ok(None);
    };
    let (out, optr) = alloc_output(gpu, out_dtype, &out_shape)?;
    // row-major C = A B is column-major Cᵀ = Bᵀ Aᵀ: the operands go in swapped
    let c = GemmOperand {
        ptr: optr,
        trans: false,
        ld: n as i64,
        batch_stride: (m * n) as i64,
    };
    let dtypes = (a.dtype, out_dtype);
    if !gemm_scaled(gpu, dtypes, (n, m, k), (&ob, &oa, &c), batch, alpha)? {
        return Ok(None);
    }
    Ok(Some(out))
}
