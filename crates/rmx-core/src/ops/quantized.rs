//! Quantization ops, as in MLX 0.32.4: `quantize`, `dequantize`, `quantized_matmul`.
//! Affine mode (group sizes 32/64/128, 1-8 bits except 7) has its own kernels; the
//! floating-point modes (`mxfp4`, `mxfp8`, `nvfp4`) are built in `quantized_fp.rs`.

use crate::array::Array;
use crate::dtype::{promote_types, Dtype};
use crate::error::Result;
use crate::primitives::quantized::{Dequantize, Quantize, QuantizedMatmul};
use crate::shape::{broadcast_shapes, shape_str};

use super::elementwise::astype;
use super::quantized_fp::{check_fp, check_global_scale, fp_dequantize, fp_quantize, QuantMode};
use super::shape::{broadcast_to, reshape};

/// The mode and its parameters with MLX's per-mode defaults.
fn mode_params(
    op: &str,
    mode: &str,
    group_size: Option<i64>,
    bits: Option<i64>,
) -> Result<(QuantMode, i64, i64)> {
    let m = QuantMode::parse(op, mode)?;
    let (g, b) = m.params(group_size, bits);
    Ok((m, g, b))
}

/// Group size and bits as MLX validates them.
fn check_affine(op: &str, group_size: i64, bits: i64) -> Result<(usize, usize)> {
    if ![32, 64, 128].contains(&group_size) {
        return Err(crate::value_err!(
            "[{op}] The requested group size {group_size} is not supported. The supported \
             group sizes are 32, 64, and 128."
        ));
    }
    if ![1, 2, 3, 4, 5, 6, 8].contains(&bits) {
        return Err(crate::value_err!(
            "[{op}] The requested number of bits {bits} is not supported. The supported bits \
             are 1, 2, 3, 4, 5, 6 and 8."
        ));
    }
    Ok((group_size as usize, bits as usize))
}

/// Quantizes groups of `group_size` consecutive elements of each row of `w` to `bits`
/// bits: returns `[w_q (uint32, packed low bits first), scales, biases]`.
pub fn quantize(
    w: &Array,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
) -> Result<Vec<Array>> {
    quantize_scaled(w, group_size, bits, mode, None)
}

/// `quantize` with nvfp4's optional float32 `global_scale`; the fp modes return
/// `[w_q, scales]` (uint8 scales, no biases).
pub fn quantize_scaled(
    w: &Array,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale: Option<&Array>,
) -> Result<Vec<Array>> {
    let (m, gs, b) = mode_params("quantize", mode, group_size, bits)?;
    check_global_scale("quantize", m, global_scale, true)?;
    if m != QuantMode::Affine {
        check_fp("quantize", m, gs, b)?;
    }
    if !w.dtype().is_float() {
        return Err(crate::value_err!(
            "[quantize] Only real floating types can be quantized but w has type {}.",
            w.dtype()
        ));
    }
    if w.ndim() < 2 {
        return Err(crate::value_err!(
            "[quantize] The matrix to be quantized must have at least 2 dimension but it has \
             only {}.",
            w.ndim()
        ));
    }
    if m != QuantMode::Affine {
        fp_check_divisible(w, gs)?;
        return fp_quantize(w, m, global_scale);
    }
    let (gs, b) = check_affine("quantize", gs, b)?;
    let k = w.shape()[w.ndim() - 1];
    if !k.is_multiple_of(gs) {
        return Err(crate::value_err!(
            "[quantize] The last dimension of the matrix needs to be divisible by the \
             quantization group size {gs}. However the provided  matrix has shape {}",
            shape_str(w.shape())
        ));
    }
    if w.dtype() == Dtype::Float64 {
        return Err(crate::runtime_err!(
            "[fast::Quantize::eval_cpu] Only supports floating point inputs"
        ));
    }
    Ok(Quantize {
        group_size: gs,
        bits: b,
    }
    .nodes(w))
}

fn fp_check_divisible(w: &Array, gs: i64) -> Result<()> {
    let k = w.shape()[w.ndim() - 1] as i64;
    if k % gs != 0 {
        return Err(crate::value_err!(
            "[quantize] The last dimension of the matrix needs to be divisible by the \
             quantization group size {gs}. However the provided  matrix has shape {}",
            shape_str(w.shape())
        ));
    }
    Ok(())
}

