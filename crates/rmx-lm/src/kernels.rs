//! The array functions every model needs, as thin wrappers over rmx-core's fused ops
//! (`ops::fast`) and affine-quantized matmul, with the argument shapes models use.

use crate::error::Result;
use rmx_core::ops::fast::{self, SdpaMask};
use rmx_core::{ops, Array, Dtype};

pub fn rms_norm(x: &Array, weight: &Array, eps: f32) -> Result<Array> {
    Ok(fast::rms_norm(x, Some(weight), eps)?)
}

/// `(x + residual, rms_norm(x + residual))`: one kernel on the GPU.
pub fn add_rms_norm(
    x: &Array,
    residual: &Array,
    weight: &Array,
    eps: f32,
) -> Result<(Array, Array)> {
    Ok(fast::add_rms_norm(x, residual, Some(weight), eps)?)
}

/// Rotates the first `inv_freq.len() * 2` features of `x` (B, H, L, D) at positions
/// `offset + l` (`offset` an int32 scalar); `adjacent` pairs (2i, 2i+1), otherwise
/// (i, i + dims/2).
pub fn rope(
    x: &Array,
    freqs: &Array,
    dims: usize,
    adjacent: bool,
    offset: &Array,
) -> Result<Array> {
    Ok(fast::rope(
        x,
        dims as i64,
        adjacent,
        None,
        1.0,
        offset,
        Some(freqs),
    )?)
}

/// A decode step's query rotation and cache writes in one op: `x` (B, L, Hq + 2 Hkv, D)
/// holds the fused q|k|v projection; returns the rotated queries (B, Hq, L, D) and the
/// caches with the rotated keys and the values written at `offset + l`.
#[allow(clippy::too_many_arguments)]
pub fn rope_kv_update(
    x: &Array,
    k_cache: &Array,
    v_cache: &Array,
    heads: (usize, usize),
    freqs: &Array,
    dims: usize,
    adjacent: bool,
    offset: &Array,
) -> Result<(Array, Array, Array)> {
    Ok(fast::rope_kv_update(
        x,
        k_cache,
        v_cache,
        heads.0,
        heads.1,
        dims as i64,
        adjacent,
        None,
        1.0,
        offset,
        Some(freqs),
    )?)
}

/// `layer`'s weight for the fused ops when it has no bias and its arrays are in `dtype`
/// (or its scales in half precision, for f32 activations).
fn fast_weight(layer: &crate::layers::Linear, dtype: Dtype) -> Option<fast::Weight<'_>> {
    use crate::layers::Linear;
    match layer {
        Linear::Dense { weight, bias: None } if weight.dtype() == dtype => {
            Some(fast::Weight::Dense(weight))
        }
        // half-precision scales with f32 activations are kept so on the CPU (`layers.rs`)
        Linear::Quantized { q, bias: None }
            if q.scales.dtype() == q.biases.dtype()
                && (q.scales.dtype() == dtype || dtype == Dtype::Float32) =>
        {
            Some(fast::Weight::Quantized {
                w: &q.weight,
                scales: &q.scales,
                biases: &q.biases,
                group_size: q.config.group_size,
                bits: q.config.bits,
            })
        }
        _ => None,
    }
}

/// `silu(x G^T) * (x U^T)` through `layer`, whose rows are the gate's then the up
/// projection's (`Linear::fuse_rows`), as one op; `None` (the caller makes the product and
/// the gating) for a layer with a bias or whose arrays are not in `x`'s dtype.
pub fn swiglu_linear(x: &Array, layer: &crate::layers::Linear) -> Result<Option<Array>> {
    match fast_weight(layer, x.dtype()) {
        Some(weight) => Ok(Some(fast::swiglu_linear(x, weight)?)),
        None => Ok(None),
    }
}

