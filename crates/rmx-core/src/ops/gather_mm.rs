//! Matrix products with gathers or masks, as MLX 0.32.4: `gather_mm`, `gather_qmm`,
//! `block_masked_mm`, `segmented_mm`. Each is a composite of existing ops (take, matmul,
//! quantized_matmul, where, multiply), so vjp, jvp and vmap come from those; MLX has only a
//! vjp for GatherMM/BlockMaskedMM/GatherQMM and nothing for SegmentedMM.
//!
//! `gather_mm`/`gather_qmm` gather whole matrices per index (take along the flattened
//! batch) and run one batched (quantized) matmul; an index left out is not gathered at all
//! (its default is the identity over the batch). The usual mixture-of-experts call
//! (`rhs_indices` only, few experts per output) instead multiplies `a` by every matrix of
//! `b` and picks the indexed results, when that costs at most 4x the needed products
//! (`every_matrix_is_cheaper`). `sorted_indices` is accepted and unused. A kernel that
//! groups rows by expert would serve every case; not written yet.

use crate::array::Array;
use crate::dtype::{promote_types, Dtype};
use crate::element::Scalar;
use crate::error::{Error, Result};
use crate::shape::{broadcast_shapes, shape_str, Shape};

use super::creation::{arange, zeros};
use super::elementwise::{astype, greater_equal, less, logical_and, multiply, where_};
use super::indexing::take;
use super::linalg::matmul;
use super::quantized::quantized_matmul;
use super::shape::{broadcast_to, expand_dims, reshape_exact, slice, squeeze};

fn check_float(op: &str, a: &Array, b: &Array) -> Result<Dtype> {
    let dt = promote_types(a.dtype(), b.dtype());
    if !dt.is_float() {
        return Err(crate::value_err!(
            "[{op}] Only real floating point types are supported but {} and {} were provided which results in {dt}, which is not a real floating point type.",
            a.dtype(),
            b.dtype()
        ));
    }
    Ok(dt)
}

fn check_indices(op: &str, idx: Option<&Array>) -> Result<()> {
    match idx {
        Some(i) if !i.dtype().is_integer() => Err(crate::value_err!(
            "[{op}] Got indices with invalid dtype. Indices must be integral."
        )),
        _ => Ok(()),
    }
}

/// The matrices of `x` (`[..., R, C]`) at flat batch indices `idx`: `[*idx.shape, R, C]`.
/// Without indices, `x` itself (the default indices enumerate its batch in order).
pub(crate) fn gather_matrices(x: &Array, idx: Option<&Array>) -> Result<Array> {
    let Some(idx) = idx else {
        return Ok(x.clone());
    };
    let nd = x.ndim();
    let (r, c) = (x.shape()[nd - 2], x.shape()[nd - 1]);
    let batch: usize = x.shape()[..nd - 2].iter().product();
    let flat = reshape_exact(x, Shape::from_slice(&[batch, r, c]))?;
    take(&flat, idx, Some(0))
}

/// The batch shape the output gets: both index shapes (a missing one stands for its
/// operand's batch shape) broadcast together, with MLX's error when they do not.
fn index_batch(a: &Array, b: &Array, lhs: Option<&Array>, rhs: Option<&Array>) -> Result<Shape> {
    let sa = lhs.map_or(&a.shape()[..a.ndim() - 2], |i| i.shape());
    let sb = rhs.map_or(&b.shape()[..b.ndim() - 2], |i| i.shape());
    broadcast_shapes(sa, sb)
}

/// MLX's matmul operand rules for `op`: no 0-d inputs, a 1-d `a` becomes a row and a 1-d
/// `b` a column (flagged so the caller can drop them again), and the contracted sizes agree.
fn matrix_operands(op: &str, a: &Array, b: &Array) -> Result<(Array, Array, bool, bool)> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(crate::value_err!(
            "[{op}] Got 0 dimension input. Inputs must have at least one dimension."
        ));
    }
    let (a_vec, b_vec) = (a.ndim() == 1, b.ndim() == 1);
    let a = if a_vec {
        expand_dims(a, &[0])?
    } else {
        a.clone()
    };
    let b = if b_vec {
        expand_dims(b, &[1])?
    } else {
        b.clone()
    };
    let (an, bn) = (a.ndim(), b.ndim());
    if a.shape()[an - 1] != b.shape()[bn - 2] {
        return Err(crate::value_err!(
            "[{op}] Last dimension of first input with shape {} must match second to last dimension of second input with shape {}.",
            shape_str(a.shape()),
            shape_str(b.shape())
        ));
    }
    Ok((a, b, a_vec, b_vec))
}