/// The fp modes take uint8 scales and no biases.
fn fp_scales(op: &str, m: QuantMode, scales: &Array, biases: Option<&Array>) -> Result<()> {
    if biases.is_some() {
        return Err(crate::value_err!(
            "[{op}] Biases must be null for quantization mode '{}'.",
            m.name()
        ));
    }
    if scales.dtype() != Dtype::Uint8 {
        return Err(crate::value_err!(
            "[{op}] Scale type must be uint8 but received type {}.",
            scales.dtype()
        ));
    }
    Ok(())
}

/// Scales and biases must be given, of one shape and of a real floating promoted type;
/// returns that type.
fn scales_biases<'a>(
    op: &str,
    scales: &Array,
    biases: Option<&'a Array>,
) -> Result<(&'a Array, Dtype)> {
    let b = biases.ok_or_else(|| {
        crate::value_err!("[{op}] Biases must be provided for affine quantization.")
    })?;
    let dt = promote_types(scales.dtype(), b.dtype());
    if !dt.is_float() {
        return Err(crate::value_err!(
            "[{op}] Only real floating types are supported but scales.dtype() == {} and \
             biases.dtype() == {}.",
            scales.dtype(),
            b.dtype()
        ));
    }
    Ok((b, dt))
}

/// `w * scale + bias` per group: the float matrix `w_q` came from. Computed in the
/// promoted type of scales and biases, then cast to `dtype` if given.
pub fn dequantize(
    w: &Array,
    scales: &Array,
    biases: Option<&Array>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    dtype: Option<Dtype>,
) -> Result<Array> {
    dequantize_scaled(w, scales, biases, group_size, bits, mode, None, dtype)
}

/// `dequantize` with nvfp4's optional `global_scale`. The fp modes compute in `dtype`
/// (default bfloat16); with a global scale the result is float32 whatever `dtype` says,
/// as in MLX 0.32.4.
#[allow(clippy::too_many_arguments)]
pub fn dequantize_scaled(
    w: &Array,
    scales: &Array,
    biases: Option<&Array>,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
    global_scale: Option<&Array>,
    dtype: Option<Dtype>,
) -> Result<Array> {
    let (m, gs, b) = mode_params("dequantize", mode, group_size, bits)?;
    check_global_scale("dequantize", m, global_scale, false)?;
    if m != QuantMode::Affine {
        return dequantize_fp(w, scales, biases, m, gs, b, global_scale, dtype);
    }
    let (biases, cdt) = scales_biases("dequantize", scales, biases)?;
    if let Some(d) = dtype {
        if !d.is_float() {
            return Err(crate::value_err!(
                "[dequantize] Only real floating types are supported but output dtype == {d}."
            ));
        }
    }
    if w.dtype() != Dtype::Uint32 {
        return Err(crate::value_err!(
            "[dequantize] The matrix should be given as a uint32"
        ));
    }
    if w.ndim() < 2 {
        return Err(crate::value_err!(
            "[dequantize] The matrix to be dequantized must have at least 2 dimension but it \
             has only {}.",
            w.ndim()
        ));
    }
    if scales.shape() != biases.shape() {
        return Err(crate::value_err!(
            "[dequantize] Shape of scales and biases does not match the matrix"
        ));
    }
    let (ws, ss) = (w.shape(), scales.shape());
    let nd = ws.len();
    let fits = ss.len() == nd
        && ws[..nd - 1] == ss[..nd - 1]
        && b > 0
        && gs > 0
        && (ws[nd - 1] as i64) * 32 == (ss[nd - 1] as i64) * gs * b;
    if !fits {
        return Err(crate::value_err!(
            "[dequantize] Shape of scales and biases does not match the matrix given the \
             quantization parameters. Provided matrix of shape {} and scales/biases of shape \
             {} with group_size={gs} and bits={b}.",
            shape_str(ws),
            shape_str(ss)
        ));
    }
    let (gs, b) = check_affine("dequantize", gs, b)?;
    let out = Dequantize {
        group_size: gs,
        bits: b,
        dtype: cdt,
    }
    .node(w, scales, biases);
    match dtype {
        Some(d) if d != cdt => astype(&out, d),
        _ => Ok(out),
    }
}

