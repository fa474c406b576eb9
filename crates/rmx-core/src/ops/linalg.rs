//! Products: matmul (batched, broadcast batch dims, 1-d operands), addmm, inner, outer,
//! tensordot, vecdot, kron.

use crate::array::Array;
use crate::dtype::promote_types;
use crate::element::Scalar;
use crate::error::Result;
use crate::primitives::linalg::Matmul;
use crate::shape::{broadcast_shapes, normalize_axis, shape_str, Shape};
use std::sync::Arc;

use super::elementwise::{add, astype, multiply, weak_scalar};
use super::reduce::sum;
use super::shape::{broadcast_to, expand_dims, reshape, reshape_exact, squeeze, transpose};

pub fn matmul(a: &Array, b: &Array) -> Result<Array> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(crate::value_err!(
            "[matmul] Got 0 dimension input. Inputs must have at least one dimension."
        ));
    }
    let dtype = promote_types(a.dtype(), b.dtype());
    if !dtype.is_inexact() {
        return Err(crate::value_err!(
            "[matmul] Only real floating point types are supported but {} and {} were provided which results in {}, which is not a real floating point type.",
            a.dtype(),
            b.dtype(),
            dtype
        ));
    }
    let a1 = a.ndim() == 1;
    let b1 = b.ndim() == 1;
    let a2 = if a1 { expand_dims(a, &[0])? } else { a.clone() };
    let b2 = if b1 {
        expand_dims(b, &[-1])?
    } else {
        b.clone()
    };
    let (an, bn) = (a2.ndim(), b2.ndim());
    if a2.shape()[an - 1] != b2.shape()[bn - 2] {
        return Err(crate::value_err!(
            "[matmul] Last dimension of first input with shape {} must match second to last dimension of second input with shape {}.",
            shape_str(a.shape()),
            shape_str(b.shape())
        ));
    }
    let batch = broadcast_shapes(&a2.shape()[..an - 2], &b2.shape()[..bn - 2])?;
    let (m, k, n) = (a2.shape()[an - 2], a2.shape()[an - 1], b2.shape()[bn - 1]);
    let mut sa: Shape = batch.clone();
    sa.extend_from_slice(&[m, k]);
    let mut sb: Shape = batch.clone();
    sb.extend_from_slice(&[k, n]);
    let aa = broadcast_to(&astype(&a2, dtype)?, &sa)?;
    let bb = broadcast_to(&astype(&b2, dtype)?, &sb)?;
    let mut so: Shape = batch;
    so.extend_from_slice(&[m, n]);
    let mut out = Array::from_op(so, dtype, Arc::new(Matmul), vec![aa, bb]);
    if a1 {
        out = squeeze(&out, Some(&[-2]))?;
    }
    if b1 {
        out = squeeze(&out, Some(&[-1]))?;
    }
    Ok(out)
}

/// `alpha * (a @ b) + beta * c`.
pub fn addmm(c: &Array, a: &Array, b: &Array, alpha: f64, beta: f64) -> Result<Array> {
    let ab = matmul(a, b)?;
    let d = promote_types(ab.dtype(), c.dtype());
    let lhs = if alpha == 1.0 {
        ab
    } else {
        multiply(&ab, &weak_scalar(Scalar::Float(alpha), d)?)?
    };
    let rhs = if beta == 1.0 {
        c.clone()
    } else {
        multiply(c, &weak_scalar(Scalar::Float(beta), d)?)?
    };
    add(&lhs, &rhs)
}

/// Sum-product over the last axes.
pub fn inner(a: &Array, b: &Array) -> Result<Array> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return multiply(a, b);
    }
    let (ka, kb) = (a.shape()[a.ndim() - 1], b.shape()[b.ndim() - 1]);
    if ka != kb {
        return Err(crate::value_err!(
            "[inner] Last dimension of inputs must match but got {ka} and {kb}."
        ));
    }
    tensordot_axes(a, b, &[a.ndim() as i64 - 1], &[b.ndim() as i64 - 1])
}

/// Outer product of the flattened inputs.
pub fn outer(a: &Array, b: &Array) -> Result<Array> {
    let af = reshape(a, &[-1, 1])?;
    let bf = reshape(b, &[1, -1])?;
    multiply(&af, &bf)
}