/// `a @ b` on the matrices at `lhs_indices`/`rhs_indices` of their flattened batches.
pub fn gather_mm(
    a: &Array,
    b: &Array,
    lhs_indices: Option<&Array>,
    rhs_indices: Option<&Array>,
    _sorted_indices: bool,
) -> Result<Array> {
    const OP: &str = "gather_mm";
    if lhs_indices.is_none() && rhs_indices.is_none() {
        return matmul(a, b);
    }
    let dt = check_float(OP, a, b)?;
    let (a, b, a_vec, b_vec) = matrix_operands(OP, a, b)?;
    check_indices(OP, lhs_indices)?;
    check_indices(OP, rhs_indices)?;
    let batch = index_batch(&a, &b, lhs_indices, rhs_indices)?;
    let (a, b) = (astype(&a, dt)?, astype(&b, dt)?);
    let out = match (lhs_indices, rhs_indices) {
        (None, Some(idx)) if every_matrix_is_cheaper(&a, &b, &batch) => {
            every_matrix_then_pick(&a, &b, idx, &batch)?
        }
        _ => matmul(
            &gather_matrices(&a, lhs_indices)?,
            &gather_matrices(&b, rhs_indices)?,
        )?,
    };
    let mut axes = Vec::new();
    if a_vec {
        axes.push(-2);
    }
    if b_vec {
        axes.push(-1);
    }
    if axes.is_empty() {
        Ok(out)
    } else {
        squeeze(&out, Some(&axes))
    }
}

/// Whether `gather_mm(a, b, rhs_indices)` is cheaper as `a` times every matrix of `b` (one
/// GEMM per matrix, all of `a`'s rows at once) followed by a pick of the indexed results,
/// than as a copy of one whole matrix of `b` per output (the mixture-of-experts call: 16
/// tokens, top-2 of 8 experts of 512x1024 copied 64 MB and ran 32 matrix-vector products).
/// Taken when that computes at most 4x the products the gather needs.
fn every_matrix_is_cheaper(a: &Array, b: &Array, batch: &[usize]) -> bool {
    let a_batch: usize = a.shape()[..a.ndim() - 2].iter().product();
    let b_batch: usize = b.shape()[..b.ndim() - 2].iter().product();
    let out_batch: usize = batch.iter().product();
    out_batch > 0 && a_batch * b_batch <= 4 * out_batch
}

/// `a @ b[idx]` as `(a @ every matrix of b)[idx]`: `a`'s batch folded into rows, one
/// product per matrix of `b`, then the indexed matrix's rows picked for each output.
fn every_matrix_then_pick(a: &Array, b: &Array, idx: &Array, batch: &[usize]) -> Result<Array> {
    let (an, bn) = (a.ndim(), b.ndim());
    let a_batch = &a.shape()[..an - 2];
    let (m, k, n) = (a.shape()[an - 2], a.shape()[an - 1], b.shape()[bn - 1]);
    let e: usize = b.shape()[..bn - 2].iter().product();
    let rows: usize = a_batch.iter().product::<usize>() * m;
    let a2 = reshape_exact(a, Shape::from_slice(&[rows, k]))?;
    let b2 = reshape_exact(b, Shape::from_slice(&[e, k, n]))?;
    // [E, rows, N] -> [1.., A..., E, M, N] with A left-padded to the output batch's rank
    let full = matmul(&a2, &b2)?;
    let nb = batch.len();
    let mut shape = vec![e];
    shape.extend(std::iter::repeat_n(1, nb - a_batch.len()));
    shape.extend_from_slice(a_batch);
    shape.extend([m, n]);
    let full = reshape_exact(&full, Shape::from_slice(&shape))?;
    let full = super::shape::moveaxis(&full, 0, nb as i64)?;
    // indices [1.., I..., 1, 1, 1] pick along the matrix axis (broadcasting the rest)
    let mut ishape = vec![1usize; nb - idx.ndim()];
    ishape.extend_from_slice(idx.shape());
    ishape.extend([1, 1, 1]);
    let picks = reshape_exact(idx, Shape::from_slice(&ishape))?;
    let picked = super::indexing::take_along_axis(&full, &picks, Some(nb as i64))?;
    squeeze(&picked, Some(&[nb as i64]))
}

/// Renames `[quantized_matmul]` in a checked error to `[gather_qmm]`.
fn renamed(e: Error) -> Error {
    let fix = |s: String| s.replace("[quantized_matmul]", "[gather_qmm]");
    match e {
        Error::Value(s) => Error::Value(fix(s)),
        Error::Index(s) => Error::Index(fix(s)),
        Error::Type(s) => Error::Type(fix(s)),
        Error::Runtime(s) => Error::Runtime(fix(s)),
    }
}