#[allow(clippy::too_many_arguments)]
fn dequantize_fp(
    w: &Array,
    scales: &Array,
    biases: Option<&Array>,
    m: QuantMode,
    gs: i64,
    b: i64,
    global_scale: Option<&Array>,
    dtype: Option<Dtype>,
) -> Result<Array> {
    const OP: &str = "dequantize";
    if biases.is_some() {
        return Err(crate::value_err!(
            "[{OP}] Biases must be null for quantization mode '{}'.",
            m.name()
        ));
    }
    if let Some(d) = dtype {
        if !d.is_float() {
            return Err(crate::value_err!(
                "[dequantize] Only real floating types are supported but output dtype == {d}."
            ));
        }
    }
    if w.dtype() != Dtype::Uint32 {
        return Err(crate::value_err!(
            "[dequantize] The matrix should be given as a uint32"
        ));
    }
    if w.ndim() < 2 {
        return Err(crate::value_err!(
            "[dequantize] The matrix to be dequantized must have at least 2 dimension but it \
             has only {}.",
            w.ndim()
        ));
    }
    check_fp(OP, m, gs, b)?;
    fp_scales(OP, m, scales, None)?;
    let (ws, ss) = (w.shape(), scales.shape());
    let nd = ws.len();
    let fits = ss.len() == nd
        && ws[..nd - 1] == ss[..nd - 1]
        && (ws[nd - 1] as i64) * 32 == (ss[nd - 1] as i64) * gs * b;
    if !fits {
        return Err(crate::value_err!(
            "[dequantize] Shape of scales does not match the matrix given the quantization \
             parameters. Provided matrix of shape {} and scales of shape {}.",
            shape_str(ws),
            shape_str(ss)
        ));
    }
    fp_dequantize(w, scales, m, global_scale, dtype.unwrap_or(Dtype::Bfloat16))
}