/// Contracts the last `n` axes of `a` with the first `n` of `b`.
pub fn tensordot(a: &Array, b: &Array, n: i64) -> Result<Array> {
    if n < 0 {
        return Err(crate::value_err!(
            "[tensordot] axes must be a non-negative integer."
        ));
    }
    let n = n as usize;
    if n > a.ndim() || n > b.ndim() {
        return Err(crate::value_err!(
            "[tensordot] axes exceeds the number of dimensions."
        ));
    }
    let ax_a: Vec<i64> = (a.ndim() - n..a.ndim()).map(|x| x as i64).collect();
    let ax_b: Vec<i64> = (0..n).map(|x| x as i64).collect();
    tensordot_axes(a, b, &ax_a, &ax_b)
}

/// Contracts `axes_a` of `a` with `axes_b` of `b`.
pub fn tensordot_axes(a: &Array, b: &Array, axes_a: &[i64], axes_b: &[i64]) -> Result<Array> {
    if axes_a.len() != axes_b.len() {
        return Err(crate::value_err!(
            "[tensordot] Arrays must have the same number of axes specified for each input."
        ));
    }
    let ia: Vec<usize> = axes_a
        .iter()
        .map(|&x| normalize_axis("tensordot", x, a.ndim()))
        .collect::<Result<_>>()?;
    let ib: Vec<usize> = axes_b
        .iter()
        .map(|&x| normalize_axis("tensordot", x, b.ndim()))
        .collect::<Result<_>>()?;
    for (x, y) in ia.iter().zip(&ib) {
        if a.shape()[*x] != b.shape()[*y] {
            return Err(crate::value_err!(
                "[tensordot] Dimension mismatch: {} vs {}.",
                a.shape()[*x],
                b.shape()[*y]
            ));
        }
    }
    let free_a: Vec<usize> = (0..a.ndim()).filter(|d| !ia.contains(d)).collect();
    let free_b: Vec<usize> = (0..b.ndim()).filter(|d| !ib.contains(d)).collect();
    let k: usize = ia.iter().map(|&d| a.shape()[d]).product();
    let m: usize = free_a.iter().map(|&d| a.shape()[d]).product();
    let n: usize = free_b.iter().map(|&d| b.shape()[d]).product();
    let pa: Vec<i64> = free_a.iter().chain(&ia).map(|&d| d as i64).collect();
    let pb: Vec<i64> = ib.iter().chain(&free_b).map(|&d| d as i64).collect();
    let a2 = reshape_exact(&transpose(a, Some(&pa))?, Shape::from_slice(&[m, k]))?;
    let b2 = reshape_exact(&transpose(b, Some(&pb))?, Shape::from_slice(&[k, n]))?;
    let prod = matmul(&a2, &b2)?;
    let out: Shape = free_a
        .iter()
        .map(|&d| a.shape()[d])
        .chain(free_b.iter().map(|&d| b.shape()[d]))
        .collect();
    reshape_exact(&prod, out)
}

/// `sum(conj(a) * b, axis)` with broadcasting; `axis` must exist in both inputs with
/// equal sizes.
pub fn vecdot(a: &Array, b: &Array, axis: i64) -> Result<Array> {
    let in_range = |n: usize| axis >= -(n as i64) && axis < n as i64;
    if !in_range(a.ndim()) || !in_range(b.ndim()) {
        return Err(crate::value_err!("[vecdot] axis is out of bounds."));
    }
    let (ia, ib) = (
        normalize_axis("vecdot", axis, a.ndim())?,
        normalize_axis("vecdot", axis, b.ndim())?,
    );
    if a.shape()[ia] != b.shape()[ib] {
        return Err(crate::value_err!(
            "[vecdot] a and b must have the same size along axis."
        ));
    }
    let prod = multiply(&super::elementwise::conjugate(a)?, b)?;
    sum(&prod, Some(&[axis]), false)
}

/// Kronecker product.
pub fn kron(a: &Array, b: &Array) -> Result<Array> {
    let nd = a.ndim().max(b.ndim());
    let pad = |x: &Array| -> Result<Array> {
        let mut s: Vec<i64> = vec![1; nd - x.ndim()];
        s.extend(x.shape().iter().map(|&d| d as i64));
        reshape(x, &s)
    };
    let (a, b) = (pad(a)?, pad(b)?);
    // a[i0, 1, i1, 1, ...] * b[1, j0, 1, j1, ...]
    let mut sa = Vec::new();
    let mut sb = Vec::new();
    let mut out = Vec::new();
    for d in 0..nd {
        sa.extend([a.shape()[d] as i64, 1]);
        sb.extend([1, b.shape()[d] as i64]);
        out.push((a.shape()[d] * b.shape()[d]) as i64);
    }
    let p = multiply(&reshape(&a, &sa)?, &reshape(&b, &sb)?)?;
    reshape(&p, &out)
}
