//! `qqmm` and `gather_qqmm` (MLX 0.32.4): `x @ w.T` with both operands in an fp
//! quantization mode. `x` is quantized and dequantized per group of its last axis on the
//! fly (MLX's kernel recipe, `backend/cpu/qqmm.rs`); `w` is taken packed (`uint32` with
//! `uint8` scales) or quantized here exactly as `quantize(w, mode=..., global_scale=
//! global_scale_w)` does; the product is `fp_quantized_matmul`'s, in x's dtype.
//!
//! MLX's CPU evaluates only one row of `x` against packed weights (bit for bit what rmx
//! computes) and raises "NYI" for everything else, `gather_qqmm` always; rmx computes
//! every case with the same per-row arithmetic. The checks and messages are MLX's, with
//! these differences where MLX builds a graph it cannot evaluate or reads garbage:
//! group size and bits must name nvfp4 (16, 4), mxfp4 (32, 4) or mxfp8 (32, 8) (MLX's CPU
//! picks the format by them too; "affine" is refused), packed scales must be `uint8` of
//! the matching shape, and a dense `w`'s last axis must be a multiple of the group size.
//! Global scales (nvfp4) are applied as MLX's CUDA path does (MLX's CPU ignores them): x
//! is quantized with `global_scale_x`, and the product is scaled by
//! `global_scale_w / 2688`, the factor `dequantize` applies to w.

use crate::array::Array;
use crate::dtype::Dtype;
use crate::error::Result;
use crate::primitives::qqmm::QQMatmul;
use crate::shape::{broadcast_shapes, shape_str};

use super::elementwise::stop_gradient;
use super::gather_mm::gather_matrices;
use super::quantized_fp::{fp_quantize, QuantMode};
use super::shape::{broadcast_to, reshape};

/// The weight operand of a product.
pub enum Weight<'a> {
    /// Float `w`, quantized by the op (and differentiable).
    Dense(&'a Array),
    /// Packed `w` and its scales.
    Packed(&'a Array, &'a Array),
}

/// `global_scale` as the float32 scalar MLX accepts (one element of any shape).
fn check_global(op: &str, g: &Array) -> Result<Array> {
    if g.size() != 1 {
        return Err(crate::value_err!(
            "[{op}] Global scale must be a scalar but got shape {}.",
            shape_str(g.shape())
        ));
    }
    if g.dtype() != Dtype::Float32 {
        return Err(crate::value_err!(
            "[{op}] Global scale must have dtype float32 but got {}.",
            g.dtype()
        ));
    }
    reshape(g, &[])
}

/// MLX's checks of the global scales (both or neither, nvfp4 only, float32 scalars).
fn check_globals(
    op: &str,
    mode: QuantMode,
    gx: Option<&Array>,
    gw: Option<&Array>,
) -> Result<Option<(Array, Array)>> {
    if gx.is_none() && gw.is_none() {
        return Ok(None);
    }
    if mode != QuantMode::Nvfp4 {
        return Err(crate::value_err!(
            "[{op}] Global scale is only supported for 'nvfp4' quantization mode."
        ));
    }
    let (Some(gx), Some(gw)) = (gx, gw) else {
        return Err(crate::value_err!(
            "[{op}] For nvfp4 mode, either both global_scale_x and global_scale_w must be \
             provided, or neither."
        ));
    };
    Ok(Some((check_global(op, gx)?, check_global(op, gw)?)))
}

fn float_operand(op: &str, a: &Array, which: &str) -> Result<()> {
    let dt = a.dtype();
    if !dt.is_float() || dt == Dtype::Float64 {
        return Err(crate::value_err!(
            "[{op}] Only real floating types except float64 are supported but {which} \
             argument dtype == {dt}."
        ));
    }
    Ok(())
}

/// The format the group size and bits name (MLX's CPU dispatches on them).
fn format(op: &str, mode: QuantMode, gs: i64, bits: i64) -> Result<QuantMode> {
    let m = match (mode, gs, bits) {
        (QuantMode::Affine, _, _) => None,
        (_, 16, 4) => Some(QuantMode::Nvfp4),
        (_, 32, 4) => Some(QuantMode::Mxfp4),
        (_, 32, 8) => Some(QuantMode::Mxfp8),
        _ => None,
    };
    m.ok_or_else(|| {
        crate::value_err!(
            "[{op}] Quantization mode '{}' with group_size={gs} and bits={bits} is not \
             supported: qqmm needs nvfp4 (16, 4), mxfp4 (32, 4) or mxfp8 (32, 8).",
            mode.name()
        )
    })
}