/// `x @ dequantize(w).T` (`transpose`, the default in MLX) or `x @ dequantize(w)`, with
/// `x`'s leading dimensions broadcast against `w`'s batch dimensions; the output dtype is
/// the promoted type of x, scales and biases.
#[allow(clippy::too_many_arguments)]
pub fn quantized_matmul(
    x: &Array,
    w: &Array,
    scales: &Array,
    biases: Option<&Array>,
    transpose: bool,
    group_size: Option<i64>,
    bits: Option<i64>,
    mode: &str,
) -> Result<Array> {
    const OP: &str = "quantized_matmul";
    let (m, gs, b) = mode_params(OP, mode, group_size, bits)?;
    let (biases, sdt) = if m == QuantMode::Affine {
        let (b, dt) = scales_biases(OP, scales, biases)?;
        (Some(b), dt)
    } else {
        fp_scales(OP, m, scales, biases)?;
        (None, Dtype::Float32)
    };
    if x.ndim() == 0 {
        return Err(crate::index_err!(
            "[quantized_matmul] The input x must have at least one dimension."
        ));
    }
    if w.dtype() != Dtype::Uint32 {
        return Err(crate::value_err!(
            "[quantized_matmul] The weight matrix should be uint32 but received {}",
            w.dtype()
        ));
    }
    if let Some(biases) = biases.filter(|b| b.shape() != scales.shape()) {
        return Err(crate::value_err!(
            "[quantized_matmul] Scales and biases should have the same shape. Received scales \
             with shape {} and biases with {}",
            shape_str(scales.shape()),
            shape_str(biases.shape())
        ));
    }
    let (ws, ss) = (w.shape(), scales.shape());
    let nd = ws.len();
    if nd < 2 || ss.len() != nd || ws[..nd - 2] != ss[..nd - 2] {
        return Err(crate::value_err!(
            "[quantized_matmul] Weight and scales should have the same batch shape. Received \
             weight with shape {}, scales with {}.",
            shape_str(ws),
            shape_str(ss)
        ));
    }
    let fits = b > 0
        && gs > 0
        && ws[nd - 2] == ss[nd - 2]
        && (ws[nd - 1] as i64) * 32 == (ss[nd - 1] as i64) * gs * b;
    if !fits {
        return Err(crate::value_err!(
            "[quantized_matmul] The shapes of the weight and scales are incompatible based on \
             bits and group_size. w.shape() == {} and scales.shape() == {} with group_size={gs} \
             and bits={b}",
            shape_str(ws),
            shape_str(ss)
        ));
    }
    let (gs, b) = if m == QuantMode::Affine {
        check_affine(OP, gs, b)?
    } else {
        check_fp(OP, m, gs, b)?;
        (gs as usize, b as usize)
    };
    if x.dtype().is_complex() {
        return Err(crate::value_err!(
            "[quantized_matmul] Only real floating types are supported but x.dtype() == {}.",
            x.dtype()
        ));
    }
    let out_dt = if m == QuantMode::Affine {
        promote_types(x.dtype(), sdt)
    } else {
        x.dtype()
    };
    if !out_dt.is_float() && m != QuantMode::Affine {
        return Err(crate::value_err!(
            "[quantized_matmul] Only real floating types are supported but x.dtype() == {}.",
            x.dtype()
        ));
    }
    if out_dt == Dtype::Float64 {
        return Err(crate::runtime_err!(
            "[quantized_matmul] only floating types are supported"
        ));
    }
    let k = x.shape()[x.ndim() - 1];
    let (rows, cols) = (ws[nd - 2], ws[nd - 1] * 32 / b);
    let inner = if transpose { cols } else { rows };
    if k != inner {
        let (er, ec) = if transpose {
            (cols, rows)
        } else {
            (rows, cols)
        };
        return Err(crate::value_err!(
            "[quantized_matmul] Last dimension of first input with shape (..., {k}) does not \
             match the expanded quantized matrix ({er}, {ec}) computed from shape {} with \
             group_size={gs}, bits={b} and transpose={transpose}",
            shape_str(ws)
        ));
    }
    let prim = QuantizedMatmul {
        group_size: gs,
        bits: b,
        transpose,
        mode: m,
    };
    // The CPU kernels read f16/bf16 scales as they are (exact conversion in registers),
    // so f32 activations need no per-call cast of a whole model's scales.
    let keep_scales = out_dt == Dtype::Float32
        && matches!(scales.dtype(), Dtype::Float16 | Dtype::Bfloat16)
        && biases.is_some_and(|bi| bi.dtype() == scales.dtype())
        && crate::stream::current_stream().device == crate::Device::CPU;
    let (x, s, bb) = match biases {
        Some(bi) if keep_scales => (astype(x, out_dt)?, scales.clone(), Some(bi.clone())),
        Some(bi) => (
            astype(x, out_dt)?,
            astype(scales, out_dt)?,
            Some(astype(bi, out_dt)?),
        ),
        None => (x.clone(), scales.clone(), None),
    };
    if x.ndim() == 1 {
        let x2 = reshape(&x, &[1, k as i64])?;
        let y = quantized_matmul_checked(&x2, w, &s, bb.as_ref(), &prim)?;
        let mut shape: Vec<i64> = y.shape().iter().map(|&d| d as i64).collect();
        shape.remove(shape.len() - 2);
        return reshape(&y, &shape);
    }
    quantized_matmul_checked(&x, w, &s, bb.as_ref(), &prim)
}

/// The product of checked, cast operands (x at least 2-d): unbatched weights take every
/// leading row of `x` at once; batched ones broadcast batch shapes with `x`.
pub(crate) fn quantized_matmul_checked(
    x: &Array,
    w: &Array,
    s: &Array,
    b: Option<&Array>,
    prim: &QuantizedMatmul,
) -> Result<Array> {
    let (xs, ws) = (x.shape(), w.shape());
    let (xn, wn) = (xs.len(), ws.len());
    if wn == 2 {
        if xn == 2 {
            return Ok(prim.node(x, w, s, b));
        }
        let k = xs[xn - 1] as i64;
        let rows: usize = xs[..xn - 1].iter().product();
        let x2 = reshape(x, &[rows as i64, k])?;
        let y = prim.node(&x2, w, s, b);
        let mut shape: Vec<i64> = xs.iter().map(|&d| d as i64).collect();
        shape[xn - 1] = y.shape()[1] as i64;
        return reshape(&y, &shape);
    }
    let batch = broadcast_shapes(&xs[..xn - 2], &ws[..wn - 2])?;
    let with = |a: &Array| -> Result<Array> {
        let sh = a.shape();
        let mut full = batch.to_vec();
        full.extend_from_slice(&sh[sh.len() - 2..]);
        broadcast_to(a, &full)
    };
    let b = b.map(with).transpose()?;
    Ok(prim.node(&with(x)?, &with(w)?, &with(s)?, b.as_ref()))
}