/// `quantized_matmul` on the matrices of `x` and of `w`/`scales`/`biases` at the given
/// flat batch indices (affine mode).
#[allow(clippy::too_many_arguments)]
pub fn gather_qmm(
    x: &Array,
    w: &Array,
    scales: &Array,
    biases: Option<&Array>,
    lhs_indices: Option<&Array>,
    rhs_indices: Option<&Array>,
    transpose: bool,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    _sorted_indices: bool,
) -> Result<Array> {
    // MLX's checks of the quantized operands, on one matrix of x (no gather yet)
    // (a lazy zeros of one matrix's shape: never evaluated, only checked)
    let x_mat = if x.ndim() >= 2 {
        let s = x.shape();
        let mk = [s[s.len() - 2] as i64, s[s.len() - 1] as i64];
        zeros(&mk, x.dtype())?
    } else {
        x.clone()
    };
    quantized_matmul(&x_mat, w, scales, biases, transpose, group_size, bits, mode)
        .map_err(renamed)?;
    if x.ndim() < 2 {
        return Err(crate::value_err!(
            "[gather_qmm] Input must have at least two dimensions but got input with shape {}.",
            shape_str(x.shape())
        ));
    }
    check_indices("gather_qmm", lhs_indices)?;
    check_indices("gather_qmm", rhs_indices)?;
    if lhs_indices.is_none() && rhs_indices.is_none() {
        return quantized_matmul(x, w, scales, biases, transpose, group_size, bits, mode)
            .map_err(renamed);
    }
    let w_batch = &w.shape()[..w.ndim() - 2];
    let sa = lhs_indices.map_or(&x.shape()[..x.ndim() - 2], |i| i.shape());
    let sb = rhs_indices.map_or(w_batch, |i| i.shape());
    broadcast_shapes(sa, sb)?;
    let xg = gather_matrices(x, lhs_indices)?;
    let wg = gather_matrices(w, rhs_indices)?;
    let sg = gather_matrices(scales, rhs_indices)?;
    let bg = biases
        .map(|b| gather_matrices(b, rhs_indices))
        .transpose()?;
    quantized_matmul(
        &xg,
        &wg,
        &sg,
        bg.as_ref(),
        transpose,
        group_size,
        bits,
        mode,
    )
    .map_err(renamed)
}

/// A block mask `[..., t1, t2]` (already broadcast) repeated over `bs x bs` blocks and
/// cropped to `[..., rows, cols]`.
fn expand_mask(m: &Array, bs: usize, rows: usize, cols: usize) -> Result<Array> {
    let nd = m.ndim();
    let (t1, t2) = (m.shape()[nd - 2], m.shape()[nd - 1]);
    let lead = &m.shape()[..nd - 2];
    let mut s4: Shape = lead.into();
    s4.extend_from_slice(&[t1, 1, t2, 1]);
    let mut b4: Shape = lead.into();
    b4.extend_from_slice(&[t1, bs, t2, bs]);
    let mut s2: Shape = lead.into();
    s2.extend_from_slice(&[t1 * bs, t2 * bs]);
    let e = reshape_exact(&broadcast_to(&reshape_exact(m, s4)?, &b4)?, s2)?;
    let start = vec![0i64; nd];
    let mut stop: Vec<i64> = e.shape().iter().map(|&d| d as i64).collect();
    stop[nd - 2] = rows as i64;
    stop[nd - 1] = cols as i64;
    slice(&e, &start, &stop, None)
}

/// `x` with the blocks of `mask` applied: zeroed where a bool mask is false, scaled by a
/// numeric mask (cast to `x`'s dtype) otherwise.
fn apply_mask(x: &Array, mask: &Array, bs: usize) -> Result<Array> {
    let nd = x.ndim();
    let m = expand_mask(mask, bs, x.shape()[nd - 2], x.shape()[nd - 1])?;
    if m.dtype() == Dtype::Bool {
        where_(&m, x, &zeros(&[], x.dtype())?)
    } else {
        multiply(x, &astype(&m, x.dtype())?)
    }
}