/// MLX's checks of packed weights against their scales and x's last dimension `k`.
fn check_packed(w: &Array, s: &Array, k: usize, gs: i64, bits: i64) -> Result<()> {
    let (ws, ss) = (w.shape(), s.shape());
    let nd = ws.len();
    if nd < 2 || ss.len() != nd || ws[..nd - 2] != ss[..nd - 2] {
        return Err(crate::value_err!(
            "[qqmm] Weight and scales should have the same batch shape. Received weight \
             with shape {}, scales with {}.",
            shape_str(ws),
            shape_str(ss)
        ));
    }
    let fits = gs > 0
        && bits > 0
        && ws[nd - 2] == ss[nd - 2]
        && (ws[nd - 1] as i64) * 32 == (ss[nd - 1] as i64) * gs * bits;
    if !fits {
        return Err(crate::value_err!(
            "[qqmm] The shapes of the weight and scales are incompatible based on bits and \
             group_size. w.shape() == {} and scales.shape() == {} with group_size={gs} and \
             bits={bits}",
            shape_str(ws),
            shape_str(ss)
        ));
    }
    let (rows, cols) = (ws[nd - 2], ws[nd - 1] * 32 / bits as usize);
    if k != cols {
        return Err(crate::value_err!(
            "[qqmm] Last dimension of first input with shape (..., {k}) does not match the \
             expanded quantized matrix ({cols}, {rows}) computed from shape {} with \
             group_size={gs}, bits={bits} and transpose=true",
            shape_str(ws)
        ));
    }
    if s.dtype() != Dtype::Uint8 {
        return Err(crate::value_err!(
            "[qqmm] Scale type must be uint8 but received type {}.",
            s.dtype()
        ));
    }
    Ok(())
}

fn check_dense(x_shape: &[usize], w: &Array) -> Result<()> {
    let k = x_shape[x_shape.len() - 1];
    if w.shape()[w.ndim() - 1] != k {
        return Err(crate::value_err!(
            "[qqmm] Last dimension of first input with shape {} must match last dimension \
             of second input with shape {}.",
            shape_str(x_shape),
            shape_str(w.shape())
        ));
    }
    Ok(())
}

/// The product node of checked operands: `x` `[..., M, K]` and `w` 2-d, or both with the
/// same batch shape. A dense `w` is quantized here (its last axis a multiple of the
/// group size); `global` is `(global_scale_x, global_scale_w)` (float32 scalars).
pub(crate) fn qqmm_product(
    x: &Array,
    w: Weight<'_>,
    mode: QuantMode,
    global: Option<(&Array, &Array)>,
) -> Result<Array> {
    let (wq, s, dense) = match w {
        Weight::Packed(wq, s) => (wq.clone(), s.clone(), None),
        Weight::Dense(w) => {
            let gs = mode.defaults().0 as usize;
            let k = w.shape()[w.ndim() - 1];
            if !k.is_multiple_of(gs) {
                return Err(crate::value_err!(
                    "[qqmm] The last dimension of the operands ({k}) must be divisible by the \
                     quantization group size {gs}."
                ));
            }
            let q = fp_quantize(w, mode, global.map(|g| g.1))?;
            (
                stop_gradient(&q[0])?,
                stop_gradient(&q[1])?,
                Some(w.clone()),
            )
        }
    };
    let prim = QQMatmul {
        mode,
        dense: dense.is_some(),
        global: global.is_some(),
    };
    let mut inputs = vec![x.clone(), wq, s];
    inputs.extend(dense);
    if let Some((gx, gw)) = global {
        inputs.extend([gx.clone(), gw.clone()]);
    }
    Ok(prim.node(inputs))
}

/// `quantize(x) @ quantize(w).T` (see the module notes). `w` is 2-d: float, or packed
/// `uint32` with `scales`; `x` has any leading dimensions.
#[allow(clippy::too_many_arguments)]
pub fn qqmm(
    x: &Array,
    w: &Array,
    scales: Option<&Array>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale_x: Option<&Array>,
    global_scale_w: Option<&Array>,
) -> Result<Array> {
    const OP: &str = "qqmm";
    let m = QuantMode::parse(OP, mode)?;
    if w.ndim() > 2 {
        return Err(crate::value_err!(
            "[qqmm] Only 2D inputs are supported but x.ndim() == {} and w.ndim() == {}.",
            x.ndim(),
            w.ndim()
        ));
    }
    float_operand(OP, x, "first")?;
    let packed = w.dtype() == Dtype::Uint32;
    if packed && scales.is_none() {
        return Err(crate::value_err!(
            "[qqmm] Scales must be provided if second argument is quantized."
        ));
    }
    if !packed {
        float_operand(OP, w, "second")?;
    }
    let global = check_globals(OP, m, global_scale_x, global_scale_w)?;
    let (gs, b) = m.params(group_size, bits);
    if x.ndim() == 0 || (!packed && w.ndim() < 2) {
        return Err(crate::index_err!("SmallVector out of range."));
    }
    let k = x.shape()[x.ndim() - 1];
    let x2 = reshape(x, &[-1, k as i64])?;
    let weight = match scales {
        Some(s) if packed => {
            check_packed(w, s, k, gs, b)?;
            Weight::Packed(w, s)
        }
        _ => {
            check_dense(x2.shape(), w)?;
            Weight::Dense(w)
        }
    };
    let f = format(OP, m, gs, b)?;
    let y = qqmm_product(&x2, weight, f, global.as_ref().map(|(a, b)| (a, b)))?;
    let mut shape: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    *shape.last_mut().unwrap() = y.shape()[1] as i64;
    reshape(&y, &shape)
}