/// A pre-norm block's entry as one op: `h' = h + branch` (or `h`), then `layer` applied
/// to `norm(h')` (with the SwiGLU gating when `gated`); returns `(h', y)`. `None` (the
/// caller makes the norm and the product) where `swiglu_linear` would be `None`.
pub fn rms_norm_linear(
    h: &Array,
    branch: Option<&Array>,
    norm: &crate::layers::RmsNorm,
    layer: &crate::layers::Linear,
    gated: bool,
) -> Result<Option<(Array, Array)>> {
    // `RMX_LM_FUSE_NORM=0` keeps the norm a kernel of its own (for measuring)
    static FUSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*FUSE.get_or_init(|| std::env::var("RMX_LM_FUSE_NORM").map_or(true, |v| v != "0")) {
        return Ok(None);
    }
    let Some(weight) = fast_weight(layer, h.dtype()) else {
        return Ok(None);
    };
    let nw = ops::astype(&norm.weight, h.dtype())?;
    Ok(Some(fast::rms_norm_linear(
        h, branch, &nw, norm.eps, weight, gated,
    )?))
}

/// SiLU-gated product `g * sigmoid(g) * u` as one fused elementwise node (what `compile`
/// would make of the three ops): one kernel instead of three on a GPU, the same value bit
/// for bit (each intermediate is rounded to the dtype as the separate ops store it).
pub fn silu_mul(g: &Array, u: &Array) -> Result<Array> {
    use rmx_core::backend::{BinaryOp, UnaryOp};
    use rmx_core::primitives::fused::{Arg, Fused, FusedKind, FusedOp};
    if g.shape() != u.shape() || g.dtype() != u.dtype() {
        return Ok(ops::multiply(&ops::multiply(g, &ops::sigmoid(g)?)?, u)?);
    }
    let dtype = g.dtype();
    let op = |kind, args| FusedOp { kind, args, dtype };
    let program = Fused {
        ops: vec![
            op(FusedKind::Unary(UnaryOp::Sigmoid), vec![Arg::Input(0)]),
            op(
                FusedKind::Binary(BinaryOp::Multiply),
                vec![Arg::Input(0), Arg::Op(0)],
            ),
            op(
                FusedKind::Binary(BinaryOp::Multiply),
                vec![Arg::Op(1), Arg::Input(1)],
            ),
        ],
    };
    Ok(Array::from_op(
        g.shape().into(),
        dtype,
        std::sync::Arc::new(program),
        vec![g.clone(), u.clone()],
    ))
}

/// RoPE's `freqs` argument (periods, as MLX takes them) from inverse frequencies.
pub fn rope_freqs(inv_freq: &[f32]) -> Result<Array> {
    let periods: Vec<f32> = inv_freq.iter().map(|f| 1.0 / f).collect();
    Ok(Array::from_vec(periods, &[inv_freq.len()])?)
}

/// Attention of q (B, Hq, L, D) over k, v (B, Hkv, S, D) with grouped heads; causal
/// masking aligns the last query with the last key. A given `mask` replaces it.
pub fn attention(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    causal: bool,
    mask: Option<&Array>,
) -> Result<Array> {
    let mask = match mask {
        Some(m) => SdpaMask::Array(m),
        None if causal && q.shape()[2] > 1 => SdpaMask::Causal,
        None => SdpaMask::None,
    };
    Ok(fast::scaled_dot_product_attention(
        q, k, v, scale, mask, None,
    )?)
}

/// The float weight (N, K) of an affine-quantized one.
pub fn dequantize(
    w: &Array,
    scales: &Array,
    biases: &Array,
    group_size: usize,
    bits: usize,
    dtype: Dtype,
) -> Result<Array> {
    Ok(ops::quantized::dequantize(
        w,
        scales,
        Some(biases),
        Some(group_size as i64),
        Some(bits as i64),
        "affine",
        Some(dtype),
    )?)
}

/// x @ dequantize(w).T without materializing the float weight.
pub fn quantized_matmul(
    x: &Array,
    w: &Array,
    scales: &Array,
    biases: &Array,
    group_size: usize,
    bits: usize,
) -> Result<Array> {
    Ok(ops::quantized::quantized_matmul(
        x,
        w,
        scales,
        Some(biases),
        true,
        Some(group_size as i64),
        Some(bits as i64),
        "affine",
    )?)
}