/// `a @ b` with `block_size x block_size` blocks of the operands and the output masked.
pub fn block_masked_mm(
    a: &Array,
    b: &Array,
    block_size: i64,
    mask_out: Option<&Array>,
    mask_lhs: Option<&Array>,
    mask_rhs: Option<&Array>,
) -> Result<Array> {
    const OP: &str = "block_masked_mm";
    if mask_out.is_none() && mask_lhs.is_none() && mask_rhs.is_none() {
        return matmul(a, b);
    }
    if block_size != 32 && block_size != 64 {
        return Err(crate::value_err!(
            "[{OP}] Only block_sizes 32, 64 are supported.Got block size {block_size}."
        ));
    }
    let bs = block_size as usize;
    let (a, b, a_vec, b_vec) = matrix_operands(OP, a, b)?;
    let (an, bn) = (a.ndim(), b.ndim());
    let (m, k, n) = (a.shape()[an - 2], a.shape()[an - 1], b.shape()[bn - 1]);
    let dt = check_float(OP, &a, &b)?;
    let mut a = astype(&a, dt)?;
    let mut b = astype(&b, dt)?;
    let bsx = broadcast_shapes(&a.shape()[..an - 2], &b.shape()[..bn - 2])?;
    let tiles = |d: usize| d.div_ceil(bs);
    let (tm, tn, tk) = (tiles(m), tiles(n), tiles(k));
    let fit = |mask: &Array, y: usize, x: usize| -> Result<Array> {
        let mut shape = bsx.clone();
        shape.extend_from_slice(&[y, x]);
        broadcast_to(mask, &shape)
    };
    if mask_lhs.is_some() || mask_rhs.is_some() {
        let all = Array::from_slice(&[true], &[1])?;
        let ml = mask_lhs.cloned().unwrap_or_else(|| all.clone());
        let mr = mask_rhs.cloned().unwrap_or(all);
        let both_bool = ml.dtype() == Dtype::Bool && mr.dtype() == Dtype::Bool;
        let ml = if a_vec { expand_dims(&ml, &[-2])? } else { ml };
        let mr = if b_vec { expand_dims(&mr, &[-1])? } else { mr };
        let (ml, mr) = (fit(&ml, tm, tk)?, fit(&mr, tk, tn)?);
        // bool masks select; when one is numeric both multiply (MLX casts both then)
        let (ml, mr) = if both_bool {
            (ml, mr)
        } else {
            (astype(&ml, dt)?, astype(&mr, dt)?)
        };
        a = apply_mask(&a, &ml, bs)?;
        b = apply_mask(&b, &mr, bs)?;
    }
    let mut out = matmul(&a, &b)?;
    if let Some(mo) = mask_out {
        let mut mo = mo.clone();
        if a_vec {
            mo = expand_dims(&mo, &[-2])?;
        }
        if b_vec {
            mo = expand_dims(&mo, &[-1])?;
        }
        out = apply_mask(&out, &fit(&mo, tm, tn)?, bs)?;
    }
    let mut axes = Vec::new();
    if a_vec {
        axes.push(-2);
    }
    if b_vec {
        axes.push(-1);
    }
    if axes.is_empty() {
        Ok(out)
    } else {
        squeeze(&out, Some(&axes))
    }
}

/// One `a[:, s:e] @ b[s:e, :]` per segment `[s, e]` of `segments` (`[..., 2]`), stacked
/// as `[..., M, N]`. Segment bounds are clipped to `[0, K]` (MLX reads outside the
/// operands for bounds beyond K and aborts on negative ones); an empty or reversed
/// segment gives zeros.
pub fn segmented_mm(a: &Array, b: &Array, segments: &Array) -> Result<Array> {
    const OP: &str = "segmented_mm";
    if !segments.dtype().is_integer() {
        return Err(crate::value_err!(
            "[{OP}] Got segments with invalid dtype. Segments must be integral."
        ));
    }
    if segments.ndim() == 0 || segments.shape()[segments.ndim() - 1] != 2 {
        return Err(crate::value_err!(
            "[{OP}] The segments should have shape (..., 2) but {} was provided.",
            shape_str(segments.shape())
        ));
    }
    if a.ndim() != 2 || b.ndim() != 2 {
        return Err(crate::value_err!("[{OP}] Batched matmul not supported"));
    }
    let dt = check_float(OP, a, b)?;
    let k = a.shape()[1];
    if k != b.shape()[0] {
        return Err(crate::value_err!(
            "[{OP}] Last dimension of first input with shape {} must match second to last dimension of second input with shape {}.",
            shape_str(a.shape()),
            shape_str(b.shape())
        ));
    }
    let sn = segments.ndim();
    let seg = astype(segments, Dtype::Int64)?;
    let mut lo: Vec<i64> = vec![0; sn];
    let mut hi: Vec<i64> = segments.shape().iter().map(|&d| d as i64).collect();
    hi[sn - 1] = 1;
    let start = slice(&seg, &lo, &hi, None)?;
    lo[sn - 1] = 1;
    hi[sn - 1] = 2;
    let end = slice(&seg, &lo, &hi, None)?;
    let ks = arange(0.0, k as f64, 1.0, Dtype::Int64)?;
    // [..., K]: inside the segment
    let inside = logical_and(&greater_equal(&ks, &start)?, &less(&ks, &end)?)?;
    let inside = expand_dims(&inside, &[-2])?; // [..., 1, K]
    let am = where_(
        &inside,
        &astype(a, dt)?,
        &Array::scalar_of(Scalar::Int(0), dt)?,
    )?;
    matmul(&am, &astype(b, dt)?)
}