/// `qqmm` on the matrices of `x` at `lhs_indices` and of `w` (and `scales`) at
/// `rhs_indices`, flat indices into their batch dimensions; a missing index leaves its
/// operand's batch as it is. Batch shapes broadcast. `sorted_indices` is accepted and
/// unused.
#[allow(clippy::too_many_arguments)]
pub fn gather_qqmm(
    x: &Array,
    w: &Array,
    scales: Option<&Array>,
    lhs_indices: Option<&Array>,
    rhs_indices: Option<&Array>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale_x: Option<&Array>,
    global_scale_w: Option<&Array>,
    _sorted_indices: bool,
) -> Result<Array> {
    const OP: &str = "gather_qqmm";
    let m = QuantMode::parse(OP, mode)?;
    for a in [x, w] {
        if a.ndim() < 2 {
            return Err(crate::value_err!(
                "[{OP}] Input must have at least two dimensions but got input with shape {}.",
                shape_str(a.shape())
            ));
        }
    }
    for idx in [lhs_indices, rhs_indices].into_iter().flatten() {
        if !idx.dtype().is_integer() {
            return Err(crate::value_err!(
                "[{OP}] Got indices with invalid dtype. Indices must be integral."
            ));
        }
    }
    let (gs, b) = m.params(group_size, bits);
    let k = x.shape()[x.ndim() - 1];
    let packed = w.dtype() == Dtype::Uint32;
    let s = match scales {
        Some(s) if packed => {
            check_packed(w, s, k, gs, b)?;
            Some(s)
        }
        _ => {
            check_dense(x.shape(), w)?;
            None
        }
    };
    let xb = lhs_indices.map_or(&x.shape()[..x.ndim() - 2], |i| i.shape());
    let wb = rhs_indices.map_or(&w.shape()[..w.ndim() - 2], |i| i.shape());
    let batch = broadcast_shapes(xb, wb)?;
    // what MLX leaves to its kernels (which raise NYI on the CPU)
    float_operand(OP, x, "first")?;
    if packed && s.is_none() {
        return Err(crate::value_err!(
            "[{OP}] Scales must be provided if second argument is quantized."
        ));
    }
    if !packed {
        float_operand(OP, w, "second")?;
    }
    let global = check_globals(OP, m, global_scale_x, global_scale_w)?;
    let f = format(OP, m, gs, b)?;
    let (wq, s, dense) = match s {
        Some(s) => (w.clone(), s.clone(), None),
        None => {
            if !k.is_multiple_of(f.defaults().0 as usize) {
                return Err(crate::value_err!(
                    "[qqmm] The last dimension of the operands ({k}) must be divisible by the \
                     quantization group size {}.",
                    f.defaults().0
                ));
            }
            let q = fp_quantize(w, f, global.as_ref().map(|g| &g.1))?;
            (
                stop_gradient(&q[0])?,
                stop_gradient(&q[1])?,
                Some(w.clone()),
            )
        }
    };
    let fit = |a: &Array, idx: Option<&Array>| -> Result<Array> {
        let g = gather_matrices(a, idx)?;
        let sh = g.shape();
        let mut full = batch.to_vec();
        full.extend_from_slice(&sh[sh.len() - 2..]);
        broadcast_to(&g, &full)
    };
    let prim = QQMatmul {
        mode: f,
        dense: dense.is_some(),
        global: global.is_some(),
    };
    let mut inputs = vec![
        fit(x, lhs_indices)?,
        fit(&wq, rhs_indices)?,
        fit(&s, rhs_indices)?,
    ];
    if let Some(d) = dense {
        inputs.push(fit(&d, rhs_indices)?);
    }
    if let Some((gx, gw)) = global {
        inputs.extend([gx, gw]);
    }
    Ok(prim.node(inputs))
}
